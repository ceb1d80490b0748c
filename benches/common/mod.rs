//! What the benchmarks share: the example service on a throwaway PostgreSQL database
//! and the test S3 server (tests/it/harness, with its modelled latency), `lethe worker`
//! run as a child process with a config file and measured (wall time, CPU, peak RSS),
//! CPU snapshots of this process and the machine, S3 calls per operation, phase times
//! read from the request's row, and the results file.
//!
//! The worker runs as a child process of its own, as in production, so that its CPU and
//! memory are lethe's alone: the S3 server, the data loader and the naive baselines run
//! in the benchmark process. Everything lethe is asked is asked through its binary and
//! SQL (a bare `INSERT` submits), so the benchmarks measure what an operator runs.

// Each benchmark uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lethe::config::Config;
use lethe::example::{ExampleSpec, LargePdfs, LoadSummary, MemberSummary};
use lethe::objects::{Credentials, ObjectStore};
use lethe::store::Store;
use sqlx::PgPool;

use crate::harness::{TestDatabase, TestS3};

/// Environment variable: modelled S3 latency per call, in milliseconds.
pub const LATENCY_ENV: &str = "LETHE_BENCH_S3_LATENCY_MS";
/// Environment variable: modelled S3 cost per key, in microseconds.
pub const PER_KEY_ENV: &str = "LETHE_BENCH_S3_PER_KEY_US";
/// S3 in-region answers a small call in 10–30 ms; 15 ms is the figure issue 12 uses.
pub const DEFAULT_LATENCY_MS: f64 = 15.0;
/// A DeleteObjects of 1,000 keys costs 15 ms + 50 ms = 65 ms, about four HEADs: S3's
/// work on a multi-object delete grows with its keys, and a full page of a listing
/// (1,000 entries) is charged the same. A modelling choice, not a measurement of AWS;
/// the naive sequential baseline is the figure it moves most (one call per 1,000 keys).
pub const DEFAULT_PER_KEY_US: f64 = 50.0;

/// The member the issue is about: the seed's largest.
pub const REQUESTS_ENV: &str = "LETHE_BENCH_REQUESTS";

pub const HASH_SECRET: &str = "lethe-bench-subject-hash-secret";

/// A `usize` from the environment, `_` separators allowed, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?}: {e}")),
        _ => default,
    }
}

pub fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?}: {e}")),
        _ => default,
    }
}

/// The modelled S3 latency a benchmark runs with (see tests/it/harness/s3_latency.rs).
#[derive(Debug, Clone, Copy)]
pub struct S3Model {
    pub per_call: Duration,
    pub per_key: Duration,
}

impl S3Model {
    /// From `LETHE_BENCH_S3_LATENCY_MS` and `LETHE_BENCH_S3_PER_KEY_US`, or the defaults.
    pub fn from_env() -> S3Model {
        S3Model {
            per_call: Duration::from_secs_f64(env_f64(LATENCY_ENV, DEFAULT_LATENCY_MS) / 1e3),
            per_key: Duration::from_secs_f64(env_f64(PER_KEY_ENV, DEFAULT_PER_KEY_US) / 1e6),
        }
    }

    /// Sets the model on `s3`, with batched deletes (one blocking call per DeleteObjects
    /// for its file removals, see tests/it/harness/s3_latency.rs) and indexed listings
    /// (a listing walks the prefix's directory, not the whole bucket: s3_listing.rs):
    /// the server's own work competes for this machine's two cores, and it would
    /// otherwise outweigh the modelled cost.
    pub fn apply(&self, s3: &TestS3) {
        s3.latency().set(self.per_call, self.per_key);
        s3.latency().set_batched_deletes(true);
        s3.latency().set_indexed_listing(true);
    }

    pub fn describe(&self) -> String {
        format!(
            "{} ms a call, plus {} µs a key of a DeleteObjects (or an entry of a listing): \
             a 1,000-key DeleteObjects takes {} ms, plus the server's own work (its file \
             removals, on a RAM disk, in one blocking call; a listing walks the directory \
             its prefix names, not the whole bucket)",
            ms(self.per_call),
            self.per_key.as_micros(),
            ms(self.per_call + self.per_key * 1000),
        )
    }
}

/// Where the S3 server keeps its objects: a RAM disk if there is one (see
/// `TestS3::start_in`), else the temporary directory.
pub fn s3_data_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// The example service on one database, with the S3 server its data lives on.
pub struct Service {
    pub db: TestDatabase,
    pub s3: TestS3,
    pub store: Store,
    /// lethe's S3 client, for loading the example data.
    pub objects: ObjectStore,
    /// Config files and worker logs: `target/bench-logs/<benchmark>/`, kept after the
    /// run (the next run of the benchmark replaces them).
    pub dir: PathBuf,
}

impl Service {
    /// lethe's tables, the example schema and buckets on `db`, and a fresh S3 server
    /// (latency off: loading runs at loopback speed).
    pub async fn start(db: TestDatabase) -> Service {
        let s3 = TestS3::start_in(&s3_data_parent()).await;
        let store = Store::from_pool(db.pool.clone());
        store.migrate().await.expect("migrating lethe's tables");
        let mut settings = Config::default().s3;
        settings.endpoint_url = Some(s3.endpoint());
        settings.region = Some(s3.region().to_owned());
        settings.force_path_style = true;
        let credentials = Credentials::new(s3.access_key(), s3.secret_key(), None, None, "bench");
        let objects = ObjectStore::connect_with_credentials(&settings, credentials).await;
        lethe::example::create_schema(&store)
            .await
            .expect("example schema");
        lethe::example::create_buckets(&objects)
            .await
            .expect("example buckets");
        let bench = std::env::args()
            .next()
            .and_then(|exe| {
                Path::new(&exe)
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .map(|name| name.split('-').next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| "bench".to_owned());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/bench-logs")
            .join(bench);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating the benchmark's log directory");
        Service {
            db,
            s3,
            store,
            objects,
            dir,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Loads `members` members of `requests` requests each, keyed `<prefix>-00001`...
    pub async fn load(
        &self,
        prefix: &str,
        members: usize,
        requests: usize,
        large_pdfs: LargePdfs,
    ) -> LoadSummary {
        let spec = ExampleSpec {
            members,
            requests_per_member: requests,
            member_prefix: prefix.to_owned(),
            every_feature: false,
        };
        lethe::example::load_with(&self.store, &self.objects, &spec, large_pdfs)
            .await
            .expect("loading the example data")
    }

    /// Submits an erasure of `member` by a bare SQL INSERT; its request id.
    pub async fn submit(&self, member: &str) -> uuid::Uuid {
        sqlx::query_scalar("INSERT INTO erasure_requests (subject_key) VALUES ($1) RETURNING id")
            .bind(member)
            .fetch_one(self.pool())
            .await
            .expect("submitting by INSERT")
    }

    /// `lethe worker --once --ignore-window` against this service, configured by
    /// `worker`, logging to `<dir>/<log>.log`.
    pub fn worker(&self, worker: &WorkerSettings, log: &str) -> (Command, PathBuf) {
        let config = self.dir.join(format!("{log}.toml"));
        fs::write(&config, worker.toml()).expect("writing the worker's config file");
        // `LETHE_BENCH_WRAP="heaptrack -o /tmp/lethe"` (or `env MALLOC_ARENA_MAX=2`) runs
        // the worker under a profiler: how the figures are explained, not how they are taken.
        let wrap = std::env::var("LETHE_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(env!("CARGO_BIN_EXE_lethe"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_lethe")),
        };
        command
            .arg("--config")
            .arg(&config)
            .args(["worker", "--once", "--ignore-window"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            // `LETHE_BENCH_LOG=lethe=debug` shows each batch's timings in the log.
            .env(
                "LETHE_LOG",
                std::env::var("LETHE_BENCH_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .envs(self.s3.env());
        (command, self.dir.join(format!("{log}.log")))
    }

    /// Phase durations of a finished request, from its row (seconds).
    pub async fn phases(&self, id: uuid::Uuid) -> Phases {
        let row: (String, f64, f64, f64, f64, f64) = sqlx::query_as(
            "SELECT state, \
                    extract(epoch FROM targets_found_at - started_at)::float8, \
                    extract(epoch FROM s3_cleared_at - targets_found_at)::float8, \
                    extract(epoch FROM db_masked_at - s3_cleared_at)::float8, \
                    extract(epoch FROM finished_at - db_masked_at)::float8, \
                    extract(epoch FROM finished_at - started_at)::float8 \
               FROM erasure_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await
        .expect("reading the request's phase times");
        assert_eq!(row.0, "done", "request {id} did not finish");
        Phases {
            finding: row.1,
            deleting: row.2,
            masking: row.3,
            verifying: row.4,
            total: row.5,
        }
    }

    /// What a finished request's row says it erased: (rows masked, objects deleted).
    pub async fn erased(&self, id: uuid::Uuid) -> (i64, i64) {
        sqlx::query_as("SELECT rows_masked, objects_deleted FROM erasure_requests WHERE id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await
            .expect("reading the request's counts")
    }
}

/// How a worker child is configured.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// `None`: lethe's default (`worker.concurrency`).
    pub concurrency: Option<u32>,
    /// `false`: `max_objects_per_sec`, `max_rows_per_sec` and `pause_between_batches_ms`
    /// all 0, the engine's own speed; `true`: lethe's defaults.
    pub default_limits: bool,
}

impl WorkerSettings {
    pub fn limits_off(concurrency: Option<u32>) -> WorkerSettings {
        WorkerSettings {
            concurrency,
            default_limits: false,
        }
    }

    /// Everything else is lethe's default (batches of 500 requests, deletion batches of
    /// 8,000 objects, 32 S3 calls in flight, S3 retries, leases), unless
    /// `LETHE_BENCH_S3_CONCURRENCY` or `LETHE_BENCH_DELETE_BATCH` set `s3.concurrency`
    /// or `worker.delete_batch_size` (to see what they cost in memory or time).
    fn toml(&self) -> String {
        let mut text = format!(
            "catalog = {catalog:?}\n\
             [s3]\nforce_path_style = true\n",
            catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/example"),
        );
        if let Ok(concurrency) = std::env::var("LETHE_BENCH_S3_CONCURRENCY") {
            let _ = writeln!(text, "concurrency = {concurrency}");
        }
        text.push_str("[worker]\npoll_interval_ms = 1000\n");
        if let Ok(batch) = std::env::var("LETHE_BENCH_DELETE_BATCH") {
            let _ = writeln!(text, "delete_batch_size = {batch}");
        }
        if let Some(concurrency) = self.concurrency {
            let _ = writeln!(text, "concurrency = {concurrency}");
        }
        if !self.default_limits {
            text.push_str(
                "max_objects_per_sec = 0\nmax_rows_per_sec = 0\npause_between_batches_ms = 0\n",
            );
        }
        let _ = write!(
            text,
            "[minimisation]\nsubject_hash_secret = {HASH_SECRET:?}\n"
        );
        text
    }

    pub fn describe(&self) -> String {
        let limits = if self.default_limits {
            "default load limits (200 objects/s, 1,000 rows/s, 200 ms between batches)"
        } else {
            "load limits off"
        };
        format!(
            "concurrency {}, {limits}",
            concurrency_label(self.concurrency)
        )
    }
}

/// "64", or "the default (1)".
pub fn concurrency_label(concurrency: Option<u32>) -> String {
    match concurrency {
        Some(n) => n.to_string(),
        None => format!("the default ({})", Config::default().worker.concurrency),
    }
}

/// Phase durations of one request, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub finding: f64,
    pub deleting: f64,
    pub masking: f64,
    pub verifying: f64,
    /// From the claim to Done.
    pub total: f64,
}

/// One measured run of a child process.
#[derive(Debug, Clone)]
pub struct ChildRun {
    pub wall: Duration,
    /// User + system CPU of the child (and any children it waited for).
    pub cpu: Duration,
    /// Highest VmHWM seen, polled every 10 ms: the peak resident set, short of any
    /// growth in its last 10 ms.
    pub peak_rss_kib: u64,
}

/// Runs `command` to completion (stdout discarded, stderr to `log`), measuring it;
/// panics with the log's tail if it fails. Blocking: call it from `spawn_blocking`.
pub fn run_measured(command: Command, log: &Path) -> ChildRun {
    run_measured_telling(command, log, |_| {})
}

/// [`run_measured`], handing the child's pid to `spawned` once it runs.
pub fn run_measured_telling(
    mut command: Command,
    log: &Path,
    spawned: impl FnOnce(u32),
) -> ChildRun {
    let log_file = fs::File::create(log).expect("creating the worker log");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    let before = children_cpu();
    let started = Instant::now();
    let mut child = command.spawn().expect("spawning lethe");
    spawned(child.id());
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = fs::read_to_string(&status_path)
            && let Some(kib) = status_field_kib(&text, "VmHWM:")
        {
            peak = peak.max(kib);
        }
        match child.try_wait().expect("waiting for lethe") {
            Some(status) => break status,
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let wall = started.elapsed();
    let cpu = children_cpu().saturating_sub(before);
    assert!(
        status.success(),
        "lethe exited with {status}; its log ({}) ends:\n{}",
        log.display(),
        tail(log, 4000)
    );
    ChildRun {
        wall,
        cpu,
        peak_rss_kib: peak,
    }
}

/// [`run_measured`] off the async runtime.
pub async fn run_measured_async(command: Command, log: PathBuf) -> ChildRun {
    tokio::task::spawn_blocking(move || run_measured(command, &log))
        .await
        .expect("the measuring thread does not panic")
}

/// [`run_measured_async`], sending the child's pid on `pid` once it runs.
pub async fn run_measured_async_telling(
    command: Command,
    log: PathBuf,
    pid: tokio::sync::oneshot::Sender<u32>,
) -> ChildRun {
    tokio::task::spawn_blocking(move || {
        run_measured_telling(command, &log, |id| {
            let _ = pid.send(id);
        })
    })
    .await
    .expect("the measuring thread does not panic")
}

/// User + system CPU of a live process so far.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat);
    Some(ticks(fields.get(11)? + fields.get(12)?))
}

/// The CPU a PostgreSQL cluster has used: its postmaster's own, the backends and
/// helpers it has reaped (its cutime + cstime), and the live ones'. Differences between
/// two readings are what the cluster did in between, whichever backends came and went.
pub struct ClusterCpu {
    postmaster: u32,
}

impl ClusterCpu {
    /// The cluster `pool` is connected to (it must be on this machine).
    pub async fn of(pool: &PgPool) -> ClusterCpu {
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(pool)
            .await
            .expect("pg_backend_pid()");
        let stat = fs::read_to_string(format!("/proc/{backend}/stat"))
            .expect("the PostgreSQL server runs on this machine");
        ClusterCpu {
            postmaster: stat_fields(&stat)[1] as u32,
        }
    }

    pub fn now(&self) -> Duration {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.postmaster))
            .expect("the postmaster is alive");
        let own = stat_fields(&stat);
        let mut total = own[11] + own[12] + own[13] + own[14];
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let fields = stat_fields(&stat);
            if fields.get(1).copied() == Some(u64::from(self.postmaster)) {
                total += fields[11] + fields[12];
            }
        }
        ticks(total)
    }
}

fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|line| line.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The last `bytes` of a file, for failure messages.
pub fn tail(path: &Path, bytes: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&text[text.len().saturating_sub(bytes)..]).into_owned()
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> u64 {
    use std::sync::OnceLock;
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

fn ticks(n: u64) -> Duration {
    Duration::from_secs_f64(n as f64 / clock_ticks() as f64)
}

/// Fields of /proc/self/stat after the command name: index 0 is field 3 (state).
fn self_stat() -> Vec<u64> {
    stat_fields(&fs::read_to_string("/proc/self/stat").expect("reading /proc/self/stat"))
}

/// The fields of a /proc/<pid>/stat line after the command name: index 0 is field 3
/// (state, read as 0), 1 the parent's pid, 11 and 12 utime and stime, 13 and 14 the
/// waited-for children's.
fn stat_fields(stat: &str) -> Vec<u64> {
    let after_name = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    after_name
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect()
}

/// CPU used by this process's children that have been waited for (cutime + cstime).
fn children_cpu() -> Duration {
    // Makes sure getconf has run (and been waited for) before a first snapshot.
    clock_ticks();
    let stat = self_stat();
    ticks(stat[13] + stat[14])
}

/// CPU used so far by this process (utime + stime): the S3 server, the loader, the
/// baselines.
pub fn own_cpu() -> Duration {
    let stat = self_stat();
    ticks(stat[11] + stat[12])
}

/// The machine's CPU time so far: (busy, all), over every core, from /proc/stat.
pub fn machine_cpu() -> (Duration, Duration) {
    let stat = fs::read_to_string("/proc/stat").expect("reading /proc/stat");
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .expect("/proc/stat starts with the cpu line")
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let all: u64 = fields.iter().take(8).sum();
    // idle and iowait are not work.
    let busy = all - fields[3] - fields.get(4).copied().unwrap_or(0);
    (ticks(busy), ticks(all))
}

/// CPU spent between two points: by this process, and by the whole machine.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    own: Duration,
    busy: Duration,
    all: Duration,
}

impl CpuMark {
    pub fn now() -> CpuMark {
        let (busy, all) = machine_cpu();
        CpuMark {
            own: own_cpu(),
            busy,
            all,
        }
    }

    /// (this process's CPU, the machine's busy CPU, the machine's capacity) since.
    pub fn since(&self) -> (Duration, Duration, Duration) {
        let now = CpuMark::now();
        (
            now.own.saturating_sub(self.own),
            now.busy.saturating_sub(self.busy),
            now.all.saturating_sub(self.all),
        )
    }
}

/// The S3 server's per-operation request counts (retries included) since `before`.
pub fn s3_calls_since(s3: &TestS3, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    s3.counters()
        .all_requests()
        .into_iter()
        .map(|(op, n)| {
            let earlier = before.get(&op).copied().unwrap_or(0);
            (op, n - earlier)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// "DeleteObjects 66, HeadObject 66,000" in the order given.
pub fn calls_line(calls: &BTreeMap<String, u64>) -> String {
    if calls.is_empty() {
        return "none".to_owned();
    }
    calls
        .iter()
        .map(|(op, n)| format!("{op} {}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn total_calls(calls: &BTreeMap<String, u64>) -> u64 {
    calls.values().sum()
}

/// Which objects of `member` are in which bucket.
pub fn keys_by_bucket(member: &MemberSummary) -> BTreeMap<String, Vec<String>> {
    let mut by_bucket: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in &member.objects {
        by_bucket
            .entry(object.bucket.clone())
            .or_default()
            .push(object.key.clone());
    }
    by_bucket
}

/// The naive baseline's rows: every catalogued column of the member's rows masked with
/// one UPDATE per table, tasks first, in one transaction: what a one-off script would
/// do (the catalog's policies, without lethe's manifest, checkpoints or read-back).
pub async fn naive_mask(pool: &PgPool, member: &str) {
    let mut tx = pool.begin().await.expect("begin");
    let ids = "SELECT id FROM client_old WHERE client_key = $1 UNION ALL \
               SELECT id FROM client_temp WHERE client_key = $1 UNION ALL \
               SELECT id FROM client WHERE client_key = $1";
    for feature in lethe::example::features::FEATURES.iter().map(|f| f.stem) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {feature}_task SET result = '{{}}' WHERE feature_id IN \
             (SELECT id FROM {feature}_feature WHERE client_id IN ({ids}))"
        )))
        .bind(member)
        .execute(&mut *tx)
        .await
        .expect("naive task update");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {feature}_feature SET prompt = NULL, option = '{{}}', legacy_option = NULL \
             WHERE client_id IN ({ids})"
        )))
        .bind(member)
        .execute(&mut *tx)
        .await
        .expect("naive feature update");
    }
    for client in ["client_old", "client_temp", "client"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {client} SET client_key = NULL, ip_address = NULL, user_agent = NULL \
             WHERE client_key = $1"
        )))
        .bind(member)
        .execute(&mut *tx)
        .await
        .expect("naive client update");
    }
    tx.commit().await.expect("commit");
}

/// Deletes every key of `by_bucket` with one quiet DeleteObjects per 1,000 keys of a
/// bucket, `in_flight` calls at a time (1: one after another). Returns the calls made.
pub async fn naive_delete(
    client: &aws_sdk_s3::Client,
    by_bucket: &BTreeMap<String, Vec<String>>,
    in_flight: usize,
) -> usize {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut running = tokio::task::JoinSet::new();
    let mut calls = 0;
    for (bucket, keys) in by_bucket {
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build().expect("a key"))
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("objects are set");
            let call = client.delete_objects().bucket(bucket).delete(delete).send();
            running.spawn(call);
            calls += 1;
            while running.len() >= in_flight.max(1) {
                let output = running.join_next().await.expect("a call is running");
                check_delete(output);
            }
        }
    }
    while let Some(output) = running.join_next().await {
        check_delete(output);
    }
    calls
}

fn check_delete<T, E: std::fmt::Debug>(joined: Result<Result<T, E>, tokio::task::JoinError>) {
    joined
        .expect("the DeleteObjects task does not panic")
        .expect("DeleteObjects");
}

/// Writes `report` to `benches/results/<name>.md` and stdout.
pub fn write_results(name: &str, report: &str) {
    print!("{report}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/results")
        .join(format!("{name}.md"));
    fs::write(&path, report).expect("writing the results file");
    eprintln!("written to {}", path.display());
}

/// "Run: `<command>` on <date>, <machine>." for the top of a results file.
pub fn run_line(command: &str) -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!(
        "Run: `{command}` on {date}, {cores} cores ({model}), shared with other builds: \
         absolute times are noisy, ratios within one run are the figures.",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    )
}

/// Seconds with two decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms.fract() == 0.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

/// 66000 -> "66,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Progress on stderr, with the time since the benchmark started.
pub fn note(started: Instant, message: &str) {
    eprintln!("[{:>7.1} s] {message}", started.elapsed().as_secs_f64());
}
