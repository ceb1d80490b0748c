//! A busy worker does not poll: while every slot is taken it waits for a
//! request in hand to finish (or a signal, or a window's edge), not on a
//! timer; an idle one sleeps until the earliest request falls due by the
//! database's clock, at most the poll interval.
//!
//! PostgreSQL only: it counts the server's transactions.

use std::time::Duration;

use lethe::worker::WorkerOptions;
use sqlx::{Connection, PgConnection};

use crate::app::TestApp;

/// Statements other sessions ran in this database during `span`, seen
/// from `pg_stat_activity` (live, unlike the statistics views, which a
/// pooled backend may report seconds late): every statement changes its
/// session's `state_change`, so the distinct (session, state_change) pairs
/// sampled every few milliseconds count them (at least one per sample in
/// which any ran).
async fn statements_during(probe: &mut PgConnection, span: Duration) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let end = std::time::Instant::now() + span;
    while std::time::Instant::now() < end {
        let rows: Vec<(i32, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
            "SELECT pid, state_change FROM pg_stat_activity \
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut *probe)
        .await
        .unwrap();
        seen.extend(rows);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    seen.len()
}

/// Regression (issue 11): with every slot busy and other work due, the
/// worker's loop asked the database for the next due time, found it past
/// (measured against the host's clock) and slept the 10 ms minimum: about
/// a hundred queries a second for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_does_not_poll_while_other_work_waits() {
    let app = TestApp::start_with(|c| {
        c.worker.concurrency = 1;
        // The request in hand rests between its batches: a long quiet spell.
        c.worker.pause_between_batches_ms = 8_000;
    })
    .await;
    let loaded = app.load("member", 2, 5).await;
    let first = app.submit(&loaded.members[0].key).await;
    app.submit(&loaded.members[1].key).await;

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    // Wait (on a connection of the test's own) for the first batch to commit: the worker is then in its pause, its one slot busy,
    // the second request due and waiting.
    let mut probe = PgConnection::connect(&app.database_url).await.unwrap();
    loop {
        let done: i32 = sqlx::query_scalar("SELECT batch_done FROM erasure_requests WHERE id = $1")
            .bind(first)
            .fetch_one(&mut probe)
            .await
            .unwrap();
        if done >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = statements_during(&mut probe, Duration::from_secs(4)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    eprintln!("{during} statements in 4 s while the worker was busy");
    // The heartbeat renews the lease every second (about two state changes
    // each, sessions' first sighting included); a poll every 10 ms would be
    // hundreds.
    assert!(
        during < 40,
        "{during} statements in 4 s of a busy worker's pause"
    );
}
