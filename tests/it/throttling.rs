//! Throttling and transient S3 errors never fail a request: the AWS SDK
//! re-sends each call as configured (no retry quota cutting it short),
//! lethe re-sends the calls that still fail (never the whole batch), and
//! progress inside a batch is kept. The fault-injection run at the end
//! erases 20 members under 10% and 30% random S3 failures (503 SlowDown,
//! 500, dropped connections) with the default retry settings.
//!
//! PostgreSQL only: the faults are in S3, above the store seam.

use std::time::{Duration, Instant};

use lethe::State;
use lethe::config::S3Settings;
use lethe::objects::{Credentials, ObjectStore};
use lethe::worker::WorkerOptions;

use crate::app::TestApp;
use crate::harness::{RandomCounts, TestS3};

/// lethe's own S3 client, with the default settings, against a test server.
async fn default_client(s3: &TestS3) -> ObjectStore {
    let settings = S3Settings {
        endpoint_url: Some(s3.endpoint()),
        region: Some(s3.region().to_owned()),
        force_path_style: true,
        ..S3Settings::default()
    };
    let credentials = Credentials::new(s3.access_key(), s3.secret_key(), None, None, "lethe-tests");
    ObjectStore::connect_with_credentials(&settings, credentials).await
}

/// Regression (issue 11): under many errors the SDK's standard retry stopped
/// re-sending calls once its retry quota (a token bucket shared by every
/// client in the process) ran dry, so a first-attempt 503 became a failed
/// call although `s3.sdk_max_attempts` allowed more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_throttled_call_is_resent_by_the_sdk_however_many_there_are() {
    let s3 = TestS3::start().await;
    s3.create_bucket("quota").await;
    let objects = default_client(&s3).await;
    s3.faults()
        .fail_first_attempts("HeadObject", "SlowDown", 503);

    let keys: Vec<String> = (0..1500).map(|i| format!("m/{i:05}.png")).collect();
    let existing = objects
        .existing("quota", keys)
        .await
        .expect("every call succeeds on its second attempt");
    assert!(existing.is_empty());
    let counters = s3.counters();
    assert_eq!(
        counters.requests("HeadObject"),
        3000,
        "two attempts per call"
    );
}

/// Regression (issue 11): one HeadObject that failed made verification
/// start its whole page of read-backs over, so under a steady error rate it
/// never finished. Now the failed call alone is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_back_is_sent_again_alone_not_the_page() {
    let app = TestApp::start_with(|c| {
        // One SDK attempt per call, so every injected 503 reaches lethe.
        c.s3.sdk_max_attempts = 1;
        c.retry.max_attempts = 2;
    })
    .await;
    let loaded = app.load("member", 2, 60).await;
    let target = &loaded.members[0];
    let rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;
    // The first HeadObject of every seventh key fails (asked again, it
    // succeeds: one failure per call, whatever the calls' interleaving).
    app.s3
        .faults()
        .fail_first_request_of_every_nth_key("HeadObject", 7);

    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Done, "{:?}", status.last_error);
    let events = app.events(id).await;
    assert!(
        !events.iter().any(|e| e.kind == "retry_scheduled"),
        "no batch had to be retried: {events:?}"
    );
    // Each failure costs one more request, not a page of them.
    let heads = app.s3.counters().requests("HeadObject");
    let manifest_objects = status.objects_found;
    assert!(
        heads <= manifest_objects as u64 * 8 / 6 + 10,
        "{heads} HeadObject requests for {manifest_objects} objects"
    );
    app.s3.faults().clear();
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&rows).await;
    app.assert_objects_present(&loaded.members[1]).await;
}

/// Regression (issue 11): an attempt that made progress counted toward
/// `retry.max_attempts`, so a request that advanced on every attempt could
/// still end Failed. With `max_attempts = 1`, each attempt here deletes one
/// object (commits one batch) and then meets a DeleteObjects call that
/// fails for good: every attempt makes progress, none counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_made_progress_do_not_count_toward_max_attempts() {
    let app = TestApp::start_with(|c| {
        c.retry.max_attempts = 1;
        c.s3.call_retries = 0;
        c.worker.delete_batch_size = 1;
    })
    .await;
    let loaded = app.load("member", 2, 6).await;
    let target = &loaded.members[0];
    let rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;
    // Of every three DeleteObjects requests, one succeeds and two fail: the
    // SDK's two attempts of the next call.
    app.s3
        .faults()
        .fail_op_cycle("DeleteObjects", "SlowDown", 503, &[false, true, true]);

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    let started = Instant::now();
    let status = loop {
        let status = app.engine.status(id).await.unwrap().record;
        if matches!(status.state, State::Done | State::Failed) {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(status.state, State::Done, "{:?}", status.last_error);
    let retries = app
        .events(id)
        .await
        .iter()
        .filter(|e| e.kind == "retry_scheduled")
        .count();
    assert!(
        retries >= 3,
        "the faults made attempts fail ({retries} retries)"
    );
    app.s3.faults().clear();
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&rows).await;
    app.assert_objects_present(&loaded.members[1]).await;
}

/// Regression (issue 11): a Failed request's `last_error` was a ~900
/// character SDK dump ending "(transient; will retry with backoff)" although
/// nothing would retry it. Now it is one sentence: what failed, its
/// innermost cause, and that `lethe retry` resumes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_says_in_one_sentence_what_failed_and_what_to_do() {
    let app = TestApp::start_with(|c| c.retry.max_attempts = 2).await;
    let loaded = app.load("member", 1, 5).await;
    let id = app.submit(&loaded.members[0].key).await;
    app.s3.stop().await;

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    app.wait_for_state(id, State::Failed, Duration::from_secs(60))
        .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let status = app.engine.status(id).await.unwrap().record;
    let error = status.last_error.expect("the error is recorded");
    eprintln!("last_error: {error}");
    assert!(error.len() < 400, "{} characters: {error}", error.len());
    assert!(!error.contains('\n'), "{error}");
    assert!(!error.contains("will retry"), "{error}");
    assert!(!error.contains("retrying in"), "{error}");
    assert!(
        error.to_ascii_lowercase().contains("connection refused"),
        "the innermost cause: {error}"
    );
    assert!(error.contains("gave up after 2 attempts"), "{error}");
    assert!(error.contains(&format!("lethe retry {id}")), "{error}");
    assert_eq!(status.attempts, 2);

    app.s3.restart().await;
    app.engine.retry(id).await.unwrap();
    app.run_worker_once().await;
    assert_eq!(app.state_of(id).await, State::Done);
    app.assert_objects_gone(&loaded.members[0]).await;
}

/// What one fault-injection run did.
struct FaultRun {
    submitted: usize,
    done: usize,
    failed: usize,
    elapsed: Duration,
    faults: RandomCounts,
}

/// Erases 20 of 25 members while the S3 server fails `percent` of all
/// requests at random (seeded: set LETHE_FAULT_SEED to replay a run), with
/// the default retry settings: `retry`, and the S3 client's
/// `sdk_max_attempts`, `call_retries` and `call_retry_backoff_ms`, and the
/// default batch sizes. The worker runs four requests at a time, without
/// load limits or pauses, so that the run takes seconds. Checks the outcome: every
/// erased member's objects are gone and rows masked, and the five others'
/// rows and objects are untouched.
async fn erase_twenty_members_under(percent: f64) -> FaultRun {
    let defaults = lethe::config::Config::default();
    let app = TestApp::start_with(|c| {
        c.retry = defaults.retry.clone();
        c.s3.sdk_max_attempts = defaults.s3.sdk_max_attempts;
        c.s3.call_retries = defaults.s3.call_retries;
        c.s3.call_retry_backoff_ms = defaults.s3.call_retry_backoff_ms;
        c.s3.operation_timeout_secs = defaults.s3.operation_timeout_secs;
        c.worker.lease_secs = defaults.worker.lease_secs;
        c.worker.batch_size = defaults.worker.batch_size;
        c.worker.delete_batch_size = defaults.worker.delete_batch_size;
        c.worker.concurrency = 4;
    })
    .await;
    let loaded = app.load("member", 25, 12).await;
    let (erased, bystanders) = loaded.members.split_at(20);
    let before = app.snapshot().await;
    let mut rows = std::collections::BTreeSet::new();
    for member in erased {
        rows.extend(app.rows_of(&member.key).await);
    }
    let seed = std::env::var("LETHE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1e7e_0011);
    app.s3.faults().random(percent, seed);

    let started = Instant::now();
    let mut ids = Vec::new();
    for member in erased {
        ids.push(app.submit(&member.key).await);
    }
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    let (done, failed) = loop {
        let mut done = 0;
        let mut failed = 0;
        for id in &ids {
            match app.state_of(*id).await {
                State::Done => done += 1,
                State::Failed => failed += 1,
                _ => {}
            }
        }
        if done + failed == ids.len() {
            break (done, failed);
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{percent}% faults (seed {seed}): {done} done, {failed} failed after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    shutdown.cancel();
    running.await.unwrap().unwrap();
    let faults = app.s3.faults().random_counts();
    app.s3.faults().clear();
    let run = FaultRun {
        submitted: ids.len(),
        done,
        failed,
        elapsed,
        faults,
    };
    eprintln!(
        "fault injection {percent}% (seed {seed:#x}): {} submitted, {} done, {} failed in {:.1} s; \
         {} of {} S3 requests failed ({} 503 SlowDown, {} 500, {} dropped before, {} dropped after)",
        run.submitted,
        run.done,
        run.failed,
        run.elapsed.as_secs_f64(),
        faults.faults(),
        faults.requests,
        faults.slow_down,
        faults.internal_error,
        faults.dropped_before,
        faults.dropped_after,
    );
    for id in &ids {
        let status = app.engine.status(*id).await.unwrap().record;
        assert_eq!(status.state, State::Done, "{id}: {:?}", status.last_error);
    }

    // The outcome, not just the states.
    for member in erased {
        app.assert_objects_gone(member).await;
    }
    app.assert_rows_masked(&rows).await;
    for member in bystanders {
        app.assert_objects_present(member).await;
    }
    let after = app.snapshot().await;
    for (row, text) in &before {
        if !rows.contains(row) {
            assert_eq!(after.get(row), Some(text), "bystander row {row:?} changed");
        }
    }
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_members_are_erased_without_faults() {
    let run = erase_twenty_members_under(0.0).await;
    assert_eq!((run.done, run.failed), (20, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_members_are_erased_under_ten_percent_random_s3_faults() {
    let run = erase_twenty_members_under(10.0).await;
    assert_eq!((run.done, run.failed), (20, 0));
    // Verification lists a member's directories, so the run makes ~160
    // requests (~16 faults expected; each kind is checked at 30%).
    assert!(run.faults.faults() >= 5, "{:?}", run.faults);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_members_are_erased_under_thirty_percent_random_s3_faults() {
    let run = erase_twenty_members_under(30.0).await;
    assert_eq!((run.done, run.failed), (20, 0));
    assert_every_kind_of_fault(&run.faults, 40);
}

/// The run was really under fire: enough faults, and each kind at least once.
fn assert_every_kind_of_fault(faults: &RandomCounts, at_least: u64) {
    assert!(faults.faults() >= at_least, "{faults:?}");
    assert!(
        faults.slow_down > 0
            && faults.internal_error > 0
            && faults.dropped_before > 0
            && faults.dropped_after > 0,
        "{faults:?}"
    );
}
