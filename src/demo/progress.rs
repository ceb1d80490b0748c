//! The demo's live progress: the three requests' persisted checkpoints,
//! read from the database a few times a second while workers run, and a
//! line printed whenever one moves. What it shows is what a crash would
//! resume from: state, phase, batch k of n, and the counters committed with
//! each batch.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::engine::Engine;
use crate::error::Error;
use crate::status::progress_line;
use crate::store::{RequestRecord, Store};
use crate::worker::WorkerOptions;

/// Runs one worker until nothing is due, printing the requests' progress
/// as it goes and how the run ended.
pub async fn run_worker_watching(
    engine: &Engine,
    requests: &[(Uuid, String)],
) -> Result<(), Error> {
    let printer = Printer::start(engine.store().clone(), requests.to_vec());
    let summary = engine
        .worker(WorkerOptions {
            once: true,
            ignore_window: true,
            progress: None,
        })
        .await?
        .run()
        .await?;
    printer.stop().await;
    println!(
        "      worker finished: {} done, {} failed",
        summary.done, summary.failed
    );
    Ok(())
}

/// Prints progress lines until cancelled.
pub struct Printer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Printer {
    /// Watches `requests` (id -> the member's key, which this demo may show:
    /// its members are made up).
    pub fn start(store: Store, requests: Vec<(Uuid, String)>) -> Printer {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last: BTreeMap<Uuid, String> = BTreeMap::new();
            loop {
                for (id, member) in &requests {
                    let Ok(record) = store.get(*id).await else {
                        continue;
                    };
                    let line = describe(&record);
                    if last.get(id) != Some(&line) {
                        println!(
                            "  {:>5.1}s  {member}  {}  {line}",
                            started.elapsed().as_secs_f64(),
                            short(*id)
                        );
                        last.insert(*id, line);
                    }
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Printer { stop, task }
    }

    /// Prints the last changes, then stops.
    pub async fn stop(self) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// `s3_cleared, masking_rows batch 2 of 3  (rows found 90, masked 20; ...)`
pub fn describe(record: &RequestRecord) -> String {
    format!(
        "{}  (rows found {}, masked {}; objects found {}, deleted {})",
        progress_line(record),
        record.rows_found,
        record.rows_masked,
        record.objects_found,
        record.objects_deleted
    )
}

/// The first eight hex digits of an id, as the demo shows it.
pub fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}
