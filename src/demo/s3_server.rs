//! The demo's S3-protocol server: s3s-fs, in this process, on a loopback
//! port, keeping its objects as plain files under a folder (one folder per
//! bucket) that the user can look into. lethe reaches it through the same
//! aws-sdk-s3 client as production (endpoint override, path-style, static
//! keys), so the demo runs the production code path, not a mock.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::Error;

/// The demo's keys: a server on loopback that only this demo uses.
pub const ACCESS_KEY: &str = "lethe-demo";
pub const SECRET_KEY: &str = "lethe-demo-secret-key";

/// A running server; dropped or [`S3Server::stop`]ped, it stops.
pub struct S3Server {
    pub port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl S3Server {
    /// Serves the objects under `data` on `127.0.0.1:port` (any free port
    /// when `port` is 0, or when it is taken and `fallback` is true).
    pub async fn start(data: &Path, port: u16, fallback: bool) -> Result<S3Server, Error> {
        std::fs::create_dir_all(data).map_err(|source| Error::Io {
            doing: format!("creating the demo's S3 folder {}", data.display()),
            source,
        })?;
        let fs = s3s_fs::FileSystem::new(data).map_err(|err| {
            Error::Demo(format!(
                "opening the demo's S3 folder {}: {err:?}",
                data.display()
            ))
        })?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();

        let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => listener,
            Err(_) if fallback && port != 0 => {
                tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .map_err(|source| Error::Io {
                        doing: "binding a loopback port".to_owned(),
                        source,
                    })?
            }
            Err(source) => {
                return Err(Error::Io {
                    doing: format!(
                        "binding 127.0.0.1:{port} for the demo's S3 server (is another `lethe demo` running?)"
                    ),
                    source,
                });
            }
        };
        let port = listener
            .local_addr()
            .map(|addr: SocketAddr| addr.port())
            .map_err(|source| Error::Io {
                doing: "reading the S3 server's address".to_owned(),
                source,
            })?;
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => {
                            let conn = http
                                .serve_connection(TokioIo::new(socket), service.clone())
                                .into_owned();
                            connections.spawn(async move {
                                let _ = conn.await;
                            });
                        }
                        // E.g. too many open files: back off instead of spinning.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                }
            }
            connections.shutdown().await;
        });
        Ok(S3Server {
            port,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
