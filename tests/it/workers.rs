//! Several worker processes against one database: every request is done,
//! and no subject is ever held by two workers at once, as the recorded
//! lease intervals prove.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lethe::State;
use lethe::store::requests::ListFilter;

use crate::app::{TestApp, events};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_many_subjects_without_overlap() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 16, 8).await;
    let mut ids = Vec::new();
    for member in &loaded.members {
        ids.push(app.engine.submit(&member.key, None).await.unwrap().id);
    }
    let mut first = app.spawn_worker(None, &["--concurrency", "2"]);
    let mut second = app.spawn_worker(None, &[]);

    let started = Instant::now();
    loop {
        let done = app
            .engine
            .list(&ListFilter {
                state: Some(State::Done),
                ..ListFilter::default()
            })
            .await
            .unwrap()
            .len();
        if done == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "only {done} of {} done",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.start_kill().ok();
    second.start_kill().ok();
    first.wait().await.ok();
    second.wait().await.ok();

    let mut by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let events = events(app.pool(), *id).await;
        // Each lease epoch's interval: from its first event to its last.
        let mut intervals: BTreeMap<
            i64,
            (
                chrono::DateTime<chrono::Utc>,
                chrono::DateTime<chrono::Utc>,
                String,
            ),
        > = BTreeMap::new();
        for event in events.iter().filter(|e| e.lease_epoch.is_some()) {
            let worker = event.worker.clone().unwrap_or_default();
            let entry = intervals
                .entry(event.lease_epoch.unwrap())
                .or_insert((event.at, event.at, worker));
            entry.1 = event.at;
        }
        let ordered: Vec<_> = intervals.values().collect();
        for pair in ordered.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "request {id}: holder {} until {} overlaps holder {} from {}",
                pair[0].2,
                pair[0].1,
                pair[1].2,
                pair[1].0
            );
        }
        for (_, _, worker) in intervals.values() {
            *by_worker.entry(worker.clone()).or_default() += 1;
        }
        // Every batch committed exactly once: nothing was done twice.
        let mut committed: BTreeMap<(String, i32), usize> = BTreeMap::new();
        for event in events.iter().filter(|e| e.kind == "batch_committed") {
            *committed
                .entry((
                    event.phase.clone().unwrap_or_default(),
                    event.batch_no.unwrap_or_default(),
                ))
                .or_default() += 1;
        }
        assert!(
            committed.values().all(|n| *n == 1),
            "request {id}: {committed:?}"
        );
    }
    for member in &loaded.members {
        app.assert_objects_gone(member).await;
    }
    eprintln!("claims per worker: {by_worker:?}");
    assert_eq!(by_worker.len(), 2, "both workers took part: {by_worker:?}");
}
