//! Lock order on PostgreSQL: a member's advisory lock is always taken before
//! any request row lock, by lethe and by the insert trigger alike, so a
//! service's bare `INSERT INTO erasure_requests` can never deadlock with a
//! request finishing — and is never the transaction PostgreSQL aborts.
//!
//! PostgreSQL only: SQLite has one write lock and no advisory locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lethe::State;
use lethe::worker::WorkerOptions;

use crate::app::TestApp;

/// Regression (issue 11): Done locked the request row (the fence) and then
/// the member's advisory lock (minimisation); a duplicate INSERT took the
/// advisory lock (the coalescing trigger) and then, through the foreign key
/// of `coalesced_into`, a share lock on that same row. Each waited for the
/// other until PostgreSQL aborted one, usually the service's INSERT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_inserts_while_requests_finish_never_deadlock() {
    let app = TestApp::start_with(|c| c.worker.concurrency = 4).await;
    let loaded = app.load("member", 12, 2).await;
    let mut ids = Vec::new();
    for member in &loaded.members {
        ids.push(app.submit(&member.key).await);
    }

    // The service keeps submitting every member again, as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let inserted = Arc::new(AtomicU64::new(0));
    let mut inserters = Vec::new();
    for member in &loaded.members {
        let (pool, key) = (app.pool().clone(), member.key.clone());
        let (stop, inserted) = (stop.clone(), inserted.clone());
        inserters.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match sqlx::query("INSERT INTO erasure_requests (subject_key) VALUES ($1)")
                    .bind(&key)
                    .execute(&pool)
                    .await
                {
                    Ok(_) => {
                        inserted.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(err) => errors.push(err.to_string()),
                }
            }
            errors
        }));
    }

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    let started = Instant::now();
    loop {
        let mut finished = 0;
        for id in &ids {
            if matches!(app.state_of(*id).await, State::Done | State::Failed) {
                finished += 1;
            }
        }
        if finished == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{finished} of {} finished",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the later submissions (new requests, after Done) run into more
    // completions for a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut errors = Vec::new();
    for inserter in inserters {
        errors.extend(inserter.await.unwrap());
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();

    eprintln!(
        "{} duplicate INSERTs while {} requests finished",
        inserted.load(Ordering::SeqCst),
        ids.len()
    );
    assert!(inserted.load(Ordering::SeqCst) > 100);
    assert!(
        errors.is_empty(),
        "{} INSERTs failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    for (id, member) in ids.iter().zip(&loaded.members) {
        let status = app.engine.status(*id).await.unwrap().record;
        assert_eq!(status.state, State::Done, "{:?}", status.last_error);
        app.assert_objects_gone(member).await;
    }
    let deadlocks = app
        .store()
        .list(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.last_error
                .as_deref()
                .is_some_and(|e| e.contains("deadlock"))
        })
        .count();
    assert_eq!(deadlocks, 0, "no request met a deadlock either");
}

/// Regression (issue 11): a masking statement waiting on a row the service
/// holds waited for as long as the service held it, keeping the batch's own
/// locks (and its worker) past a window's close or SIGTERM. Now the batch's
/// transaction runs with `lock_timeout` (`worker.lock_timeout_ms`; 300 ms
/// here) and `statement_timeout`: it gives up, the request backs off (it
/// is not Failed), and it finishes once the service lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masking_batch_gives_up_on_a_row_the_service_holds_and_finishes_later() {
    let app = TestApp::start_with(|c| c.worker.lock_timeout_ms = 300).await;
    let loaded = app.load("member", 2, 10).await;
    let target = &loaded.members[0];
    let rows = app.rows_of(&target.key).await;
    let before = app.snapshot().await;
    let id = app.submit(&target.key).await;

    // A service transaction holds one of the member's rows.
    let (table, row) = rows.iter().next().unwrap().clone();
    let mut service = app.pool().begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {table} WHERE id::text = $1 FOR UPDATE"
    )))
    .bind(&row)
    .execute(&mut *service)
    .await
    .unwrap();

    let worker = app.engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    let started = Instant::now();
    let (batch_started, gave_up) = loop {
        let events = app.events(id).await;
        let gave_up = events.iter().find(|e| {
            e.kind == "retry_scheduled"
                && e.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("lock timeout"))
        });
        if let Some(gave_up) = gave_up {
            let batch_started = events
                .iter()
                .find(|e| e.kind == "batch_started" && e.phase.as_deref() == Some("masking_rows"))
                .expect("the masking batch started")
                .at;
            break (batch_started, gave_up.at);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no masking batch gave up on the held row in 20 s: {:?}",
            app.engine.status(id).await.unwrap().record
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let waited = (gave_up - batch_started).to_std().unwrap();
    assert!(waited < Duration::from_secs(2), "gave up after {waited:?}");
    let status = app.engine.status(id).await.unwrap().record;
    assert_ne!(status.state, State::Failed, "{:?}", status.last_error);
    assert_eq!(status.rows_masked, 0, "the batch rolled back as one");

    service.rollback().await.unwrap();
    app.wait_for_state(id, State::Done, Duration::from_secs(30))
        .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    app.assert_rows_masked(&rows).await;
    app.assert_objects_gone(target).await;
    app.assert_objects_present(&loaded.members[1]).await;
    let after = app.snapshot().await;
    for (row, text) in &before {
        if !rows.contains(row) {
            assert_eq!(
                after.get(row),
                Some(text),
                "row {row:?} of another member changed"
            );
        }
    }
}
