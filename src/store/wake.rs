//! What wakes an idle worker before its next poll. On PostgreSQL, a NOTIFY
//! from the insert trigger (so a bare SQL INSERT from anywhere wakes every
//! worker at once). On both backends, a submission or retry made through
//! this process's store. SQLite has no NOTIFY: a bare INSERT into a SQLite
//! file, or a submission from another process, is found by polling
//! (`worker.poll_interval_ms`, 1 s by default on SQLite).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::{Backed, Store};

/// The channel the PostgreSQL insert trigger notifies.
pub const NOTIFY_CHANNEL: &str = "lethe_erasure_requests";

/// An idle worker's wake-up sources.
pub struct Wakeups {
    listener: Option<PgListener>,
    local: watch::Receiver<u64>,
}

impl Wakeups {
    pub(super) async fn new(store: &Store, local: watch::Receiver<u64>) -> Wakeups {
        let listener = match store.db() {
            Backed::Postgres(pool) => listen(pool).await,
            Backed::Sqlite(_) => None,
        };
        Wakeups { listener, local }
    }

    /// Whether other processes' inserts wake this worker (PostgreSQL's
    /// NOTIFY), or only polling finds them.
    pub fn hears_other_processes(&self) -> bool {
        self.listener.is_some()
    }

    /// Waits for the next wake-up.
    pub async fn next(&mut self) {
        tokio::select! {
            _ = notification(&mut self.listener) => {}
            changed = self.local.changed() => {
                if changed.is_err() {
                    // The store is gone; only polling is left.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!("LISTEN unavailable, polling only: {err}");
            return None;
        }
    };
    match listener.listen(NOTIFY_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(err) => {
            tracing::warn!("LISTEN unavailable, polling only: {err}");
            None
        }
    }
}

async fn notification(listener: &mut Option<PgListener>) {
    match listener {
        Some(l) => {
            if let Err(err) = l.recv().await {
                // sqlx reconnects on the next recv; avoid a hot loop meanwhile.
                tracing::warn!("waiting for notifications: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}
