//! Several worker processes against one database: every request is done,
//! and no subject is ever held by two workers at once, as the recorded
//! lease intervals prove. Two processes on both backends (on SQLite: one
//! file, its write lock serialising claims and commits); three processes
//! and 300 members on PostgreSQL, the multi-host backend.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lethe::State;
use lethe::store::Backend;
use lethe::store::requests::ListFilter;

use crate::app::{TestApp, wait_for_line};

async fn two_worker_processes_share_many_subjects_without_overlap(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 16, 8).await;
    let mut ids = Vec::new();
    for member in &loaded.members {
        ids.push(app.submit(&member.key).await);
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
        let events = app.events(*id).await;
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

on_both_backends!(two_worker_processes_share_many_subjects_without_overlap);

/// Each lease epoch's interval over one subject's requests: from the
/// epoch's first event (its claim) to its last (its release or final
/// commit), with the worker that held it.
type Interval = (
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
    String,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_erase_three_hundred_members_without_overlap() {
    const MEMBERS: usize = 300;
    let app = TestApp::start().await;
    let loaded = app.load("member", MEMBERS, 1).await;
    // Three workers, started and idle (listening) before the work arrives.
    let mut workers: Vec<_> = (0..3).map(|_| app.spawn_worker(None, &[])).collect();
    for worker in &mut workers {
        wait_for_line(worker, "worker started", Duration::from_secs(60)).await;
    }
    // Read their logs as they come: a full pipe would stall a worker.
    let logs: Vec<_> = workers
        .iter_mut()
        .map(|worker| {
            let mut stderr = worker.stderr.take().expect("stderr is piped");
            tokio::spawn(async move {
                let mut text = String::new();
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
                text
            })
        })
        .collect();

    // All 300 submissions in one SQL statement: every worker is woken at once.
    let keys: Vec<String> = loaded.members.iter().map(|m| m.key.clone()).collect();
    let submitted: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "INSERT INTO erasure_requests (subject_key) SELECT unnest($1::text[]) \
         RETURNING id, subject_key",
    )
    .bind(&keys)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let subject_of: BTreeMap<uuid::Uuid, String> = submitted.into_iter().collect();
    assert_eq!(subject_of.len(), MEMBERS);
    let started = Instant::now();
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM erasure_requests WHERE state = 'done'")
                .fetch_one(app.pool())
                .await
                .unwrap();
        if done as usize == MEMBERS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "only {done} of {MEMBERS} done"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    for worker in &mut workers {
        worker.start_kill().ok();
        worker.wait().await.ok();
    }
    for log in logs {
        let log = log.await.unwrap();
        assert!(log.contains("batch committed"), "{log}");
    }

    // Every subject's holders, one after another, never two at once.
    let all: Vec<(uuid::Uuid, chrono::DateTime<chrono::Utc>, String, i64)> = sqlx::query_as(
        "SELECT request_id, at, worker, lease_epoch FROM erasure_events \
          WHERE lease_epoch IS NOT NULL ORDER BY id",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let mut by_subject: BTreeMap<&str, BTreeMap<(uuid::Uuid, i64), Interval>> = BTreeMap::new();
    for (request, at, worker, epoch) in all {
        let subject = subject_of[&request].as_str();
        let interval = by_subject
            .entry(subject)
            .or_default()
            .entry((request, epoch))
            .or_insert((at, at, worker.clone()));
        assert_eq!(interval.2, worker, "one epoch, one worker");
        interval.1 = at;
    }
    assert_eq!(by_subject.len(), MEMBERS);
    let mut requests_by_worker: BTreeMap<String, usize> = BTreeMap::new();
    for (subject, holds) in &by_subject {
        let mut ordered: Vec<&Interval> = holds.values().collect();
        ordered.sort();
        for pair in ordered.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "member {subject}: held by {} until {} and by {} from {}",
                pair[0].2,
                pair[0].1,
                pair[1].2,
                pair[1].0
            );
        }
        let holders: std::collections::BTreeSet<&String> =
            ordered.iter().map(|(_, _, worker)| worker).collect();
        for worker in holders {
            *requests_by_worker.entry(worker.clone()).or_default() += 1;
        }
    }
    eprintln!(
        "{MEMBERS} members erased by 3 worker processes in {elapsed:?}; requests per worker: {:?}",
        requests_by_worker.values().collect::<Vec<_>>()
    );
    assert_eq!(requests_by_worker.len(), 3, "{requests_by_worker:?}");
    for (worker, n) in &requests_by_worker {
        assert!(
            *n >= MEMBERS / 10,
            "worker {worker} did only {n} of {MEMBERS}: {requests_by_worker:?}"
        );
    }
    for member in loaded.members.iter().step_by(29) {
        app.assert_objects_gone(member).await;
    }
}
