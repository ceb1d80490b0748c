//! Submissions: by library call or bare SQL, duplicates coalesced and
//! visible, idempotency keys, concurrent submitters, and cancel's rule.

use lethe::{Error, State};

use crate::app::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_by_library_and_sql_are_coalesced_and_visible() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 1, 6).await;
    let member = &loaded.members[0].key;

    let first = app.engine.submit(member, None).await.unwrap();
    assert_eq!(first.coalesced_into, None);
    let second = app.engine.submit(member, None).await.unwrap();
    assert_eq!(second.coalesced_into, Some(first.id));
    let by_sql: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO erasure_requests (subject_key) VALUES ($1) RETURNING id")
            .bind(member)
            .fetch_one(app.pool())
            .await
            .unwrap();

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_for_one_subject_leave_one_active_and_lose_none() {
    let app = TestApp::start().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let engine = app.engine.clone();
        let pool = app.pool().clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                engine.submit("racer", None).await.unwrap().id
            } else {
                sqlx::query_scalar(
                    "INSERT INTO erasure_requests (subject_key) VALUES ('racer') RETURNING id",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        ids.push(id.unwrap());
    }
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM erasure_requests WHERE subject_key = 'racer' GROUP BY state ORDER BY state")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        states,
        vec![("coalesced".to_owned(), 23), ("requested".to_owned(), 1)]
    );
    assert_eq!(ids.len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_returns_the_first_submission() {
    let app = TestApp::start().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_works_before_deletion_and_is_refused_after() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 2, 6).await;
    let cancelled = app
        .engine
        .submit(&loaded.members[0].key, None)
        .await
        .unwrap()
        .id;
    let record = app.engine.cancel(cancelled).await.unwrap();
    assert_eq!(record.state, State::Cancelled);

    let finished = app
        .engine
        .submit(&loaded.members[1].key, None)
        .await
        .unwrap()
        .id;
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
