//! End-to-end erasures: exactly one member's data goes, everyone else's
//! stays byte for byte, whichever way the request arrives. On both
//! backends, but for the wake-up by NOTIFY, which only PostgreSQL has (and
//! the SQLite test beside it pins what SQLite does instead).

use std::time::Duration;

use lethe::State;
use lethe::store::Backend;
use lethe::worker::WorkerOptions;

use crate::app::TestApp;

async fn one_member_among_five_is_erased_and_the_others_are_untouched(backend: Backend) {
    let app = TestApp::start_on(backend).await;
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
    // The record holds the counts, on either backend.
    let record = app.engine.report(submission.id).await.unwrap();
    let masked: i64 = record
        .tables
        .iter()
        .filter(|t| t.method == "masked")
        .map(|t| t.rows)
        .sum();
    assert_eq!(masked, 72);

    // Done's commit: the finishing step's start, the advance, the key's
    // minimisation and the lease's release, in that order, by one holder;
    // the lease is free and released once.
    assert_eq!(status.record.lease_owner, None);
    assert_eq!(status.record.lease_expires_at, None);
    let events = app.events(submission.id).await;
    let last: Vec<_> = events[events.len() - 4..].iter().collect();
    let kinds: Vec<&str> = last.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["batch_started", "advanced", "subject_minimised", "released"],
        "{events:?}"
    );
    assert_eq!(last[0].phase.as_deref(), Some("verifying"));
    assert!(last[0].batch_no.is_some(), "{:?}", last[0]);
    assert_eq!(last[1].detail.as_deref(), Some("done"));
    for event in &last {
        assert_eq!(event.lease_epoch, last[0].lease_epoch, "{events:?}");
        assert_eq!(event.worker, last[0].worker, "{events:?}");
    }
    let releases = events.iter().filter(|e| e.kind == "released").count();
    assert_eq!(releases, 1, "{events:?}");
}

/// `INSERT INTO erasure_requests (subject_key) VALUES (...)` names only the
/// subject and is a complete submission: a running worker finds it (by
/// NOTIFY on PostgreSQL, by polling on SQLite) and finishes it.
async fn a_bare_sql_insert_is_a_complete_submission_and_is_finished(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 2, 12).await;
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = app
        .service()
        .insert_request(&loaded.members[0].key)
        .await
        .expect("a first submission is not folded: RETURNING gives its id");
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

/// A submission through the library wakes an idle worker of the same
/// process at once, on both backends (a two-minute poll could not).
async fn a_library_submission_wakes_an_idle_worker_in_the_same_process(backend: Backend) {
    let app = TestApp::start_on_with(backend, |c| c.worker.poll_interval_ms = Some(120_000)).await;
    let loaded = app.load("member", 1, 6).await;
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = app.submit(&loaded.members[0].key).await;
    app.wait_for_state(id, State::Done, Duration::from_secs(20))
        .await;
    shutdown.cancel();
    assert_eq!(running.await.unwrap().unwrap().done, 1);
}

async fn a_member_with_no_data_finishes_clean(backend: Backend) {
    let app = TestApp::start_on(backend).await;
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
async fn regression_ids_crossing_a_digit_boundary_are_all_found(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    // The member's client_old ids become 5..34: one- and two-digit ids in
    // one table, more than a batch (10) of them sorting before "5" as text.
    app.service().set_next_client_id(5).await;
    let loaded = app.load("member", 1, 100).await;
    let member = &loaded.members[0];
    let rows = app.rows_of(&member.key).await;
    assert!(rows.contains(&("client_old".to_owned(), "5".to_owned())));

    let id = app.submit(&member.key).await;
    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Done, "{:?}", status.last_error);
    assert_eq!(status.rows_found, 300);
    app.assert_rows_masked(&rows).await;
    app.assert_objects_gone(member).await;
}

on_both_backends!(
    one_member_among_five_is_erased_and_the_others_are_untouched,
    a_bare_sql_insert_is_a_complete_submission_and_is_finished,
    a_library_submission_wakes_an_idle_worker_in_the_same_process,
    a_member_with_no_data_finishes_clean,
    regression_ids_crossing_a_digit_boundary_are_all_found,
);

/// PostgreSQL only: NOTIFY. A poll interval far longer than the test's
/// patience, so only the LISTEN/NOTIFY path can wake the worker in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_bare_sql_insert_wakes_an_idle_worker_by_notify() {
    let app = TestApp::start_with(|c| c.worker.poll_interval_ms = Some(120_000)).await;
    let loaded = app.load("member", 2, 12).await;
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    // Let it go idle (it found nothing and is waiting).
    tokio::time::sleep(Duration::from_millis(500)).await;

    let id = app
        .service()
        .insert_request(&loaded.members[0].key)
        .await
        .unwrap();
    app.wait_for_state(id, State::Done, Duration::from_secs(20))
        .await;

    shutdown.cancel();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.done, 1);
    app.assert_objects_gone(&loaded.members[0]).await;
    app.assert_objects_present(&loaded.members[1]).await;
}

/// SQLite's limit, pinned: there is no NOTIFY, so a bare INSERT (from any
/// process) waits for the idle worker's next poll; a submission through the
/// worker's own process wakes it, and it then claims both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_bare_sql_insert_waits_for_the_poll_without_notify() {
    let app = TestApp::start_on_with(Backend::Sqlite, |c| {
        c.worker.poll_interval_ms = Some(120_000)
    })
    .await;
    let loaded = app.load("member", 2, 6).await;
    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let by_sql = app
        .service()
        .insert_request(&loaded.members[0].key)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.state_of(by_sql).await,
        State::Requested,
        "nothing can have woken the worker"
    );

    let by_library = app.submit(&loaded.members[1].key).await;
    for id in [by_sql, by_library] {
        app.wait_for_state(id, State::Done, Duration::from_secs(20))
            .await;
    }
    shutdown.cancel();
    assert_eq!(running.await.unwrap().unwrap().done, 2);
}
