//! Benchmark 4 of issue 12: what an erasure costs the service's own traffic. pgbench
//! (PostgreSQL's TPC-B-like load, its tables initialised in the service's database)
//! runs alone, then while one `lethe worker --once` process erases the seed's largest
//! member under lethe's DEFAULT load limits, then alone again; the figure is the TPS
//! drop during the erasure against the run alone before it, all in one run. TPS is
//! read from pgbench's per-second progress reports, so it can also be split by lethe's
//! phases.
//!
//! The cluster runs with fsync on (PostgreSQL's defaults), as the service's production
//! database would: with fsync off pgbench is bound by CPU alone, and on this 2-core
//! machine it would measure little but the cores lethe, the S3 server and pgbench
//! share. They still share them: lethe's and this process's CPU are reported beside.
//!
//! Run: `cargo bench --bench pgbench_impact`; `LETHE_BENCH_REQUESTS` (the member,
//! default 26,000), `LETHE_BENCH_PGBENCH_CLIENTS` (4), `LETHE_BENCH_PGBENCH_SECS` (60,
//! each run alone), `LETHE_BENCH_PGBENCH_SCALE` (10), and the S3 model's variables.
//! Figures go to `benches/results/pgbench_impact.md`.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lethe::example::{LargePdfs, SEED_LARGEST_REQUESTS, SEED_LARGEST_REQUESTS_PER_LARGE_PDF};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let requests = env_usize(REQUESTS_ENV, SEED_LARGEST_REQUESTS);
    let clients = env_usize("LETHE_BENCH_PGBENCH_CLIENTS", 4);
    let alone_secs = env_usize("LETHE_BENCH_PGBENCH_SECS", 60);
    let scale = env_usize("LETHE_BENCH_PGBENCH_SCALE", 10);
    let model = S3Model::from_env();
    let service = Service::start(harness::fresh_durable_database().await).await;
    let pgbench = Pgbench::new(&service.db.url, &service.db.name, clients);

    note(
        started,
        &format!("loading the member ({requests} requests) and pgbench's tables (scale {scale})"),
    );
    let load_started = Instant::now();
    let loaded = service
        .load(
            "largest",
            1,
            requests,
            LargePdfs::OnePer(SEED_LARGEST_REQUESTS_PER_LARGE_PDF),
        )
        .await;
    service
        .load("bystander", 3, 100, LargePdfs::FirstOfLargeMembers)
        .await;
    pgbench.initialise(scale).await;
    sqlx::query("ANALYZE")
        .execute(service.pool())
        .await
        .expect("ANALYZE");
    sqlx::query("CHECKPOINT")
        .execute(service.pool())
        .await
        .expect("CHECKPOINT");
    let load_time = load_started.elapsed();
    model.apply(&service.s3);
    let member = &loaded.members[0];

    // The first seconds after loading run slower (caches, hint bits): not counted.
    note(started, "pgbench warm-up, 15 s");
    pgbench.run_for(Duration::from_secs(15)).await;
    let postgres = ClusterCpu::of(service.pool()).await;
    note(started, &format!("pgbench alone, {alone_secs} s"));
    let mark = (postgres.now(), Instant::now());
    let before = pgbench
        .run_for(Duration::from_secs(alone_secs as u64))
        .await;
    let postgres_before = per_second(&postgres, mark);

    note(
        started,
        "pgbench during the erasure (default load limits: many minutes)",
    );
    let id = service.submit(&member.key).await;
    let settings = WorkerSettings {
        concurrency: None,
        default_limits: true,
    };
    let (command, log) = service.worker(&settings, "pgbench-erasure");
    let background = pgbench.start();
    let cpu = CpuMark::now();
    let mark = (postgres.now(), Instant::now());
    let erasure_started = epoch_now();
    let run = run_measured_async(command, log).await;
    let erasure_ended = epoch_now();
    let (own_cpu, busy, all) = cpu.since();
    let postgres_during = per_second(&postgres, mark);
    let during = background.stop().await;
    let phases = phase_bounds(&service, id).await;
    let (rows, objects) = service.erased(id).await;

    note(started, &format!("pgbench alone again, {alone_secs} s"));
    let mark = (postgres.now(), Instant::now());
    let after = pgbench
        .run_for(Duration::from_secs(alone_secs as u64))
        .await;
    let postgres_after = per_second(&postgres, mark);

    let tps_before = mean_tps(&before, f64::MIN, f64::MAX);
    let tps_during = mean_tps(&during, erasure_started, erasure_ended);
    let tps_after = mean_tps(&after, f64::MIN, f64::MAX);
    // Alone before and alone after bracket the erasure: their mean is the baseline, so
    // a drift over the run (the machine's other load, the tables' growth) counts half.
    let tps_alone = (tps_before + tps_after) / 2.0;
    let drop = |tps: f64| (1.0 - tps / tps_alone) * 100.0;
    let mut report = format!(
        "# pgbench_impact benchmark (issue 12, benchmark 4)\n\n{run_line}\n\n\
         pgbench (TPC-B-like, scale {scale}, {clients} clients, 2 threads) on the service's \
         database while one `lethe worker --once` process ({settings}) erases a member of \
         {requests} requests ({objects} objects deleted, {rows} rows masked), against \
         pgbench alone before and after it, in one run (after a 15 s warm-up). Throwaway \
         PostgreSQL 15 with fsync on (PostgreSQL's defaults) and the harness's s3s-fs server \
         with modelled latency: {model}. TPS is the mean of pgbench's per-second progress \
         reports; the drop is against the mean of the two runs alone.\n\n\
         | pgbench | duration | TPS | drop |\n|---|---|---|---|\n\
         | alone, before | {alone_secs} s | {tps_before:.0} | |\n\
         | alone, after | {alone_secs} s | {tps_after:.0} | |\n\
         | alone, mean | | {tps_alone:.0} | |\n\
         | during the erasure | {erasure:.0} s | {tps_during:.0} | **{drop_during:.1}%** (target: at most 5%; against before alone: {drop_before:.1}%) |\n\n\
         By lethe's phase (times from the request's row):\n\n\
         | phase | time | TPS | drop |\n|---|---|---|---|\n",
        run_line = run_line("cargo bench --bench pgbench_impact"),
        settings = settings.describe(),
        model = model.describe(),
        erasure = erasure_ended - erasure_started,
        drop_during = drop(tps_during),
        drop_before = (1.0 - tps_during / tps_before) * 100.0,
        objects = thousands(objects as u64),
        rows = thousands(rows as u64),
    );
    for (label, from, to) in &phases {
        let tps = mean_tps(&during, *from, *to);
        // A phase shorter than pgbench's one-second reports may hold none.
        let (tps, dropped) = if tps.is_nan() {
            ("no report".to_owned(), "—".to_owned())
        } else {
            (format!("{tps:.0}"), format!("{:.1}%", drop(tps)))
        };
        report.push_str(&format!(
            "| {label} | {:.1} s | {tps} | {dropped} |\n",
            to - from
        ));
    }
    report.push_str(&format!(
        "\nCPU during the erasure: the lethe worker {lethe_cpu} s over {wall} s; this process \
         (the S3 server) {own} s; the machine {busy} s busy of {all} s available (PostgreSQL, \
         pgbench and other builds included). PostgreSQL (the whole cluster) used \
         {pg_before:.2} cores with pgbench alone before, {pg_during:.2} during the erasure, \
         {pg_after:.2} alone after.\n\nLoading the data took {load:.0} s.\n",
        pg_before = postgres_before,
        pg_during = postgres_during,
        pg_after = postgres_after,
        lethe_cpu = secs(run.cpu),
        wall = secs(run.wall),
        own = secs(own_cpu),
        busy = secs(busy),
        all = secs(all),
        load = load_time.as_secs_f64(),
    ));
    write_results("pgbench_impact", &report);
    note(started, "finished");
}

/// The cluster's CPU per second of wall time since `mark` (cores busy).
fn per_second(postgres: &ClusterCpu, mark: (Duration, Instant)) -> f64 {
    postgres.now().saturating_sub(mark.0).as_secs_f64() / mark.1.elapsed().as_secs_f64()
}

fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Each phase of the request: (label, start, end) in Unix seconds.
async fn phase_bounds(service: &Service, id: uuid::Uuid) -> Vec<(&'static str, f64, f64)> {
    let row: (f64, f64, f64, f64, f64) = sqlx::query_as(
        "SELECT extract(epoch FROM started_at)::float8, \
                extract(epoch FROM targets_found_at)::float8, \
                extract(epoch FROM s3_cleared_at)::float8, \
                extract(epoch FROM db_masked_at)::float8, \
                extract(epoch FROM finished_at)::float8 \
           FROM erasure_requests WHERE id = $1 AND state = 'done'",
    )
    .bind(id)
    .fetch_one(service.pool())
    .await
    .expect("the erasure finished");
    vec![
        ("finding targets", row.0, row.1),
        ("deleting objects", row.1, row.2),
        ("masking rows", row.2, row.3),
        ("verifying", row.3, row.4),
    ]
}

/// One per-second progress report: (Unix time, TPS over that second).
type Sample = (f64, f64);

/// Mean TPS of the samples taken in `[from, to]`; a report covers the second before
/// its time stamp.
fn mean_tps(samples: &[Sample], from: f64, to: f64) -> f64 {
    let inside: Vec<f64> = samples
        .iter()
        .filter(|(at, _)| *at - 1.0 >= from - 0.5 && *at <= to + 0.5)
        .map(|(_, tps)| *tps)
        .collect();
    if inside.is_empty() {
        return f64::NAN;
    }
    inside.iter().sum::<f64>() / inside.len() as f64
}

/// pgbench against the service's database, over TCP as the `postgres` user.
struct Pgbench {
    bin: PathBuf,
    host: String,
    port: String,
    database: String,
    clients: usize,
}

/// A pgbench run in the background, its progress reports collected as they come.
struct Background {
    child: tokio::process::Child,
    samples: Arc<Mutex<Vec<Sample>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Background {
    /// Stops pgbench (SIGKILL: the run was open-ended) and returns its reports.
    async fn stop(mut self) -> Vec<Sample> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = self.reader.await;
        self.samples.lock().expect("never poisoned").clone()
    }
}

impl Pgbench {
    fn new(url: &str, database: &str, clients: usize) -> Pgbench {
        // postgres://postgres@127.0.0.1:PORT/NAME
        let authority = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("a URL with an authority");
        let host_port = authority.rsplit('@').next().expect("host:port");
        let (host, port) = host_port.split_once(':').expect("host:port");
        Pgbench {
            bin: pgbench_binary(),
            host: host.to_owned(),
            port: port.to_owned(),
            database: database.to_owned(),
            clients,
        }
    }

    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .args(["-h", &self.host, "-p", &self.port, "-U", "postgres"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn initialise(&self, scale: usize) {
        let output = self
            .command()
            .args(["-i", "-q", "-s", &scale.to_string(), &self.database])
            .output()
            .await
            .expect("running pgbench -i");
        assert!(
            output.status.success(),
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts an open-ended run reporting TPS every second.
    fn start(&self) -> Background {
        self.spawn(24 * 3600)
    }

    fn spawn(&self, seconds: u64) -> Background {
        let mut child = self
            .command()
            .args([
                "-c",
                &self.clients.to_string(),
                "-j",
                "2",
                "-T",
                &seconds.to_string(),
                "-P",
                "1",
                "--progress-timestamp",
                &self.database,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting pgbench");
        let stderr = child.stderr.take().expect("stderr is piped");
        let samples = Arc::new(Mutex::new(Vec::new()));
        let collected = Arc::clone(&samples);
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(sample) = parse_progress(&line) {
                    collected.lock().expect("never poisoned").push(sample);
                }
            }
        });
        Background {
            child,
            samples,
            reader,
        }
    }

    /// A run of `duration`; its progress reports.
    async fn run_for(&self, duration: Duration) -> Vec<Sample> {
        let mut background = self.spawn(duration.as_secs());
        let status = background.child.wait().await.expect("waiting for pgbench");
        assert!(status.success(), "pgbench failed: {status}");
        let _ = (&mut background.reader).await;
        background.samples.lock().expect("never poisoned").clone()
    }
}

/// `progress: 1764400000.123 s, 1234.5 tps, lat 3.2 ms stddev 1.1, 0 failed`.
fn parse_progress(line: &str) -> Option<Sample> {
    let rest = line.strip_prefix("progress: ")?;
    let mut parts = rest.split(", ");
    let at: f64 = parts.next()?.strip_suffix(" s")?.parse().ok()?;
    let tps: f64 = parts.next()?.strip_suffix(" tps")?.parse().ok()?;
    Some((at, tps))
}

/// The highest installed version's pgbench.
fn pgbench_binary() -> PathBuf {
    let root = std::path::Path::new("/usr/lib/postgresql");
    std::fs::read_dir(root)
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin/pgbench");
            bin.exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .expect("pgbench is in the PostgreSQL package")
}
