//! Benchmark 2 of issue 12: many small erasures. 10,000 members with one request each
//! are queued by ONE SQL statement (`INSERT INTO erasure_requests (subject_key)
//! SELECT ...`) and drained by one `lethe worker --once` process, at its default
//! concurrency and at 64, on a PostgreSQL cluster with fsync on (a commit waits for
//! its WAL flush, as in production) and S3 with modelled latency. The baseline, in the
//! same run, is a naive script erasing as many identical members 64 at a time: one
//! DeleteObjects per bucket and one UPDATE per table in one transaction per member,
//! handed each member's object list, with no durability and no read-back.
//!
//! Reported: erasures per second, lethe's CPU per erasure (the worker process's user +
//! system time, from the kernel's accounting of the waited-for child), transactions
//! and WAL flushes per erasure (pg_stat_database, pg_stat_wal), and S3 calls per
//! erasure.
//!
//! Run: `cargo bench --bench small_erasures`; `LETHE_BENCH_ERASURES` (default 10,000),
//! `LETHE_BENCH_CONCURRENCY` (default `1,64`: the default, then 64), and the S3 model's
//! variables (benches/common). Figures go to `benches/results/small_erasures.md`.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use lethe::example::{LargePdfs, MemberSummary};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The baseline's members in flight: the highest concurrency lethe is run at.
const NAIVE_IN_FLIGHT_DEFAULT: usize = 64;

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let erasures = env_usize("LETHE_BENCH_ERASURES", 10_000);
    let concurrencies: Vec<Option<u32>> = std::env::var("LETHE_BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "default,64".to_owned())
        .split(',')
        .map(|c| match c.trim() {
            "default" => None,
            n => Some(
                n.parse()
                    .expect("LETHE_BENCH_CONCURRENCY: `default` or numbers, comma-separated"),
            ),
        })
        .collect();
    let default_concurrency = lethe::config::Config::default().worker.concurrency;
    let naive_in_flight = concurrencies
        .iter()
        .map(|c| c.unwrap_or(default_concurrency) as usize)
        .max()
        .unwrap_or(NAIVE_IN_FLIGHT_DEFAULT);
    let model = S3Model::from_env();
    let service = Service::start(harness::fresh_durable_database().await).await;
    let pool = service.pool().clone();
    let postgres = ClusterCpu::of(&pool).await;
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(&pool)
        .await
        .expect("SHOW fsync");

    note(
        started,
        &format!(
            "loading {} sets of {erasures} one-request members, latency off",
            concurrencies.len() + 1
        ),
    );
    let load_started = Instant::now();
    for i in 0..concurrencies.len() {
        service
            .load(
                &format!("set{i}"),
                erasures,
                1,
                LargePdfs::FirstOfLargeMembers,
            )
            .await;
    }
    let naive_members = service
        .load("naive", erasures, 1, LargePdfs::FirstOfLargeMembers)
        .await
        .members;
    // The sets are generated alike: the baseline's tells the objects a member has.
    let objects_each = naive_members.iter().map(|m| m.objects.len()).sum::<usize>() as f64
        / naive_members.len().max(1) as f64;
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("ANALYZE");
    let load_time = load_started.elapsed();
    note(started, &format!("loaded in {} s", secs(load_time)));
    model.apply(&service.s3);

    let mut rows = Vec::new();
    let mut inserts = Vec::new();
    for (i, c) in concurrencies.iter().enumerate() {
        let label = concurrency_label(*c);
        note(
            started,
            &format!("lethe: {erasures} erasures, concurrency {label}"),
        );
        let before = Counts::now(&service).await;
        // The whole queue in one statement, as a service would submit a backlog.
        let insert_started = Instant::now();
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "INSERT INTO erasure_requests (subject_key) \
             SELECT $1 || '-' || lpad(i::text, 5, '0') FROM generate_series(1, $2) AS i \
             RETURNING id",
        )
        .bind(format!("set{i}"))
        .bind(erasures as i64)
        .fetch_all(&pool)
        .await
        .expect("queueing by one INSERT");
        inserts.push((label.clone(), ids.len(), insert_started.elapsed()));
        let settings = WorkerSettings::limits_off(*c);
        let (command, log) = service.worker(&settings, &format!("small-set{i}"));
        let cpu = CpuMark::now();
        let postgres_before = postgres.now();
        let run = run_measured_async(command, log).await;
        let (own, busy, all) = cpu.since();
        let postgres_cpu = postgres.now().saturating_sub(postgres_before);
        let after = Counts::now(&service).await;
        let (done, span) = drained(&pool, &ids).await;
        assert_eq!(done, erasures as i64, "every erasure of set {i} is done");
        rows.push(Row {
            name: format!("lethe, one `worker --once`, {}", settings.describe()),
            wall: run.wall,
            span: Some(span),
            worker_cpu: Some(run.cpu),
            own_cpu: own,
            postgres_cpu,
            machine: (busy, all),
            delta: after.minus(&before),
        });
        note(
            started,
            &format!(
                "  {} s, {:.1} erasures/s",
                secs(run.wall),
                erasures as f64 / run.wall.as_secs_f64()
            ),
        );
    }

    note(
        started,
        &format!("naive baseline, {naive_in_flight} members at a time"),
    );
    let naive_pool = PgPoolOptions::new()
        .max_connections(naive_in_flight as u32)
        .connect(&service.db.url)
        .await
        .expect("a pool for the baseline");
    let client = service.s3.client().await;
    let before = Counts::now(&service).await;
    let cpu = CpuMark::now();
    let postgres_before = postgres.now();
    let naive_started = Instant::now();
    naive_all(&client, &naive_pool, naive_members, naive_in_flight).await;
    let naive_wall = naive_started.elapsed();
    let (own, busy, all) = cpu.since();
    let postgres_cpu = postgres.now().saturating_sub(postgres_before);
    naive_pool.close().await;
    let after = Counts::now(&service).await;
    rows.push(Row {
        name: format!(
            "naive script, {naive_in_flight} members at a time: DeleteObjects per bucket, then one UPDATE per table in one transaction"
        ),
        wall: naive_wall,
        span: None,
        worker_cpu: None,
        own_cpu: own,
        postgres_cpu,
        machine: (busy, all),
        delta: after.minus(&before),
    });

    let n = erasures as f64;
    let mut report = format!(
        "# small_erasures benchmark (issue 12, benchmark 2)\n\n{run_line}\n\n\
         {erasures} members with one request each (about {objects_each:.1} objects each), per run. \
         Throwaway PostgreSQL 15 with fsync {fsync} (synchronous_commit and full_page_writes \
         on: PostgreSQL's defaults), and the harness's s3s-fs server with modelled latency: \
         {model}. Load limits off.\n\n",
        run_line = run_line("cargo bench --bench small_erasures"),
        model = model.describe(),
    );
    for (c, queued, took) in &inserts {
        report.push_str(&format!(
            "Queued for concurrency {c}: {queued} requests by one `INSERT ... SELECT` in {} ms.  \n",
            ms(*took)
        ));
    }
    report.push_str(
        "\n| run | wall time | erasures/s | lethe CPU per erasure | PostgreSQL CPU per erasure | transactions per erasure | WAL flushes per erasure | S3 calls per erasure |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let per = |x: u64| x as f64 / n;
        report.push_str(&format!(
            "| {name} | {wall} s{span} | {rate:.1} | {cpu} | {pg} ms | {tx:.1} | {wal:.1} | {s3:.1} ({calls}) |\n",
            name = row.name,
            wall = secs(row.wall),
            span = row
                .span
                .map(|s| format!(" (first claim to last Done {} s)", secs(s)))
                .unwrap_or_default(),
            rate = n / row.wall.as_secs_f64(),
            cpu = row
                .worker_cpu
                .map(|cpu| format!("{} ms", ms(cpu / erasures as u32)))
                .unwrap_or_else(|| "—".to_owned()),
            pg = ms(row.postgres_cpu / erasures as u32),
            tx = per(row.delta.commits),
            wal = per(row.delta.wal_syncs),
            s3 = per(total_calls(&row.delta.s3)),
            calls = per_erasure_line(&row.delta.s3, n),
        ));
    }
    report.push_str("\nCPU during each run (core-seconds; the machine's includes other builds):\n\n\
                     | run | lethe worker | PostgreSQL (the cluster) | this process (S3 server, baseline) | machine busy / available |\n|---|---|---|---|---|\n");
    for row in &rows {
        report.push_str(&format!(
            "| {} | {} | {} s | {} s | {} s / {} s |\n",
            row.name,
            row.worker_cpu
                .map(|c| format!("{} s", secs(c)))
                .unwrap_or_else(|| "—".to_owned()),
            secs(row.postgres_cpu),
            secs(row.own_cpu),
            secs(row.machine.0),
            secs(row.machine.1),
        ));
    }
    report.push_str(&cpu_budget(&rows, erasures));
    report.push_str(&format!(
        "\nTransactions are pg_stat_database's xact_commit for the service's database (every \
         connection's, the worker's and the baseline's); WAL flushes are pg_stat_wal's \
         wal_sync for the cluster. Loading the data took {:.0} s.\n",
        load_time.as_secs_f64()
    ));
    write_results("small_erasures", &report);
    note(started, "finished");
}

/// The target as a CPU budget: what 500 erasures a second leave
/// for each, against what each run spent (its own process, PostgreSQL and
/// this one, which serves S3 and runs the baseline), and the rate that
/// spending allows on these cores.
fn cpu_budget(rows: &[Row], erasures: usize) -> String {
    const TARGET_PER_SEC: f64 = 500.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let budget_ms = cores * 1000.0 / TARGET_PER_SEC;
    let mut out = format!(
        "\nThe target as CPU: {TARGET_PER_SEC:.0} erasures/s on {cores:.0} cores leaves \
         {budget_ms:.1} ms of CPU an erasure for everything (the worker, PostgreSQL, the S3 \
         server). Spent an erasure in these runs, and the rate that spending allows on \
         {cores:.0} cores when nothing else runs:\n\n\
         | run | CPU an erasure | at most | machine busy during the run |\n|---|---|---|---|\n"
    );
    for row in rows {
        let spent = row.worker_cpu.unwrap_or_default() + row.postgres_cpu + row.own_cpu;
        let spent_ms = spent.as_secs_f64() * 1000.0 / erasures as f64;
        let busy = row.machine.0.as_secs_f64() / row.machine.1.as_secs_f64().max(f64::EPSILON);
        out.push_str(&format!(
            "| {} | {spent_ms:.1} ms | {:.0}/s | {:.0}% |\n",
            row.name,
            cores * 1000.0 / spent_ms.max(f64::EPSILON),
            busy * 100.0,
        ));
    }
    out
}

/// One run's figures.
struct Row {
    name: String,
    wall: Duration,
    /// First claim to last Done, from the rows.
    span: Option<Duration>,
    worker_cpu: Option<Duration>,
    own_cpu: Duration,
    /// The whole cluster's.
    postgres_cpu: Duration,
    machine: (Duration, Duration),
    delta: Counts,
}

/// Counters read before and after a run.
struct Counts {
    commits: u64,
    wal_syncs: u64,
    s3: BTreeMap<String, u64>,
}

impl Counts {
    async fn now(service: &Service) -> Counts {
        let pool = service.pool();
        // Backends report their statistics when idle or exiting, at most once a second.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let mut conn = pool.acquire().await.expect("a connection");
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *conn)
            .await
            .expect("clearing the statistics snapshot");
        let commits: i64 = sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("pg_stat_database");
        let wal_syncs: i64 = sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
            .fetch_one(&mut *conn)
            .await
            .expect("pg_stat_wal");
        Counts {
            commits: commits as u64,
            wal_syncs: wal_syncs as u64,
            s3: service.s3.counters().all_requests(),
        }
    }

    fn minus(&self, before: &Counts) -> Counts {
        Counts {
            commits: self.commits.saturating_sub(before.commits),
            wal_syncs: self.wal_syncs.saturating_sub(before.wal_syncs),
            s3: self
                .s3
                .iter()
                .map(|(op, n)| (op.clone(), n - before.s3.get(op).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// "HeadObject 3.0, DeleteObjects 1.9" per erasure.
fn per_erasure_line(calls: &BTreeMap<String, u64>, n: f64) -> String {
    let mut calls: Vec<(&String, &u64)> = calls.iter().collect();
    calls.sort_by(|a, b| b.1.cmp(a.1));
    calls
        .iter()
        .map(|(op, count)| format!("{op} {:.2}", **count as f64 / n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Done requests among `ids`, and the time from their first claim to their last Done
/// (by id: at Done a request's subject key is replaced by its keyed hash).
async fn drained(pool: &PgPool, ids: &[uuid::Uuid]) -> (i64, Duration) {
    let (done, span): (i64, f64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'done'), \
                extract(epoch FROM max(finished_at) - min(started_at))::float8 \
           FROM erasure_requests WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(pool)
    .await
    .expect("counting done requests");
    (done, Duration::from_secs_f64(span.max(0.0)))
}

/// The baseline: every member erased by a plain script, `in_flight` at a time.
async fn naive_all(
    client: &aws_sdk_s3::Client,
    pool: &PgPool,
    members: Vec<MemberSummary>,
    in_flight: usize,
) {
    let mut running = tokio::task::JoinSet::new();
    for member in members {
        let client = client.clone();
        let pool = pool.clone();
        running.spawn(async move {
            naive_delete(&client, &keys_by_bucket(&member), 1).await;
            naive_mask(&pool, &member.key).await;
        });
        while running.len() >= in_flight {
            running
                .join_next()
                .await
                .expect("a member is in flight")
                .expect("the baseline does not panic");
        }
    }
    while let Some(joined) = running.join_next().await {
        joined.expect("the baseline does not panic");
    }
}
