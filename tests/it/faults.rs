//! Faults around the real components: S3 unreachable, S3 refusing, S3
//! throttling past the retry budget, and database connections killed
//! mid-run. Transient trouble is retried with the backoff stored in the
//! database; permanent trouble parks the request in Failed with a clear
//! message, and `retry` resumes it from its checkpoint.
//!
//! PostgreSQL only: killing database connections needs a server (SQLite is
//! a file in the worker's process); the S3 faults are above the seam.

use std::time::{Duration, Instant};

use lethe::State;
use lethe::worker::WorkerOptions;

use crate::app::TestApp;
use crate::harness::terminate_connections;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_for_a_while_is_retried_and_finished() {
    let app = TestApp::start_with(|c| c.retry.max_attempts = 100).await;
    let loaded = app.load("member", 2, 20).await;
    let target = &loaded.members[0];
    let target_rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;

    app.s3.stop().await;
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());

    // Discovery needs no S3; deletion then fails and backs off, again and again.
    let started = Instant::now();
    let status = loop {
        let status = app.engine.status(id).await.unwrap().record;
        if status.attempts >= 3 {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no retries seen: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        status.state,
        State::TargetsFound,
        "still active, not failed"
    );
    let error = status.last_error.expect("the error is recorded");
    // The first S3 call of deletion asks whether the bucket keeps versions.
    assert!(
        (error.contains("S3 GetBucketVersioning") || error.contains("S3 DeleteObjects"))
            && error.contains("retrying in"),
        "{error}"
    );
    assert!(status.next_attempt_at > status.updated_at - chrono::Duration::seconds(1));

    app.s3.restart().await;
    app.wait_for_state(id, State::Done, Duration::from_secs(30))
        .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    app.assert_objects_gone(target).await;
    app.assert_objects_present(&loaded.members[1]).await;
    app.assert_rows_masked(&target_rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_parks_in_failed_and_retry_finishes_it() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 2, 15).await;
    let target = &loaded.members[1];
    let target_rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;

    app.s3
        .faults()
        .fail_op("DeleteObjects", "AccessDenied", 403);
    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Failed);
    assert_eq!(status.resume_state.0, Some(State::TargetsFound));
    assert_eq!(status.attempts, 1, "permanent errors are not retried");
    let error = status.last_error.clone().unwrap();
    assert!(error.contains("AccessDenied"), "{error}");
    assert!(
        error.contains("lethe retry"),
        "the message says what to do: {error}"
    );
    assert!(
        !error.contains(&target.key),
        "no subject key in errors: {error}"
    );
    // Nothing was deleted and no row masked while it failed.
    app.assert_objects_present(target).await;
    assert_eq!(status.rows_masked, 0);
    // A failed request can neither be cancelled (deletion had started) ...
    assert!(app.engine.cancel(id).await.is_err());

    // ... but once the cause is gone, retry resumes it from its checkpoint.
    app.s3.faults().clear();
    let resumed = app.engine.retry(id).await.unwrap();
    assert_eq!(resumed.state, State::TargetsFound);
    app.run_worker_once().await;
    assert_eq!(app.state_of(id).await, State::Done);
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
    app.assert_objects_present(&loaded.members[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_beyond_the_retry_budget_fails_with_the_attempt_count() {
    let app = TestApp::start_with(|c| c.retry.max_attempts = 3).await;
    let loaded = app.load("member", 1, 10).await;
    let id = app.submit(&loaded.members[0].key).await;
    app.s3.faults().fail_op("DeleteObjects", "SlowDown", 503);

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    app.wait_for_state(id, State::Failed, Duration::from_secs(30))
        .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.attempts, 3);
    assert!(
        status.last_error.as_deref().unwrap().contains("SlowDown"),
        "{status:?}"
    );

    app.s3.faults().clear();
    app.engine.retry(id).await.unwrap();
    app.run_worker_once().await;
    assert_eq!(app.state_of(id).await, State::Done);
    app.assert_objects_gone(&loaded.members[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_killed_mid_run_are_survived() {
    let app = TestApp::start_with(|c| {
        c.retry.max_attempts = 100;
        c.worker.batch_size = 5;
        c.worker.delete_batch_size = 10;
    })
    .await;
    let loaded = app.load("member", 2, 40).await;
    let target = &loaded.members[0];
    let target_rows = app.rows_of(&target.key).await;
    let id = app.submit(&target.key).await;

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    let mut killed = 0;
    let started = Instant::now();
    loop {
        // The test's own reads may meet a killed connection too: that is
        // the point, so a failed read just means "look again".
        if let Ok(status) = app.engine.status(id).await
            && status.record.state == State::Done
        {
            break;
        }
        killed += terminate_connections(&app.db.as_ref().unwrap().name).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not done after {killed} killed connections"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert!(killed > 0, "the test killed no connection");
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
    app.assert_objects_present(&loaded.members[1]).await;
}

/// A connection the database dropped while it sat in the pool (a restart,
/// a proxy's idle timeout) is replaced before it is handed out, not used:
/// the pool pings it first. Skipping that ping saves a round trip a
/// statement, and this test fails when it is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_database_dropped_while_idle_is_replaced_not_used() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 1, 2).await;
    let id = app.submit(&loaded.members[0].key).await;
    app.engine.status(id).await.expect("a first read");

    // Returns once the backends are gone; the pool still holds their
    // connections.
    let killed = terminate_connections(&app.db.as_ref().unwrap().name).await;
    assert!(killed > 0, "the test killed no connection");

    let status = app.engine.status(id).await;
    assert!(
        status.is_ok(),
        "a read after the database dropped idle connections failed: {:?}",
        status.err()
    );
}

/// Regression (issue 11): a catalogued bucket that no longer exists made
/// every erasure fail for good (NoSuchBucket is permanent), although the
/// objects in it are gone. Now they count as deleted, the missing bucket is
/// one anomaly on the request, and the rest of the erasure goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogued_bucket_that_no_longer_exists_is_an_anomaly_not_a_failure() {
    let app = TestApp::start_with(|c| c.worker.delete_batch_size = 5).await;
    let loaded = app.load("member", 2, 15).await;
    let target = &loaded.members[0];
    let rows = app.rows_of(&target.key).await;
    // The inputs bucket is gone, objects and all (s3s-fs keeps a bucket as a
    // directory).
    std::fs::remove_dir_all(app.s3.data_dir().join("lethe-example-inputs")).unwrap();
    let id = app.submit(&target.key).await;

    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap();
    assert_eq!(
        status.record.state,
        State::Done,
        "{:?}",
        status.record.last_error
    );
    let missing: Vec<_> = status
        .anomalies
        .iter()
        .filter(|a| a.kind == "bucket_missing")
        .collect();
    assert_eq!(
        missing.len(),
        1,
        "one anomaly, however many batches: {missing:?}"
    );
    assert!(
        missing[0]
            .detail
            .contains("\"lethe-example-inputs\" does not exist"),
        "{}",
        missing[0].detail
    );
    assert!(status.record.anomaly_count >= 1);
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&rows).await;
    for object in &loaded.members[1].objects {
        if object.bucket == "lethe-example-results" {
            assert!(app.s3.exists(&object.bucket, &object.key).await);
        }
    }
    let report = app.engine.report(id).await.unwrap();
    let text = serde_json::to_string(&report).unwrap();
    assert!(text.contains("bucket_missing"), "the record lists it");
}
