//! The load test of issue 14, measured: 1,000 submissions over HTTP from 50
//! concurrent clients to a `lethe serve` process (the release binary, as
//! deployed), on PostgreSQL with fsync on; every submission with an
//! idempotency key, some sent twice (tests/it/harness/http_load.rs). The
//! baseline, in the same run and on the same database, is the library's
//! `Engine::submit` called by 50 tasks in one process: what a submission
//! costs without HTTP, authentication and JSON.
//!
//! Reported: submissions per second and latency quantiles for both, and
//! that none was lost or duplicated.
//!
//! Run: `cargo bench --bench http_load`; `LETHE_BENCH_SUBMISSIONS` (default
//! 1,000) and `LETHE_BENCH_CLIENTS` (default 50). Figures go to
//! `benches/results/http_load.md`.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::*;
use harness::http_load::{LoadReport, drive, ms, submit_over_http};
use lethe::config::token_sha256;
use lethe::store::Store;
use lethe::{Config, Engine, Provenance};

const TOKEN: &str = "lethe_bench_http_load_submit_token";

#[tokio::main]
async fn main() {
    let submissions = env_usize("LETHE_BENCH_SUBMISSIONS", 1_000);
    let clients = env_usize("LETHE_BENCH_CLIENTS", 50);
    let service = Service::start(harness::fresh_durable_database().await).await;
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(service.pool())
        .await
        .unwrap();

    // lethe serve, as a process of its own.
    let config_path = service.dir.join("serve.toml");
    std::fs::write(
        &config_path,
        format!(
            "catalog = {catalog:?}\n[minimisation]\nsubject_hash_secret = {HASH_SECRET:?}\n\
             [[server.token]]\nname = \"withdrawal-flow\"\nrole = \"submit\"\nsha256 = \"{hash}\"\n",
            catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/example"),
            hash = token_sha256(TOKEN),
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .arg("--config")
        .arg(&config_path)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &service.db.url)
        .env("LETHE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting lethe serve");
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("lethe serve exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split('/').take(3).collect::<Vec<_>>().join("/");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));

    let over_http = submit_over_http(&base, TOKEN, submissions, clients, "http").await;
    over_http.assert_none_lost_none_duplicated();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
    let library = submit_in_process(&service, submissions, clients).await;
    library.assert_none_lost_none_duplicated();
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT idempotency_key) FROM erasure_requests WHERE coalesced_into IS NULL",
    )
    .fetch_one(service.pool())
    .await
    .unwrap();
    assert_eq!(
        stored as usize,
        2 * submissions,
        "one request per submission"
    );

    let row = |label: &str, r: &LoadReport| {
        format!(
            "| {label} | {} | {:.2} s | {:.0}/s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            r.sent,
            r.elapsed.as_secs_f64(),
            r.rate(),
            ms(r.quantile(0.5)),
            ms(r.quantile(0.95)),
            ms(r.quantile(0.99)),
            ms(r.latencies.last().copied().unwrap_or_default()),
        )
    };
    let report = format!(
        "# HTTP submissions (issue 14's load test)\n\n\
         Run {date} on {cores} cores: PostgreSQL with fsync {fsync}, `lethe serve` (release build) \
         on loopback. {submissions} submissions from {clients} concurrent clients, each with an \
         idempotency key; every tenth sent again after its answer and every twenty-fifth twice \
         at once. None lost, none duplicated: {stored} requests stored for {total} submissions \
         made by the two runs, each key answered with one request id.\n\n\
         | submitted through | requests sent | wall | rate | p50 | p95 | p99 | max |\n\
         |---|---|---|---|---|---|---|---|\n{http}{lib}\n\
         The baseline is the library's `Engine::submit`, called by {clients} tasks in one process \
         on the same database: what a submission costs without HTTP, the token check and JSON. \
         A submission is one INSERT (the coalescing trigger takes the member's advisory lock) and \
         its commit, which waits for the WAL flush.\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        total = 2 * submissions,
        http = row("HTTP (`lethe serve`)", &over_http),
        lib = row("library (baseline)", &library),
    );
    write_results("http_load", &report);
}

/// The baseline: `Engine::submit_from` from `clients` tasks.
async fn submit_in_process(service: &Service, submissions: usize, clients: usize) -> LoadReport {
    let mut config = Config {
        database_url: Some(service.db.url.clone()),
        ..Config::default()
    };
    config.minimisation.subject_hash_secret = Some(HASH_SECRET.to_owned());
    let engine = Engine::with_store(Store::from_pool(service.pool().clone()), config);
    drive(submissions, clients, move |n| {
        let engine = engine.clone();
        async move {
            let key = format!("library-key-{n:06}");
            let sent = Instant::now();
            let submitted = engine
                .submit_from(
                    &format!("library-{n:06}"),
                    Provenance {
                        idempotency_key: Some(&key),
                        external_ref: Some(&format!("LOAD-{n}")),
                        submitted_by: Some("baseline"),
                    },
                )
                .await;
            let answer = submitted
                .map(|submission| submission.id.to_string())
                .map_err(|err| err.to_string());
            (key, vec![(sent.elapsed(), answer)])
        }
    })
    .await
}
