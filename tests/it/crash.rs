//! Crash tests: a worker process is killed with SIGKILL in the middle of a
//! batch (after the batch's side effects, before its checkpoint commits) in
//! each phase; a new worker process takes over the expired lease and
//! finishes correctly, repeating at most that one batch. On both backends:
//! on SQLite the killed worker dies holding the write lock (finding targets
//! and masking pause inside the batch's transaction), which the operating
//! system releases with the process, and the batch rolls back with it.

use std::time::Duration;

use lethe::State;
use lethe::store::Backend;

use crate::app::{TestApp, repeated_batches, wait_for_line};

struct CrashReport {
    repeated: Vec<(&'static str, usize)>,
    keys_requested_for_deletion: usize,
    objects: usize,
}

const PHASES: [&str; 4] = [
    "finding_targets",
    "deleting_objects",
    "masking_rows",
    "verifying",
];

/// Kills a worker mid-batch 2 of `phase`, lets another finish, and checks
/// the outcome. Returns what was repeated.
async fn crash_in(backend: Backend, phase: &'static str, state_at_crash: State) -> CrashReport {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 3, 40).await;
    let target = &loaded.members[1];
    let target_rows = app.rows_of(&target.key).await;
    let before = app.snapshot().await;
    let id = app.submit(&target.key).await;

    let mut doomed = app.spawn_worker(Some(&format!("{phase}:2")), &[]);
    wait_for_line(
        &mut doomed,
        &format!("failpoint {phase}:2 reached"),
        Duration::from_secs(60),
    )
    .await;
    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.expect("reaping the killed worker");

    // Killed mid-batch: batch 1 is committed, batch 2 is not.
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, state_at_crash, "{phase}");
    assert_eq!(
        status.batch_done, 1,
        "{phase}: batch 2's checkpoint must not have committed"
    );
    assert!(
        status.lease_owner.is_some(),
        "the dead worker still holds its lease"
    );
    if phase == "deleting_objects" {
        // The side effects of batch 2 happened before the kill.
        assert!(app.s3.counters().keys_requested_for_deletion() > 25);
    }
    if phase == "masking_rows" {
        // Batch 2's masking rolled back with its checkpoint.
        assert_eq!(
            status.rows_masked, 30,
            "only batch 1 (10 requests x 3 rows) is masked"
        );
    }

    let mut rescuer = app.spawn_worker(None, &[]);
    app.wait_for_state(id, State::Done, Duration::from_secs(60))
        .await;
    rescuer.start_kill().ok();
    rescuer.wait().await.ok();

    // Finished correctly.
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
    let after = app.snapshot().await;
    for (row, text) in &before {
        if !target_rows.contains(row) {
            assert_eq!(
                after.get(row),
                Some(text),
                "{phase}: row {row:?} of another member changed"
            );
        }
    }
    for other in loaded.members.iter().filter(|m| m.key != target.key) {
        app.assert_objects_present(other).await;
    }

    let events = app.events(id).await;
    assert!(
        events.iter().any(|e| e.kind == "taken_over"),
        "{phase}: the second worker took over the expired lease"
    );
    let final_status = app.engine.status(id).await.unwrap().record;
    assert_eq!(
        final_status.rows_masked, 120,
        "{phase}: 40 requests x 3 rows, each counted once"
    );
    assert_eq!(
        final_status.objects_deleted as usize,
        target.objects.len(),
        "{phase}"
    );
    CrashReport {
        repeated: PHASES
            .iter()
            .map(|p| (*p, repeated_batches(&events, p)))
            .collect(),
        keys_requested_for_deletion: app.s3.counters().keys_requested_for_deletion(),
        objects: target.objects.len(),
    }
}

fn assert_only_the_killed_batch_repeated(report: &CrashReport, phase: &str) {
    for (p, repeated) in &report.repeated {
        let expected = usize::from(*p == phase);
        assert_eq!(
            *repeated, expected,
            "phase {p}: {repeated} batch(es) repeated after a crash in {phase}"
        );
    }
    eprintln!("crash in {phase}: repeated batches {:?}", report.repeated);
}

async fn sigkill_while_finding_targets_repeats_one_batch(backend: Backend) {
    let report = crash_in(backend, "finding_targets", State::Requested).await;
    assert_only_the_killed_batch_repeated(&report, "finding_targets");
    assert_eq!(
        report.keys_requested_for_deletion, report.objects,
        "no object deleted twice"
    );
}

async fn sigkill_while_deleting_objects_repeats_one_batch(backend: Backend) {
    let report = crash_in(backend, "deleting_objects", State::TargetsFound).await;
    assert_only_the_killed_batch_repeated(&report, "deleting_objects");
    // Exactly batch 2's 25 keys were sent twice.
    assert_eq!(report.keys_requested_for_deletion, report.objects + 25);
}

async fn sigkill_while_masking_rows_repeats_one_batch(backend: Backend) {
    let report = crash_in(backend, "masking_rows", State::S3Cleared).await;
    assert_only_the_killed_batch_repeated(&report, "masking_rows");
    assert_eq!(
        report.keys_requested_for_deletion, report.objects,
        "no object deleted twice"
    );
}

/// Regression (issue 11): taking over the lease of a killed worker counted
/// an attempt even when that worker had committed batches, so with
/// `retry.max_attempts = 1` the rescuer parked the request in Failed. An
/// attempt that made progress does not count, killed or not.
async fn a_killed_attempt_that_made_progress_does_not_count(backend: Backend) {
    let app = TestApp::start_on_with(backend, |c| c.retry.max_attempts = 1).await;
    let loaded = app.load("member", 2, 40).await;
    let target = &loaded.members[0];
    let target_rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;

    let mut doomed = app.spawn_worker(Some("deleting_objects:2"), &[]);
    wait_for_line(
        &mut doomed,
        "failpoint deleting_objects:2 reached",
        Duration::from_secs(60),
    )
    .await;
    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.expect("reaping the killed worker");
    assert_eq!(app.engine.status(id).await.unwrap().record.batch_done, 1);

    let mut rescuer = app.spawn_worker(None, &[]);
    let started = std::time::Instant::now();
    let status = loop {
        let status = app.engine.status(id).await.unwrap().record;
        if matches!(status.state, State::Done | State::Failed) {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    rescuer.start_kill().ok();
    rescuer.wait().await.ok();
    assert_eq!(status.state, State::Done, "{:?}", status.last_error);
    let events = app.events(id).await;
    assert!(events.iter().any(|e| e.kind == "taken_over"));
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
    app.assert_objects_present(&loaded.members[1]).await;
}

on_both_backends!(
    sigkill_while_finding_targets_repeats_one_batch,
    sigkill_while_deleting_objects_repeats_one_batch,
    sigkill_while_masking_rows_repeats_one_batch,
    a_killed_attempt_that_made_progress_does_not_count,
);
