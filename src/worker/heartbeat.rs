//! The lease heartbeat: renews a held lease every third of its TTL while the
//! request is being worked on. When a renewal finds the lease gone (taken
//! over, cancelled), it trips a token that the work loop checks between
//! batches; the fenced commit catches the rest.
//!
//! The rule this module keeps: a heartbeat never outlives the work it
//! vouches for. [`Beating`] owns the task and stops it when dropped, so a
//! request whose work ended in any way (a panic included) is not kept
//! leased by a heartbeat renewing it for ever.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::store::{Lease, Store};

/// A running heartbeat; dropping it stops it.
pub struct Beating(JoinHandle<()>);

impl Beating {
    pub fn start(store: Store, lease: Lease, lost: CancellationToken) -> Beating {
        Beating(tokio::spawn(
            run(store, lease, lost).instrument(tracing::Span::current()),
        ))
    }

    /// Stops renewing now.
    pub fn stop(self) {}
}

impl Drop for Beating {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs until aborted, or until the lease is found lost (then trips `lost`).
async fn run(store: Store, lease: Lease, lost: CancellationToken) {
    let period = (lease.ttl / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        match lease.renew(&store).await {
            Ok(true) => {}
            // Done released the lease in its own commit, and the work
            // may still be tidying up after it (pruning old manifests).
            Ok(false) if lease.finished(&store).await => return,
            Ok(false) => {
                tracing::warn!("lease lost; stopping work on this request");
                lost.cancel();
                return;
            }
            // The database is unreachable: keep trying. If the lease expires
            // meanwhile, another worker may take over, and this worker's
            // next commit is fenced off.
            Err(err) => tracing::warn!("renewing lease: {err}"),
        }
    }
}
