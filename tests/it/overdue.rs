//! Overdue requests: not done within `overdue_after` (default 5 days) of
//! their submission, flagged in `status` and `list`, and listed alone by
//! `list --overdue`; a request done after its deadline is shown as late.
//!
//! PostgreSQL only: the deadline is computed above the store seam; the
//! overdue filter's SQLite statement is exercised by `list` in the SQLite
//! half of the suite.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lethe::State;
use lethe::clock::ManualClock;
use lethe::store::requests::ListFilter;

use crate::app::{TestApp, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_not_done_within_five_days_are_flagged_and_filtered() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 3, 4).await;
    let done = app.submit(&loaded.members[0].key).await;
    app.run_worker_once().await;
    let waiting = app.submit(&loaded.members[1].key).await;
    let duplicate = app.submit(&loaded.members[1].key).await;
    assert_eq!(app.state_of(done).await, State::Done);

    // Today nothing is overdue.
    let overdue = app
        .engine
        .list_overdue(&ListFilter::default())
        .await
        .unwrap();
    assert!(overdue.is_empty(), "{overdue:?}");
    let status = app.engine.status(waiting).await.unwrap();
    assert!(!status.record.overdue);
    assert_eq!(
        status.record.due_by,
        Some(status.record.requested_at + Duration::from_secs(5 * 86_400))
    );

    // Four days and 23 hours later: not yet. Five days and a minute: overdue,
    // except the one that is done and the duplicate folded into another.
    let clock = ManualClock::new(Utc::now() + Duration::from_secs(5 * 86_400 - 3600));
    let later = app.engine.clone().with_clock(Arc::new(clock.clone()));
    assert!(!later.status(waiting).await.unwrap().record.overdue);
    clock.advance(Duration::from_secs(3660));
    let status = later.status(waiting).await.unwrap();
    assert!(status.record.overdue);
    assert!(status.to_string().contains("OVERDUE"), "{status}");
    assert!(!later.status(done).await.unwrap().record.overdue);
    let dup = later.status(duplicate).await.unwrap();
    assert!(
        !dup.record.overdue,
        "a duplicate is not the one that is late"
    );
    assert!(
        dup.coalesced_into.unwrap().overdue,
        "the request it joined is"
    );
    let overdue = later.list_overdue(&ListFilter::default()).await.unwrap();
    let ids: Vec<_> = overdue.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![waiting]);
    let all = later.list(&ListFilter::default()).await.unwrap();
    assert_eq!(all.iter().filter(|r| r.overdue).count(), 1);

    // The command line, on the real clock: submitted six days ago.
    sqlx::query(
        "UPDATE erasure_requests SET requested_at = now() - interval '6 days' WHERE id = $1",
    )
    .bind(waiting)
    .execute(app.pool())
    .await
    .unwrap();
    let out = app.run_lethe(&["list", "--overdue"]).await;
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(shown.contains(&waiting.to_string()), "{shown}");
    assert!(!shown.contains(&done.to_string()), "{shown}");
    let row = shown
        .lines()
        .find(|l| l.contains(&waiting.to_string()))
        .unwrap();
    assert!(row.trim_end().ends_with("yes"), "{row}");
    let out = app.run_lethe(&["list", "--overdue", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["overdue"], true);
    let out = app.run_lethe(&["status", &waiting.to_string()]).await;
    assert!(
        text(&out.stdout).contains("OVERDUE"),
        "{}",
        text(&out.stdout)
    );

    // Done, but only after its deadline: not overdue any more, marked late.
    sqlx::query(
        "UPDATE erasure_requests SET requested_at = now() - interval '6 days' WHERE id = $1",
    )
    .bind(done)
    .execute(app.pool())
    .await
    .unwrap();
    let status = app.engine.status(done).await.unwrap();
    assert!(!status.record.overdue);
    assert!(status.record.finished_late);
    assert!(
        status.to_string().contains("LATE: done after its deadline"),
        "{status}"
    );
    let out = app.run_lethe(&["list"]).await;
    let shown = text(&out.stdout);
    let row = shown
        .lines()
        .find(|l| l.contains(&done.to_string()))
        .unwrap();
    assert!(row.trim_end().ends_with("late"), "{row}");
    let out = app.run_lethe(&["list", "--overdue"]).await;
    assert!(!text(&out.stdout).contains(&done.to_string()));
}
