//! Submissions: by library call or bare SQL, duplicates coalesced and
//! visible, idempotency keys, concurrent submitters, and cancel's rule. On
//! both backends: the coalescing is a PostgreSQL trigger under an advisory
//! lock there, and on SQLite a trigger under the write lock plus the
//! library's own check.

use lethe::store::Backend;
use lethe::{Error, State};

use crate::app::TestApp;

async fn duplicates_by_library_and_sql_are_coalesced_and_visible(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 1, 6).await;
    let member = &loaded.members[0].key;

    let first = app.engine.submit(member, None).await.unwrap();
    assert_eq!(first.coalesced_into, None);
    let second = app.engine.submit(member, None).await.unwrap();
    assert_eq!(second.coalesced_into, Some(first.id));
    // On SQLite the folded INSERT returns no row (its trigger inserts the
    // folded row itself): find it by the member's key.
    let by_sql = match app.service().insert_request(member).await {
        Some(id) => id,
        None => app
            .engine
            .status_for_subject(member)
            .await
            .unwrap()
            .into_iter()
            .map(|status| status.record.id)
            .find(|id| ![first.id, second.id].contains(id))
            .expect("the folded SQL submission is there"),
    };

    let status = app.engine.status(by_sql).await.unwrap();
    assert_eq!(status.record.state, State::Coalesced);
    assert_eq!(status.coalesced_into.as_ref().map(|r| r.id), Some(first.id));
    assert_eq!(
        app.engine
            .status(first.id)
            .await
            .unwrap()
            .record
            .coalesced_count,
        2
    );
    assert!(status.to_string().contains(&format!("into {}", first.id)));

    app.run_worker_once().await;
    assert_eq!(app.state_of(first.id).await, State::Done);
    // The duplicate follows the request that did the work.
    assert_eq!(
        app.engine
            .status(second.id)
            .await
            .unwrap()
            .effective_state(),
        State::Done
    );
    // Once done, a new submission is a new erasure, not a duplicate.
    let later = app.engine.submit(member, None).await.unwrap();
    assert_eq!(later.coalesced_into, None);
}

async fn concurrent_submissions_for_one_subject_leave_one_active_and_lose_none(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let engine = app.engine.clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                Some(engine.submit("racer", None).await.unwrap().id)
            } else {
                crate::service::Service::new(engine.store())
                    .insert_request("racer")
                    .await
            }
        });
    }
    let mut returned = 0;
    while let Some(id) = tasks.join_next().await {
        returned += usize::from(id.unwrap().is_some());
    }
    assert_eq!(
        app.service().states_of("racer").await,
        vec![("coalesced".to_owned(), 23), ("requested".to_owned(), 1)]
    );
    match backend {
        Backend::Postgres => assert_eq!(returned, 24),
        // Bare INSERTs folded by SQLite's trigger return no row.
        Backend::Sqlite => assert!((12..=13).contains(&returned), "{returned}"),
    }
}

async fn an_idempotency_key_returns_the_first_submission(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let first = app.engine.submit("m-1", Some("ticket-77")).await.unwrap();
    let again = app.engine.submit("m-1", Some("ticket-77")).await.unwrap();
    assert_eq!(again.id, first.id);
    assert!(again.replayed);
    let err = app
        .engine
        .submit("m-2", Some("ticket-77"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(
        !err.to_string().contains("m-1"),
        "no subject key in errors: {err}"
    );
    assert!(matches!(
        app.engine.submit("  ", None).await,
        Err(Error::InvalidInput(_))
    ));
}

async fn cancel_works_before_deletion_and_is_refused_after(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 2, 6).await;
    let cancelled = app.submit(&loaded.members[0].key).await;
    let record = app.engine.cancel(cancelled).await.unwrap();
    assert_eq!(record.state, State::Cancelled);

    let finished = app.submit(&loaded.members[1].key).await;
    app.run_worker_once().await;
    // The cancelled member was not touched; the other was erased.
    app.assert_objects_present(&loaded.members[0]).await;
    app.assert_objects_gone(&loaded.members[1]).await;
    let err = app.engine.cancel(finished).await.unwrap_err();
    match err {
        Error::Refused { reason, .. } => {
            assert!(reason.contains("S3 deletion started"), "{reason}")
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(matches!(
        app.engine.cancel(uuid::Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        app.engine.retry(finished).await,
        Err(Error::Refused { .. })
    ));
}

on_both_backends!(
    duplicates_by_library_and_sql_are_coalesced_and_visible,
    concurrent_submissions_for_one_subject_leave_one_active_and_lose_none,
    an_idempotency_key_returns_the_first_submission,
    cancel_works_before_deletion_and_is_refused_after,
);
