//! Benchmark: erasing one member with 2,000 requests (~4,800 objects) with
//! lethe's full workflow (manifest, checkpoints, leases, verification),
//! against a baseline measured in the same run on an identical member: the
//! same deletes and updates done naively (DeleteObjects of 1,000 keys, one
//! UPDATE per table), with no durability at all. Also the latency from a
//! bare SQL INSERT to an idle worker's claim (LISTEN/NOTIFY).
//!
//! Run: `cargo bench --bench erase_member`. Figures go to
//! `benches/results/erase_member.md` (and stdout). Absolute times on a
//! shared machine are noise; the ratio to the baseline is the figure.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use lethe::config::Config;
use lethe::example::{ExampleSpec, MemberSummary};
use lethe::objects::{Credentials, ObjectStore};
use lethe::store::Store;
use lethe::worker::WorkerOptions;
use lethe::{Engine, State};
use sqlx::PgPool;

const REQUESTS: usize = 2_000;

#[tokio::main]
async fn main() {
    let db = harness::fresh_database().await;
    let s3 = harness::TestS3::start().await;
    let mut config = Config {
        database_url: Some(db.url.clone()),
        catalog: concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/example").into(),
        ..Config::default()
    };
    config.s3.endpoint_url = Some(s3.endpoint());
    config.s3.region = Some(s3.region().to_owned());
    config.s3.force_path_style = true;
    config.worker.poll_interval_ms = Some(60_000);
    config.minimisation.subject_hash_secret = Some("lethe-bench-subject-hash-secret".into());
    // The engine's own speed: no load limits (they are measured by the
    // tests in tests/it/load.rs).
    config.worker.max_objects_per_sec = 0;
    config.worker.max_rows_per_sec = 0;
    config.worker.pause_between_batches_ms = 0;
    let store = Store::from_pool(db.pool.clone());
    store.migrate().await.expect("migrate");
    let credentials = Credentials::new(s3.access_key(), s3.secret_key(), None, None, "bench");
    let objects = ObjectStore::connect_with_credentials(&config.s3, credentials).await;
    let engine = Engine::with_store(store.clone(), config.clone()).with_objects(objects.clone());

    eprintln!("loading 2 members x {REQUESTS} requests (+ 3 bystanders x 100) ...");
    let load_started = Instant::now();
    let big = lethe::example::load(&store, &objects, &spec("big", 2, REQUESTS))
        .await
        .expect("load");
    lethe::example::load(&store, &objects, &spec("bystander", 3, 100))
        .await
        .expect("load");
    let load_time = load_started.elapsed();
    let (lethe_member, baseline_member) = (&big.members[0], &big.members[1]);

    // lethe, default settings (batches of 500 requests, 1,000 objects).
    let id = engine.submit(&lethe_member.key, None).await.unwrap().id;
    let started = Instant::now();
    let worker = engine
        .worker(WorkerOptions {
            once: true,
            ..WorkerOptions::default()
        })
        .await
        .unwrap();
    let summary = worker.run().await.unwrap();
    let lethe_time = started.elapsed();
    assert_eq!(summary.done, 1);
    let record = engine.status(id).await.unwrap().record;
    assert_eq!(record.state, State::Done);
    let phases = phase_times(&record);

    // Baseline: the same work, naively, on the twin member.
    let started = Instant::now();
    naive_erase(&db.pool, &objects, baseline_member).await;
    let baseline_time = started.elapsed();

    let latency = notify_latency(&engine, &db.pool).await;

    let report = format!(
        "# erase_member benchmark\n\n\
         Run: `cargo bench --bench erase_member` on {date} ({cores} cores). Throwaway PostgreSQL 15 \
         (fsync off) and s3s-fs on loopback, both on this machine.\n\n\
         | member | requests | rows | objects |\n|---|---|---|---|\n\
         | erased by lethe | {REQUESTS} | {rows} | {objs} |\n\n\
         | run | wall time |\n|---|---|\n\
         | lethe, full workflow (manifest, checkpoints, lease, verification) | {lethe:.2} s |\n\
         | baseline: same deletes and updates, no durability, no verification | {baseline:.2} s |\n\
         | ratio | {ratio:.2}x |\n\n\
         lethe's phases: finding targets {p0:.2} s, deleting objects {p1:.2} s, masking rows {p2:.2} s, \
         verifying {p3:.2} s.\n\n\
         Loading the example data (2 x {REQUESTS} + 3 x 100 requests, with objects) took {load:.1} s.\n\n\
         Bare SQL INSERT to an idle worker's claim (LISTEN/NOTIFY, poll interval 60 s), 20 runs: \
         median {median} ms, max {max} ms.\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        rows = record.rows_masked,
        objs = record.objects_deleted,
        lethe = lethe_time.as_secs_f64(),
        baseline = baseline_time.as_secs_f64(),
        ratio = lethe_time.as_secs_f64() / baseline_time.as_secs_f64(),
        p0 = phases[0],
        p1 = phases[1],
        p2 = phases[2],
        p3 = phases[3],
        load = load_time.as_secs_f64(),
        median = latency.0.as_millis(),
        max = latency.1.as_millis(),
    );
    print!("{report}");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/results/erase_member.md"
    );
    std::fs::write(path, &report).expect("writing the results file");
    eprintln!("written to {path}");
}

fn spec(prefix: &str, members: usize, requests: usize) -> ExampleSpec {
    ExampleSpec {
        members,
        requests_per_member: requests,
        member_prefix: prefix.to_owned(),
        every_feature: false,
    }
}

fn phase_times(record: &lethe::store::RequestRecord) -> [f64; 4] {
    let secs = |a: Option<chrono::DateTime<chrono::Utc>>,
                b: Option<chrono::DateTime<chrono::Utc>>| {
        (b.unwrap() - a.unwrap()).num_milliseconds() as f64 / 1000.0
    };
    [
        secs(record.started_at, record.targets_found_at),
        secs(record.targets_found_at, record.s3_cleared_at),
        secs(record.s3_cleared_at, record.db_masked_at),
        secs(record.db_masked_at, record.finished_at),
    ]
}

/// The baseline: delete the member's objects 1,000 at a time, then mask
/// every row with one UPDATE per table. What a one-off script would do.
async fn naive_erase(pool: &PgPool, objects: &ObjectStore, member: &MemberSummary) {
    let mut by_bucket: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for object in &member.objects {
        by_bucket
            .entry(&object.bucket)
            .or_default()
            .push(object.key.clone());
    }
    for (bucket, keys) in by_bucket {
        for chunk in keys.chunks(1000) {
            objects.delete_keys(bucket, chunk).await.unwrap();
        }
    }
    let mut tx = pool.begin().await.unwrap();
    // Every feature of the example service, like the catalog lethe reads.
    for feature in lethe::example::features::FEATURES.iter().map(|f| f.stem) {
        let ids = "SELECT id FROM client_old WHERE client_key = $1 UNION ALL \
                   SELECT id FROM client_temp WHERE client_key = $1 UNION ALL \
                   SELECT id FROM client WHERE client_key = $1";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {feature}_task SET result = '{{}}' WHERE feature_id IN \
             (SELECT id FROM {feature}_feature WHERE client_id IN ({ids}))"
        )))
        .bind(&member.key)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {feature}_feature SET prompt = NULL, option = '{{}}', legacy_option = NULL WHERE client_id IN ({ids})"
        )))
        .bind(&member.key)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    for client in ["client_old", "client_temp", "client"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {client} SET client_key = NULL, ip_address = NULL, user_agent = NULL WHERE client_key = $1"
        )))
        .bind(&member.key)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Median and max time from a bare INSERT to the claim event, with an idle
/// worker whose poll interval is 60 s (so only NOTIFY can be that fast).
async fn notify_latency(engine: &Engine, pool: &PgPool) -> (Duration, Duration) {
    let worker = engine.worker(WorkerOptions::default()).await.unwrap();
    let shutdown = worker.shutdown_token();
    let running = tokio::spawn(worker.run());
    let mut samples = Vec::new();
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO erasure_requests (subject_key) VALUES ($1) RETURNING id",
        )
        .bind(format!("nobody-{i}"))
        .fetch_one(pool)
        .await
        .unwrap();
        let latency = loop {
            let claimed: Option<f64> = sqlx::query_scalar(
                "SELECT extract(epoch FROM (e.at - r.requested_at))::float8 FROM erasure_events e \
                   JOIN erasure_requests r ON r.id = e.request_id \
                  WHERE e.request_id = $1 AND e.kind = 'claimed'",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .unwrap();
            if let Some(seconds) = claimed {
                break Duration::from_secs_f64(seconds.max(0.0));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        samples.push(latency);
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}
