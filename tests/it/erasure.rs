//! End-to-end erasures: exactly one member's data goes, everyone else's
//! stays byte for byte, whichever way the request arrives.

use std::time::Duration;

use lethe::State;
use lethe::worker::WorkerOptions;

use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_among_five_is_erased_and_the_others_are_untouched() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 5, 24).await;
    let target = &loaded.members[2];
    let target_rows = app.rows_of(&target.key).await;
    // 24 requests: a client, feature and task row each.
    assert_eq!(target_rows.len(), 72);
    let before = app.snapshot().await;

    let submission = app.engine.submit(&target.key, None).await.unwrap();
    let summary = app.run_worker_once().await;
    assert_eq!(summary.done, 1, "{summary:?}");

    let status = app.engine.status(submission.id).await.unwrap();
    assert_eq!(status.record.state, State::Done);
    assert_eq!(status.record.anomaly_count, 0, "{:?}", status.anomalies);
    assert_eq!(status.record.rows_found, 72);
    assert_eq!(status.record.rows_masked, 72);
    assert_eq!(status.record.objects_found as usize, target.objects.len());
    assert_eq!(status.record.objects_deleted as usize, target.objects.len());

    // The member's objects are gone and their rows masked...
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
    // ...nothing leads back to them...
    assert!(app.rows_of(&target.key).await.is_empty());
    // ...and everyone else's rows are byte-identical, their objects present,
    // and the shared sample (referenced by every member) is retained.
    let after = app.snapshot().await;
    assert_eq!(before.len(), after.len(), "rows were added or removed");
    for (row, text) in &before {
        if !target_rows.contains(row) {
            assert_eq!(
                after.get(row),
                Some(text),
                "row {row:?} of another member changed"
            );
        }
    }
    for other in loaded.members.iter().filter(|m| m.key != target.key) {
        app.assert_objects_present(other).await;
    }
    for shared in &loaded.shared {
        assert!(
            app.s3.exists(&shared.bucket, &shared.key).await,
            "the shared sample was deleted"
        );
    }
    assert!(
        status.record.objects_retained >= 1,
        "the shared sample is reported as retained"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_sql_insert_wakes_an_idle_worker_and_is_finished() {
    // A poll interval far longer than the test's patience: only the
    // LISTEN/NOTIFY path can wake the worker in time.
    let app = TestApp::start_with(|c| c.worker.poll_interval_ms = 120_000).await;
    let loaded = app.load("member", 2, 12).await;
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    // Let it go idle (it found nothing and is waiting).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let id: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO erasure_requests (subject_key) VALUES ($1) RETURNING id")
            .bind(&loaded.members[0].key)
            .fetch_one(app.pool())
            .await
            .unwrap();
    app.wait_for_state(id, State::Done, Duration::from_secs(20))
        .await;

    shutdown.cancel();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.done, 1);
    app.assert_objects_gone(&loaded.members[0]).await;
    app.assert_objects_present(&loaded.members[1]).await;
    let rows = app.rows_of(&loaded.members[0].key).await;
    assert!(rows.is_empty(), "rows still lead to the member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_no_data_finishes_clean() {
    let app = TestApp::start().await;
    app.load("member", 1, 3).await;
    let submission = app.engine.submit("nobody-at-all", None).await.unwrap();
    app.run_worker_once().await;
    let status = app.engine.status(submission.id).await.unwrap();
    assert_eq!(status.record.state, State::Done);
    assert_eq!(status.record.rows_found, 0);
    assert_eq!(status.record.objects_found, 0);
}

/// Regression: discovery paged client rows by `id::text`, so ids sorted as
/// text ("10" < "5") and a page boundary skipped the member's smallest ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_ids_crossing_a_digit_boundary_are_all_found() {
    let app = TestApp::start().await;
    // The member's client_old ids become 5..34: one- and two-digit ids in
    // one table, more than a batch (10) of them sorting before "5" as text.
    sqlx::query("SELECT setval('client_id_seq', 4)")
        .execute(app.pool())
        .await
        .unwrap();
    let loaded = app.load("member", 1, 100).await;
    let member = &loaded.members[0];
    let rows = app.rows_of(&member.key).await;
    assert!(rows.contains(&("client_old".to_owned(), "5".to_owned())));

    let id = app.engine.submit(&member.key, None).await.unwrap().id;
    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Done, "{:?}", status.last_error);
    assert_eq!(status.rows_found, 300);
    app.assert_rows_masked(&rows).await;
    app.assert_objects_gone(member).await;
}
