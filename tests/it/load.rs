//! Load control, measured over a real run on the real clock: objects deleted
//! per second, rows masked per second (both limits shared by the requests
//! one worker advances at once), the pause between batches, and the number
//! of requests in hand. Each figure is read back from the event log, and
//! each assertion fails without its limit (unlimited, this run deletes and
//! masks many times faster).
//!
//! PostgreSQL only: the limits are paid in the worker, above the store seam.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use lethe::worker::WorkerOptions;
use uuid::Uuid;

use crate::app::TestApp;

const OBJECTS_PER_SEC: u32 = 100;
const ROWS_PER_SEC: u32 = 200;
const PAUSE_MS: u64 = 100;
const CONCURRENCY: u32 = 2;

#[derive(Debug, sqlx::FromRow)]
struct Event {
    request_id: Uuid,
    at: DateTime<Utc>,
    worker: Option<String>,
    kind: String,
    phase: Option<String>,
    detail: Option<String>,
}

/// Items committed by the batches of `phase`, over the whole run, as a rate:
/// (items after the first batch) / (first batch start .. last batch commit).
/// The first batch's allowance was paid before its start, so it is left out
/// of the count; the limit promises exactly this quotient stays under it.
fn measured_rate(events: &[Event], phase: &str, unit: &str) -> (f64, i64, f64) {
    let of_phase: Vec<&Event> = events
        .iter()
        .filter(|e| e.phase.as_deref() == Some(phase))
        .collect();
    let first_start = of_phase
        .iter()
        .filter(|e| e.kind == "batch_started")
        .map(|e| e.at)
        .min()
        .expect("the phase ran");
    let mut commits: Vec<(DateTime<Utc>, i64)> = of_phase
        .iter()
        .filter(|e| e.kind == "batch_committed")
        .map(|e| {
            let detail = e.detail.as_deref().unwrap_or_default();
            let n = detail
                .strip_prefix(unit)
                .and_then(|rest| rest.trim().split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unreadable detail {detail:?}"));
            (e.at, n)
        })
        .collect();
    commits.sort();
    let total: i64 = commits.iter().map(|(_, n)| n).sum();
    let last_commit = commits.last().unwrap().0;
    let first_batch = commits.first().unwrap().1;
    let span = (last_commit - first_start).num_microseconds().unwrap() as f64 / 1e6;
    ((total - first_batch) as f64 / span, total, span)
}

/// Runs one in-process worker over one request per member, to the end,
/// and returns the event log of those requests.
async fn run_and_read_events(app: &TestApp, members: usize, requests: usize) -> Vec<Event> {
    let loaded = app.load("member", members, requests).await;
    let mut ids = Vec::new();
    for member in &loaded.members {
        ids.push(app.submit(&member.key).await);
    }
    let summary = app
        .engine
        .worker(WorkerOptions {
            once: true,
            ..WorkerOptions::default()
        })
        .await
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(summary.done, members, "{summary:?}");
    sqlx::query_as(
        "SELECT request_id, at, worker, kind, phase, detail FROM erasure_events \
          WHERE request_id = ANY($1) ORDER BY at, id",
    )
    .bind(&ids)
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_by_a_workers_requests_and_honoured_over_a_run() {
    // Two members alike, advanced side by side: if each request had its own
    // allowance, together they would run at twice the limit.
    let app = TestApp::start_with(|c| {
        c.worker.max_objects_per_sec = OBJECTS_PER_SEC;
        c.worker.max_rows_per_sec = ROWS_PER_SEC;
        c.worker.concurrency = CONCURRENCY;
    })
    .await;
    let events = run_and_read_events(&app, 2, 40).await;

    let (objects_rate, objects, objects_span) =
        measured_rate(&events, "deleting_objects", "objects");
    eprintln!(
        "objects: {objects} deleted in {objects_span:.2} s, {objects_rate:.1}/s against a limit of {OBJECTS_PER_SEC}/s"
    );
    assert!(objects > 100, "enough objects to measure: {objects}");
    assert!(
        objects_rate <= f64::from(OBJECTS_PER_SEC) * 1.02,
        "{objects_rate:.1} objects/s exceeds the limit of {OBJECTS_PER_SEC}/s"
    );

    let (rows_rate, rows, rows_span) = measured_rate(&events, "masking_rows", "rows");
    eprintln!(
        "rows: {rows} masked in {rows_span:.2} s, {rows_rate:.1}/s against a limit of {ROWS_PER_SEC}/s"
    );
    assert_eq!(rows, 2 * 40 * 3);
    assert!(
        rows_rate <= f64::from(ROWS_PER_SEC) * 1.02,
        "{rows_rate:.1} rows/s exceeds the limit of {ROWS_PER_SEC}/s"
    );
    let workers: BTreeSet<_> = events.iter().filter_map(|e| e.worker.clone()).collect();
    assert_eq!(workers.len(), 1, "one worker process: {workers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pause_between_batches_and_the_concurrency_are_honoured() {
    let app = TestApp::start_with(|c| {
        c.worker.pause_between_batches_ms = PAUSE_MS;
        c.worker.concurrency = CONCURRENCY;
    })
    .await;
    let events = run_and_read_events(&app, 3, 12).await;

    // The pause: between a request's batch commit and its next batch start.
    let mut shortest = chrono::TimeDelta::MAX;
    let mut gaps = 0;
    let ids: BTreeSet<Uuid> = events.iter().map(|e| e.request_id).collect();
    for id in &ids {
        let mine: Vec<&Event> = events.iter().filter(|e| e.request_id == *id).collect();
        for (i, event) in mine.iter().enumerate() {
            if event.kind != "batch_committed" {
                continue;
            }
            if let Some(next) = mine[i + 1..].iter().find(|e| e.kind == "batch_started") {
                shortest = shortest.min(next.at - event.at);
                gaps += 1;
            }
        }
    }
    eprintln!(
        "pause: shortest gap between batches {} ms over {gaps} gaps, against {PAUSE_MS} ms",
        shortest.num_milliseconds()
    );
    assert!(gaps >= 15, "{gaps} gaps");
    assert!(
        shortest >= chrono::TimeDelta::milliseconds(PAUSE_MS as i64),
        "a batch started {} ms after the previous one",
        shortest.num_milliseconds()
    );

    // Requests in hand at once: three requests, never more than two held
    // (from each claim to its release), and two at some moment.
    let mut in_hand = 0;
    let mut most = 0;
    for event in &events {
        match event.kind.as_str() {
            "claimed" | "taken_over" => in_hand += 1,
            "released" => in_hand -= 1,
            _ => {}
        }
        most = most.max(in_hand);
    }
    eprintln!("requests in hand at once: at most {most}, against a concurrency of {CONCURRENCY}");
    assert_eq!(most, CONCURRENCY, "requests in hand at once");
}
