//! Off-peak windows with a real worker: it claims nothing while the window
//! is closed, starts when it opens (on a daylight-saving night, at the
//! instant the rule says), finishes the batch in flight at the close,
//! releases its lease and resumes in the next window. The clock is a
//! ManualClock, so a night passes in milliseconds.
//!
//! PostgreSQL only: windows are kept above the store seam, and one test
//! holds a batch open across the close with a PostgreSQL row lock taken
//! from outside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use lethe::State;
use lethe::clock::ManualClock;
use lethe::schedule::WindowSpec;
use lethe::worker::WorkerOptions;
use uuid::Uuid;

use crate::app::{TestApp, text};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn window(cron: &str, duration: &str, zone: &str) -> WindowSpec {
    WindowSpec {
        cron: cron.into(),
        duration: duration.into(),
        time_zone: zone.into(),
    }
}

async fn claims(app: &TestApp, id: Uuid) -> usize {
    app.events(id)
        .await
        .iter()
        .filter(|e| e.kind == "claimed" || e.kind == "taken_over")
        .count()
}

/// Polls `check` every 20 ms until it holds, or panics after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "not within {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_works_only_in_the_window_and_finishes_the_batch_in_flight_at_its_close() {
    // 02:30 New York time for one hour. On 2027-03-14 02:30 does not exist
    // (02:00 EST -> 03:00 EDT): the window opens at 03:00 EDT, 07:00 UTC.
    // Deletion batches (25 objects) and masking batches (30 rows) each wait
    // 1 s of clock for their rate-limit allowance: the test moves batches
    // along by moving time.
    let app = TestApp::start_with(|c| {
        c.windows = vec![window("0 30 2 * * *", "1h", "America/New_York")];
        c.worker.max_objects_per_sec = 25;
        c.worker.max_rows_per_sec = 30;
    })
    .await;
    let clock = ManualClock::new(utc(2027, 3, 14, 6, 0, 0));
    let engine = app.engine.clone().with_clock(Arc::new(clock.clone()));
    let loaded = app.load("member", 2, 40).await;
    let target = &loaded.members[0];
    let target_rows = app.rows_of(&target.key).await;
    let id = engine.submit(&target.key, None).await.unwrap().id;
    let record = || {
        let engine = engine.clone();
        async move { engine.status(id).await.unwrap().record }
    };
    let masking_starts = || async {
        app.events(id)
            .await
            .iter()
            .filter(|e| e.kind == "batch_started" && e.phase.as_deref() == Some("masking_rows"))
            .count()
    };
    // The gate's alarm always sleeps on the clock; a second sleeper is a
    // batch waiting for its allowance.
    let waiting = || clock.sleepers() >= 2;

    let worker = engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());

    // Closed: status says when it opens, and nothing is claimed.
    let window = engine.status(id).await.unwrap().window.unwrap();
    assert!(!window.open);
    assert_eq!(window.next_opens_at, Some(utc(2027, 3, 14, 7, 0, 0)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    clock.set(utc(2027, 3, 14, 6, 59, 59));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        claims(&app, id).await,
        0,
        "claimed before the window opened"
    );

    // 03:00 EDT: it opens. Finding targets takes no clock time; deletion
    // batch 1 then waits for its allowance, with the manifest complete.
    clock.set(utc(2027, 3, 14, 7, 0, 0));
    eventually(
        "deletion waits for its allowance",
        Duration::from_secs(30),
        || async { record().await.state == State::TargetsFound && waiting() },
    )
    .await;
    assert_eq!(claims(&app, id).await, 1);

    // Hold a row of masking batch 2, so that batch, once started, is in
    // flight (inside its transaction) for as long as the test likes.
    let (table, row): (String, String) = sqlx::query_as(
        "SELECT table_name, row_id FROM erasure_manifest_rows \
          WHERE request_id = $1 AND batch_no = 2 ORDER BY table_name LIMIT 1",
    )
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    let mut holder = app.pool().begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {table} WHERE id = $1::bigint FOR UPDATE"
    )))
    .bind(&row)
    .execute(&mut *holder)
    .await
    .unwrap();
    let started = Instant::now();
    while masking_starts().await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "masking batch 2 never started"
        );
        if waiting() {
            clock.advance(Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        record().await.rows_masked,
        30,
        "batch 1 masked, batch 2 blocked"
    );

    // The window closes with batch 2 in flight: it finishes, then the worker
    // stops before batch 3 and lets go.
    clock.set(utc(2027, 3, 14, 8, 0, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(record().await.rows_masked, 30, "still blocked");
    holder.rollback().await.unwrap();
    eventually("the lease released", Duration::from_secs(10), || async {
        record().await.lease_owner.is_none()
    })
    .await;
    let paused = engine.status(id).await.unwrap();
    assert_eq!(paused.record.state, State::S3Cleared);
    assert_eq!(
        paused.record.rows_masked, 60,
        "the batch in flight finished"
    );
    assert_eq!(
        masking_starts().await,
        2,
        "no batch started after the close"
    );
    assert_eq!(app.events(id).await.last().unwrap().kind, "released");
    let window = paused.window.unwrap();
    assert!(!window.open);
    // The next night, 02:30 EDT is 06:30 UTC: no drift after the change.
    assert_eq!(window.next_opens_at, Some(utc(2027, 3, 15, 6, 30, 0)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(claims(&app, id).await, 1, "claimed while closed");

    // The next window: batch 3 waits for its allowance, and the window
    // closes before it comes. The batch is given up, never started.
    clock.set(utc(2027, 3, 15, 6, 30, 0));
    eventually(
        "batch 3 waits for its allowance",
        Duration::from_secs(10),
        || async { claims(&app, id).await == 2 && waiting() },
    )
    .await;
    clock.set(utc(2027, 3, 15, 7, 30, 0));
    eventually(
        "the lease released again",
        Duration::from_secs(10),
        || async { record().await.lease_owner.is_none() },
    )
    .await;
    assert_eq!(record().await.rows_masked, 60);
    assert_eq!(
        masking_starts().await,
        2,
        "batch 3 did not start after the close"
    );

    // The third night it resumes where it stopped and finishes.
    clock.set(utc(2027, 3, 16, 6, 30, 0));
    let started = Instant::now();
    while record().await.state != State::Done {
        assert!(started.elapsed() < Duration::from_secs(60), "not done");
        if waiting() {
            clock.advance(Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    let summary = running.await.unwrap().unwrap();
    assert_eq!((summary.done, summary.paused), (1, 2), "{summary:?}");
    let done = record().await;
    assert_eq!(done.rows_masked, 120, "every row masked once");
    assert_eq!(claims(&app, id).await, 3);
    let repeated = crate::app::repeated_batches(&app.events(id).await, "masking_rows");
    assert_eq!(repeated, 0, "nothing repeated: each stop was clean");
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&target_rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_status_says_when_it_opens_and_ignore_window_overrides() {
    // Open one second a year: closed whenever this test runs.
    let app = TestApp::start_with(|c| {
        c.windows = vec![window("0 0 0 1 1 *", "1s", "Asia/Seoul")];
    })
    .await;
    let loaded = app.load("member", 1, 5).await;
    let id = app.submit(&loaded.members[0].key).await;

    let out = app.run_lethe(&["worker", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("off-peak window closed; next opens"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(app.state_of(id).await, State::Requested);

    let out = app.run_lethe(&["status", &id.to_string()]).await;
    let shown = text(&out.stdout);
    assert!(
        shown.contains("window       off-peak window closed; next opens")
            && shown.contains("-01-01 00:00:00 KST (15:00:00 UTC) [Asia/Seoul]"),
        "{shown}"
    );
    let out = app.run_lethe(&["status", &id.to_string(), "--json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["window"]["open"], false);
    assert_eq!(json["window"]["time_zone"], "Asia/Seoul");
    assert!(json["window"]["next_opens_at"].is_string());
    let out = app.run_lethe(&["list"]).await;
    assert!(
        text(&out.stdout).starts_with("off-peak window closed; next opens"),
        "{}",
        text(&out.stdout)
    );

    let out = app
        .run_lethe(&["worker", "--once", "--ignore-window"])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("ignored (--ignore-window)"));
    assert_eq!(app.state_of(id).await, State::Done);
}
