//! `lethe serve` and `lethe token new`: the HTTP server, with workers in the
//! same process when asked, stopped by SIGINT/SIGTERM like `lethe worker`.

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use lethe::config::{Role, token_sha256};
use lethe::{Engine, WorkerOptions};

use crate::{Signals, start_worker};

/// Serves until signalled; with `workers` > 0 a worker runs alongside.
pub(crate) async fn serve(
    engine: &Engine,
    listen: Option<&str>,
    workers: u32,
    ignore_window: bool,
) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    let addr = match listen {
        Some(text) => text.parse().with_context(|| {
            format!("--listen {text:?} is not an address such as 127.0.0.1:8080")
        })?,
        None => engine.config().server.listen_addr()?,
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (is another server on that port?)"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let worker = if workers > 0 {
        let options = WorkerOptions {
            once: false,
            ignore_window,
            progress: None,
        };
        Some(start_worker(engine, options).await?)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    let worker_shutdown = worker.as_ref().map(|worker| worker.shutdown_token());
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received: stopping (signal again to exit at once)");
        on_signal.cancel();
        if let Some(worker) = worker_shutdown {
            worker.cancel();
        }
        signals.next().await;
        tracing::warn!("second signal: exiting now; work resumes from the last checkpoint");
        std::process::exit(130);
    });
    eprintln!(
        "lethe serve: listening on http://{bound}/ (pages at /, API at /v1, {workers} worker(s)); Ctrl-C stops"
    );
    let server = tokio::spawn(lethe::server::serve(
        engine.clone(),
        listener,
        shutdown.clone(),
    ));
    if let Some(worker) = worker {
        let summary = worker.run().await;
        shutdown.cancel();
        let summary = summary.context("the worker stopped")?;
        eprintln!(
            "worker stopped: {} done, {} to retry later, {} failed",
            summary.done, summary.retry_scheduled, summary.failed
        );
    }
    server.await.context("the server task")??;
    Ok(())
}

/// `lethe token new`: a random token, and its configuration lines.
pub(crate) fn new_token(name: &str, role: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        anyhow::bail!("--name must be a printable, non-empty name (who holds the token)");
    }
    let role = Role::parse(role).context("--role must be submit, operate or audit")?;
    let token = format!("lethe_{}", lethe::server::auth::random_secret());
    let name = toml::Value::String(name.to_owned());
    eprintln!("The token (shown only now; lethe keeps only its SHA-256). Give it to its holder:");
    println!("{token}");
    eprintln!("\nAdd to lethe.toml, then restart `lethe serve`:\n");
    eprintln!(
        "[[server.token]]\nname = {name}\nrole = \"{role}\"\nsha256 = \"{}\"",
        token_sha256(&token)
    );
    Ok(())
}
