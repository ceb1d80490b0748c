//! Graceful shutdown of a real `lethe worker` process. The first SIGTERM or
//! SIGINT stops claiming, lets the batch in flight finish or gives it up at
//! a safe point, releases the lease and exits 0; the request is then
//! finished by another worker. A second signal exits at once (130), which
//! the checkpoints make safe: the next worker repeats at most that batch.
//!
//! PostgreSQL only: signal handling is the worker's, above the store seam;
//! SIGKILL mid-batch on SQLite is in `crash`.

use std::time::{Duration, Instant};

use lethe::State;
use tokio::io::AsyncReadExt;
use tokio::process::Child;

use crate::app::{TestApp, repeated_batches, wait_for_line};

pub(crate) fn send(child: &Child, signal: &str) {
    let pid = child.id().expect("the child is running").to_string();
    // The shell's own `kill`: no procps needed.
    let status = std::process::Command::new("sh")
        .args(["-c", "kill -s \"$0\" \"$1\"", signal, &pid])
        .status()
        .expect("running sh -c kill");
    assert!(status.success(), "kill -s {signal} {pid}");
}

/// The rest of a child's stderr, read to its end in the background.
pub(crate) fn drain_stderr(child: &mut Child) -> tokio::task::JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr is piped");
    tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_at_a_safe_point_releases_the_lease_and_exits_zero() {
    // Masking batches of 30 rows at 60 rows/s: each waits half a second
    // for its allowance, so the signal finds the worker mid-phase.
    let app = TestApp::start_with(|c| c.worker.max_rows_per_sec = 60).await;
    let loaded = app.load("member", 2, 40).await;
    let target = &loaded.members[0];
    let target_rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;

    let mut worker = app.spawn_worker(None, &[]);
    wait_for_line(&mut worker, "phase=masking_rows", Duration::from_secs(60)).await;
    let rest = drain_stderr(&mut worker);
    let signalled = Instant::now();
    send(&worker, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    let latency = signalled.elapsed();
    let stderr = rest.await.unwrap();
    eprintln!("graceful shutdown latency (SIGTERM to exit): {latency:?}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("signal received"), "{stderr}");
    assert!(stderr.contains("worker stopped"), "{stderr}");
    assert!(
        latency < Duration::from_secs(5),
        "shutdown took {latency:?}"
    );

    // Let go cleanly: the lease is released, whole batches only.
    let record = app.engine.status(id).await.unwrap().record;
    assert_eq!(record.lease_owner, None, "the lease is released");
    assert_eq!(record.state, State::S3Cleared);
    assert!(
        record.rows_masked > 0 && record.rows_masked < 120 && record.rows_masked % 30 == 0,
        "only whole batches: {} rows masked",
        record.rows_masked
    );
    assert_eq!(app.events(id).await.last().unwrap().kind, "released");

    // Another worker resumes it at once (no lease to wait for) and finishes.
    let resumed = Instant::now();
    let mut next = app.spawn_worker(None, &[]);
    app.wait_for_state(id, State::Done, Duration::from_secs(60))
        .await;
    next.start_kill().ok();
    next.wait().await.ok();
    let events = app.events(id).await;
    assert!(
        !events.iter().any(|e| e.kind == "taken_over"),
        "claimed normally, not taken over from an expired lease"
    );
    assert_eq!(
        repeated_batches(&events, "masking_rows"),
        0,
        "no batch was repeated"
    );
    assert_eq!(app.engine.status(id).await.unwrap().record.rows_masked, 120);
    eprintln!(
        "resumed and finished by another worker in {:?}",
        resumed.elapsed()
    );
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_and_the_checkpoint_makes_it_safe() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 2, 40).await;
    let target = &loaded.members[0];
    let target_rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;

    // Stuck inside masking batch 2 (rows updated, checkpoint not committed):
    // a batch that cannot finish, so the first signal cannot end the run.
    let mut worker = app.spawn_worker(Some("masking_rows:2"), &[]);
    wait_for_line(
        &mut worker,
        "failpoint masking_rows:2 reached",
        Duration::from_secs(60),
    )
    .await;
    let rest = drain_stderr(&mut worker);
    send(&worker, "INT");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the first signal waits for the batch in flight"
    );
    let signalled = Instant::now();
    send(&worker, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("exits at once after the second signal")
        .unwrap();
    let latency = signalled.elapsed();
    let stderr = rest.await.unwrap();
    eprintln!("second-signal exit latency: {latency:?}");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("second signal: exiting now"), "{stderr}");
    assert!(latency < Duration::from_secs(2), "took {latency:?}");

    // Batch 2 rolled back with the process; the lease stays until it expires.
    let record = app.engine.status(id).await.unwrap().record;
    assert_eq!((record.state, record.batch_done), (State::S3Cleared, 1));
    assert_eq!(record.rows_masked, 30);
    assert!(record.lease_owner.is_some());

    let mut rescuer = app.spawn_worker(None, &[]);
    app.wait_for_state(id, State::Done, Duration::from_secs(60))
        .await;
    rescuer.start_kill().ok();
    rescuer.wait().await.ok();
    let events = app.events(id).await;
    assert!(events.iter().any(|e| e.kind == "taken_over"));
    assert_eq!(
        repeated_batches(&events, "masking_rows"),
        1,
        "exactly the interrupted batch is repeated"
    );
    assert_eq!(app.engine.status(id).await.unwrap().record.rows_masked, 120);
    app.assert_rows_masked(&target_rows).await;
}
