//! An in-process S3-protocol server per test: s3s-fs on `127.0.0.1:<port>`, with request
//! counters, fault injection, modelled latency (off unless set: [`Latency`]), and
//! `stop`/`restart` to make the endpoint unreachable.
//!
//! The server runs on a runtime of its own, so it keeps answering while the test thread
//! blocks (e.g. waiting on a `lethe` child process) and it is independent of the test's
//! runtime flavour. Dropping [`TestS3`] shuts it down and deletes its data.
//!
//! Known s3s-fs 0.14.1 quirks: no tagging or versioning (501), keys map to file paths
//! (so `a//b` and `a/b` are the same object), and listings have been seen to mangle keys
//! containing `+`. Use [`TestS3::exists`] (HeadObject on the exact key) to check erasure.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::s3_backend::{CountingS3, FaultInjector, Injected};
pub use super::s3_backend::{Faults, RandomCounts, S3Counters, StrayDeleteError};
pub use super::s3_latency::Latency;

const ACCESS_KEY: &str = "lethe-test-access-key";
const SECRET_KEY: &str = "lethe-test-secret-key";
const REGION: &str = "us-east-1";

/// A running (or deliberately stopped) S3-protocol server with its own data directory.
pub struct TestS3 {
    port: u16,
    service: S3Service,
    counters: Arc<S3Counters>,
    faults: Arc<Faults>,
    latency: Arc<Latency>,
    serving: Mutex<Option<Serving>>,
    /// `Option` only so that `Drop` can shut it down without blocking.
    runtime: Option<Runtime>,
    /// Declared last: removed after the runtime has stopped touching it.
    data: tempfile::TempDir,
}

/// The accept loop of a serving server; it owns every connection task.
pub(super) struct Serving {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl TestS3 {
    /// Starts a server on a free loopback port with an empty data directory.
    pub async fn start() -> TestS3 {
        TestS3::start_in(&std::env::temp_dir()).await
    }

    /// [`TestS3::start`], with the data directory made inside `parent`. The benchmarks
    /// put it on a RAM disk (/dev/shm): removing a file on this machine's disk costs
    /// about 0.2 ms, so a 1,000-key DeleteObjects would spend 0.2 s or more on work that
    /// AWS does on its own machines.
    pub async fn start_in(parent: &std::path::Path) -> TestS3 {
        let data = tempfile::Builder::new()
            .prefix("lethe-s3-")
            .tempdir_in(parent)
            .expect("creating the S3 data directory");
        let fs = s3s_fs::FileSystem::new(data.path())
            .expect("s3s-fs accepts an empty existing directory");
        let counters = Arc::new(S3Counters::default());
        let faults = Arc::new(Faults::default());
        let latency = Arc::new(Latency::default());

        let mut builder = S3ServiceBuilder::new(CountingS3::new(
            fs,
            data.path().to_owned(),
            Arc::clone(&counters),
            Arc::clone(&faults),
            Arc::clone(&latency),
        ));
        // Auth must be on: s3s only consults `S3Access::check` (our fault hook) with it.
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        builder.set_access(FaultInjector::new(
            Arc::clone(&faults),
            Arc::clone(&counters),
        ));
        let service = builder.build();

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lethe-test-s3")
            .enable_all()
            .build()
            .expect("building the S3 server runtime");
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a loopback port for S3");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let serving = serve_with_latency(
            &runtime,
            listener,
            service.clone(),
            Arc::clone(&faults),
            Arc::clone(&latency),
        );

        TestS3 {
            port,
            service,
            counters,
            faults,
            latency,
            serving: Mutex::new(Some(serving)),
            runtime: Some(runtime),
            data,
        }
    }

    /// `http://127.0.0.1:<port>`; stays the same across `stop`/`restart`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn access_key(&self) -> &'static str {
        ACCESS_KEY
    }

    pub fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    pub fn region(&self) -> &'static str {
        REGION
    }

    /// Request counters; shared, so a clone taken now keeps seeing new requests.
    pub fn counters(&self) -> Arc<S3Counters> {
        Arc::clone(&self.counters)
    }

    /// Fault switches; shared with the running server.
    pub fn faults(&self) -> Arc<Faults> {
        Arc::clone(&self.faults)
    }

    /// The modelled latency (off until set); shared with the running server.
    pub fn latency(&self) -> Arc<Latency> {
        Arc::clone(&self.latency)
    }

    /// Where s3s-fs keeps the objects (one directory per bucket).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    /// Environment for a child `lethe` process so the standard AWS chain reaches this
    /// server. The config/credentials files point at nothing so a developer's `~/.aws`
    /// cannot change what the test sees.
    pub fn env(&self) -> Vec<(String, String)> {
        let missing = self
            .data
            .path()
            .join("no-such-aws-file")
            .display()
            .to_string();
        [
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", missing.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A client for test setup and assertions.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        test_client(
            self.endpoint(),
            Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "lethe-test"),
        )
    }

    /// Makes the endpoint unreachable: closes the listener and drops every open
    /// connection, so clients get "connection refused" (new) or a reset/EOF (pooled).
    /// Returns once nothing is listening any more. Idempotent.
    pub async fn stop(&self) {
        let serving = self
            .serving
            .lock()
            .expect("serving lock is never poisoned")
            .take();
        if let Some(serving) = serving {
            let _ = serving.shutdown.send(());
            serving
                .task
                .await
                .expect("the S3 accept loop does not panic");
        }
    }

    /// Serves again on the same port with the same data. Retries binding for up to 5 s,
    /// since another socket may briefly hold the port. Idempotent.
    pub async fn restart(&self) {
        if self
            .serving
            .lock()
            .expect("serving lock is never poisoned")
            .is_some()
        {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() >= deadline => {
                    panic!("could not re-bind S3 port {} within 5 s: {e}", self.port)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime exists until drop");
        let serving = serve_with_latency(
            runtime,
            listener,
            self.service.clone(),
            Arc::clone(&self.faults),
            Arc::clone(&self.latency),
        );
        *self.serving.lock().expect("serving lock is never poisoned") = Some(serving);
    }

    pub async fn create_bucket(&self, name: &str) {
        self.client()
            .await
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket {name} failed: {e:?}"));
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) {
        self.client()
            .await
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(bytes.into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {bucket}/{key} failed: {e:?}"));
    }

    /// Whether `bucket/key` exists, by HeadObject on the exact key: the reliable check
    /// (listings may mangle keys). Panics on anything but success or "not found".
    pub async fn exists(&self, bucket: &str, key: &str) -> bool {
        match self
            .client()
            .await
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => false,
            Err(e) => panic!("HeadObject {bucket}/{key} failed: {e:?}"),
        }
    }

    /// All keys in `bucket`, via ListObjectsV2. See the module doc on listing quirks.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let client = self.client().await;
        let mut pages = client
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.unwrap_or_else(|e| panic!("ListObjectsV2 {bucket} failed: {e:?}"));
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        keys
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        // Tests drop this inside their own runtime, where a blocking shutdown panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs the accept loop on `runtime` until `Serving::shutdown` fires (or is dropped),
/// then closes the listener and aborts every connection it accepted.
pub(super) fn serve(
    runtime: &Runtime,
    listener: TcpListener,
    service: S3Service,
    faults: Arc<Faults>,
) -> Serving {
    serve_with_latency(
        runtime,
        listener,
        service,
        faults,
        Arc::new(Latency::default()),
    )
}

/// [`serve`], paying `latency`'s cost per call before each request is handled.
fn serve_with_latency(
    runtime: &Runtime,
    listener: TcpListener,
    service: S3Service,
    faults: Arc<Faults>,
    latency: Arc<Latency>,
) -> Serving {
    let service = FaultyHttp {
        inner: service,
        faults,
        latency,
    };
    listener
        .set_nonblocking(true)
        .expect("a listener can be made non-blocking");
    let (shutdown, mut shutdown_rx) = oneshot::channel::<()>();
    let task = runtime.spawn(async move {
        // Converted here so that the listener registers with the server's own runtime.
        let listener = tokio::net::TcpListener::from_std(listener).expect("registering the S3 listener");
        let http = ConnBuilder::new(TokioExecutor::new());
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut shutdown_rx => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => {
                        let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                        connections.spawn(async move {
                            let _ = conn.await;
                        });
                    }
                    // E.g. too many open files: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
        drop(listener);
        connections.shutdown().await;
    });
    Serving { shutdown, task }
}

/// The HTTP side of fault injection: decides once per request whether it fails
/// (random injection), closes the connection for the faults that are a dropped
/// connection, and hands the others to `S3Access::check` in the request's
/// extensions, where they become S3 error answers. Every request first pays the
/// modelled cost of a call (zero unless set).
#[derive(Clone)]
struct FaultyHttp {
    inner: S3Service,
    faults: Arc<Faults>,
    latency: Arc<Latency>,
}

/// Why a connection was closed without an answer.
#[derive(Debug)]
struct DroppedByHarness;

impl std::fmt::Display for DroppedByHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the lethe test harness")
    }
}

impl std::error::Error for DroppedByHarness {}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for FaultyHttp {
    type Response = s3s::HttpResponse;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn call(&self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let injected = self.faults.draw();
        let inner = self.inner.clone();
        let latency = Arc::clone(&self.latency);
        Box::pin(async move {
            // A sleep on the server's runtime: other calls proceed meanwhile.
            latency.call().await;
            match injected {
                // A service error makes hyper close the connection unanswered.
                Some(Injected::DropBefore) => Err(Box::new(DroppedByHarness) as Self::Error),
                Some(Injected::DropAfter) => {
                    let _ = hyper::service::Service::call(&inner, req).await;
                    Err(Box::new(DroppedByHarness) as Self::Error)
                }
                Some(kind) => {
                    req.extensions_mut().insert(kind);
                    hyper::service::Service::call(&inner, req)
                        .await
                        .map_err(Self::Error::from)
                }
                None => hyper::service::Service::call(&inner, req)
                    .await
                    .map_err(Self::Error::from),
            }
        })
    }
}

/// A client of a loopback S3 server for test setup and assertions:
/// path-style, 3 attempts, 10 ms backoff.
pub fn test_client(endpoint: String, credentials: Credentials) -> aws_sdk_s3::Client {
    // lethe builds aws-sdk-s3 without a default HTTPS client, so supply one.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .region(Region::new(REGION))
        .force_path_style(true)
        .http_client(http_client)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
