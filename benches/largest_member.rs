//! Benchmark 1 of issue 12: the seed's largest member (26,000 requests, ten PDF
//! extractions of 1,000 images, about 66,000 objects) erased by lethe with its load
//! limits off, against two naive baselines on identical members in the same run:
//! DeleteObjects of 1,000 keys one call after another, then one UPDATE per table
//! (sequential); and the same with as many DeleteObjects in flight as lethe's default
//! `s3.concurrency` (concurrent). Neither baseline discovers anything (it is handed the member's
//! object list), keeps a manifest, checkpoints, or reads anything back: it is the
//! floor a bare script sets. S3 is the harness's s3s server with modelled latency
//! (15 ms a call by default, see benches/common).
//!
//! Run: `cargo bench --bench largest_member`; `LETHE_BENCH_REQUESTS=2600` for a quick
//! run, `LETHE_BENCH_S3_LATENCY_MS` / `LETHE_BENCH_S3_PER_KEY_US` to change the model.
//! Figures go to `benches/results/largest_member.md` and stdout.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lethe::example::{LargePdfs, SEED_LARGEST_REQUESTS, SEED_LARGEST_REQUESTS_PER_LARGE_PDF};
use sqlx::PgPool;

/// The concurrent baseline's DeleteObjects in flight: the same as lethe's default
/// `s3.concurrency`, so that the comparison is like for like.
fn naive_in_flight() -> usize {
    lethe::Config::default().s3.concurrency
}

/// How often the request's state is read to split S3 calls by phase.
const WATCH_EVERY: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let requests = env_usize(REQUESTS_ENV, SEED_LARGEST_REQUESTS);
    let model = S3Model::from_env();
    let service = Service::start(harness::fresh_database().await).await;
    let pool = service.pool().clone();

    note(
        started,
        &format!("loading 3 members x {requests} requests (+ 3 bystanders x 100), latency off"),
    );
    let load_started = Instant::now();
    let large = LargePdfs::OnePer(SEED_LARGEST_REQUESTS_PER_LARGE_PDF);
    let loaded = service.load("largest", 3, requests, large).await;
    service
        .load("bystander", 3, 100, LargePdfs::FirstOfLargeMembers)
        .await;
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("ANALYZE");
    let load_time = load_started.elapsed();
    let [lethe_member, sequential_member, concurrent_member] = &loaded.members[..] else {
        panic!("three members were loaded");
    };
    let objects_per_member = lethe_member.objects.len();
    let rows_per_member = member_rows(&pool, &lethe_member.key).await;
    note(
        started,
        &format!(
            "loaded in {} s: {objects_per_member} objects and {rows_per_member} rows a member",
            secs(load_time)
        ),
    );

    model.apply(&service.s3);
    let client = service.s3.client().await;

    // (a) The naive sequential baseline.
    note(started, "naive sequential baseline");
    let sequential = naive(&service, &client, &pool, sequential_member, 1).await;
    // (b) The same, as many calls in flight as lethe keeps.
    note(started, "naive concurrent baseline");
    let in_flight = naive_in_flight();
    let concurrent = naive(&service, &client, &pool, concurrent_member, in_flight).await;

    // lethe: a bare INSERT, then `lethe worker --once` with the load limits off.
    note(
        started,
        "lethe (today this verifies by HEAD: the full member takes many minutes)",
    );
    let id = service.submit(&lethe_member.key).await;
    let settings = WorkerSettings::limits_off(None);
    let (command, log) = service.worker(&settings, "largest");
    let before = service.s3.counters().all_requests();
    let cpu = CpuMark::now();
    let postgres = ClusterCpu::of(&pool).await;
    let postgres_before = postgres.now();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (pid, spawned) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch_phases(
        pool.clone(),
        service.s3.counters(),
        ClusterCpu::of(&pool).await,
        id,
        spawned,
        stopped,
    ));
    let run = run_measured_async_telling(command, log, pid).await;
    let _ = stop.send(());
    let marks = watcher.await.expect("the phase watcher does not panic");
    let (own_cpu, machine_busy, machine_all) = cpu.since();
    let postgres_cpu = postgres.now().saturating_sub(postgres_before);
    let lethe_calls = s3_calls_since(&service.s3, &before);
    let phases = service.phases(id).await;
    let (rows_masked, objects_deleted) = service.erased(id).await;
    note(started, &format!("lethe done in {} s", secs(run.wall)));

    // Sanity, at loopback speed: the baselines did erase (a sample of each).
    service.s3.latency().off();
    for (name, member) in [
        ("sequential", sequential_member),
        ("concurrent", concurrent_member),
        ("lethe", lethe_member),
    ] {
        for object in member
            .objects
            .iter()
            .step_by(member.objects.len() / 200 + 1)
        {
            assert!(
                !service.s3.exists(&object.bucket, &object.key).await,
                "{name}: {}/{} survived",
                object.bucket,
                object.key
            );
        }
    }

    let lethe_time = run.wall.as_secs_f64();
    let mut report = format!(
        "# largest_member benchmark (issue 12, benchmark 1)\n\n{run_line}\n\n\
         Throwaway PostgreSQL 15 (the test cluster: fsync off) and the harness's in-process \
         s3s-fs server with modelled latency: {model}. Loading ran at loopback speed.\n\n\
         | each of three identical members | requests | rows | objects |\n|---|---|---|---|\n\
         | shaped like the seed's largest (ten PDF extractions of 1,000 images) | {requests} | {rows} | {objects} |\n\n\
         | run | wall time | lethe / it | S3 calls |\n|---|---|---|---|\n\
         | naive sequential: DeleteObjects of 1,000 keys one after another (S3 {seq_s3} s), one UPDATE per table in one transaction (DB {seq_db} s) | {seq} s | {r_seq:.2}x | {seq_calls} |\n\
         | naive concurrent: the same with {in_flight} DeleteObjects in flight (S3 {con_s3} s, DB {con_db} s) | {con} s | {r_con:.2}x | {con_calls} |\n\
         | lethe, `worker --once` ({settings}): manifest, checkpoints, lease, verification | {lethe} s | 1.00x | {lethe_calls} |\n\n\
         lethe erased {objects_deleted} objects and masked {rows_masked} rows; the baselines \
         were handed the member's object list (no discovery, no read-back). A sample of each \
         member's objects was checked gone afterwards. The sequential baseline's \
         DeleteObjects took {per_delete} ms each on average (the model's share: {modelled} ms \
         for 1,000 keys; the rest is the server's own work on this machine).\n\n\
         lethe's phases: times from the request's row; what each used read when the \
         request's state changed (polled every {watch} ms): the worker's CPU, PostgreSQL's \
         (the whole cluster's), the S3 calls, and what those calls' fixed cost adds up to \
         one after another ({per_call} ms each, plus {per_key} µs a key deleted):\n\n\
         | phase | time | lethe CPU | PostgreSQL CPU | S3 calls | S3 cost one at a time |\n\
         |---|---|---|---|---|---|\n",
        run_line = run_line("cargo bench --bench largest_member"),
        model = model.describe(),
        rows = thousands(rows_per_member as u64),
        objects = thousands(objects_per_member as u64),
        objects_deleted = thousands(objects_deleted as u64),
        rows_masked = thousands(rows_masked as u64),
        seq = secs(sequential.total),
        seq_s3 = secs(sequential.s3),
        seq_db = secs(sequential.total - sequential.s3),
        seq_calls = calls_line(&sequential.calls),
        r_seq = lethe_time / sequential.total.as_secs_f64(),
        con = secs(concurrent.total),
        con_s3 = secs(concurrent.s3),
        con_db = secs(concurrent.total - concurrent.s3),
        con_calls = calls_line(&concurrent.calls),
        r_con = lethe_time / concurrent.total.as_secs_f64(),
        settings = settings.describe(),
        lethe = secs(run.wall),
        lethe_calls = calls_line(&lethe_calls),
        watch = WATCH_EVERY.as_millis(),
        per_delete = ms(sequential.s3 / total_calls(&sequential.calls).max(1) as u32),
        modelled = ms(model.per_call + model.per_key * 1000),
        per_call = ms(model.per_call),
        per_key = model.per_key.as_micros(),
    );
    let by_phase = use_by_phase(&marks);
    let outside = run.wall.as_secs_f64() - phases.total;
    for (label, shown, seconds) in [
        ("finding targets", "finding targets", phases.finding),
        ("deleting objects", "deleting objects", phases.deleting),
        ("masking rows", "masking rows", phases.masking),
        ("verifying", "verifying", phases.verifying),
        ("starting", "worker start (preflight), claim, exit", outside),
    ] {
        let used = by_phase.get(label).cloned().unwrap_or_default();
        let keys = if label == "deleting objects" {
            objects_deleted as u32
        } else {
            0
        };
        let serial = model.per_call * total_calls(&used.s3) as u32 + model.per_key * keys;
        report.push_str(&format!(
            "| {shown} | {seconds:.2} s | {} s | {} s | {} | {} s |\n",
            secs(used.lethe_cpu),
            secs(used.postgres_cpu),
            calls_line(&used.s3),
            secs(serial),
        ));
    }
    report.push_str(&format!(
        "\nCPU during lethe's run: the worker process {lethe_cpu} s; PostgreSQL {postgres} s; \
         this process (the S3 server) {own_cpu} s; the machine {busy} s of {all} s available \
         (other builds included).\n\n\
         Loading the data (3 x {requests} + 3 x 100 requests, with objects) took {load:.0} s.\n",
        lethe_cpu = secs(run.cpu),
        postgres = secs(postgres_cpu),
        own_cpu = secs(own_cpu),
        busy = secs(machine_busy),
        all = secs(machine_all),
        load = load_time.as_secs_f64(),
    ));
    write_results("largest_member", &report);
    note(started, "finished");
}

/// One naive baseline run.
struct Naive {
    /// S3 part, then the whole (S3 + UPDATEs).
    s3: Duration,
    total: Duration,
    calls: BTreeMap<String, u64>,
}

async fn naive(
    service: &Service,
    client: &aws_sdk_s3::Client,
    pool: &PgPool,
    member: &lethe::example::MemberSummary,
    in_flight: usize,
) -> Naive {
    let keys = keys_by_bucket(member);
    let before = service.s3.counters().all_requests();
    let started = Instant::now();
    naive_delete(client, &keys, in_flight).await;
    let s3 = started.elapsed();
    naive_mask(pool, &member.key).await;
    let total = started.elapsed();
    Naive {
        s3,
        total,
        calls: s3_calls_since(&service.s3, &before),
    }
}

/// The member's rows: client rows and the feature and task rows below them.
async fn member_rows(pool: &PgPool, member: &str) -> i64 {
    let clients: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM client_old WHERE client_key = $1) \
              + (SELECT count(*) FROM client_temp WHERE client_key = $1) \
              + (SELECT count(*) FROM client WHERE client_key = $1)",
    )
    .bind(member)
    .fetch_one(pool)
    .await
    .expect("counting client rows");
    // One feature row and one task row per request in the example service.
    clients * 3
}

/// What was seen at a change of the request's phase.
struct Mark {
    label: &'static str,
    s3: BTreeMap<String, u64>,
    lethe_cpu: Duration,
    postgres_cpu: Duration,
}

/// Polls the request's state until `stop`, and at every change of phase takes a
/// reading of the S3 counters, the worker's CPU and PostgreSQL's; then a last one.
async fn watch_phases(
    pool: PgPool,
    counters: Arc<harness::S3Counters>,
    postgres: ClusterCpu,
    id: uuid::Uuid,
    worker: tokio::sync::oneshot::Receiver<u32>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Mark> {
    let pid = worker.await.expect("the worker was spawned");
    let mut last_cpu = Duration::ZERO;
    let mark = |label: &'static str, last_cpu: &mut Duration| {
        // A process that has exited has no /proc entry: its last reading stands.
        if let Some(cpu) = process_cpu(pid) {
            *last_cpu = cpu;
        }
        Mark {
            label,
            s3: counters.all_requests(),
            lethe_cpu: *last_cpu,
            postgres_cpu: postgres.now(),
        }
    };
    let mut marks = vec![mark("starting", &mut last_cpu)];
    loop {
        let row: Option<(String, bool)> = sqlx::query_as(
            "SELECT state, started_at IS NOT NULL FROM erasure_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&pool)
        .await
        .ok()
        .flatten();
        if let Some((state, started)) = row {
            let label = match (state.as_str(), started) {
                ("requested", false) => "starting",
                ("requested", true) => "finding targets",
                ("targets_found", _) => "deleting objects",
                ("s3_cleared", _) => "masking rows",
                ("db_masked", _) => "verifying",
                _ => "finished",
            };
            if marks.last().is_some_and(|last| last.label != label) {
                marks.push(mark(label, &mut last_cpu));
            } else if let Some(cpu) = process_cpu(pid) {
                last_cpu = cpu;
            }
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(WATCH_EVERY) => {}
        }
    }
    marks.push(mark("end", &mut last_cpu));
    marks
}

/// What a phase used, between consecutive marks.
#[derive(Default, Clone)]
struct PhaseUse {
    s3: BTreeMap<String, u64>,
    lethe_cpu: Duration,
    postgres_cpu: Duration,
}

/// What each phase used, summed by label; the worker's exit (after Done) is counted
/// with its start.
fn use_by_phase(marks: &[Mark]) -> BTreeMap<&'static str, PhaseUse> {
    let mut by_phase: BTreeMap<&'static str, PhaseUse> = BTreeMap::new();
    for pair in marks.windows(2) {
        let (from, to) = (&pair[0], &pair[1]);
        let label = if from.label == "finished" {
            "starting"
        } else {
            from.label
        };
        let entry = by_phase.entry(label).or_default();
        for (op, n) in &to.s3 {
            let delta = n - from.s3.get(op).copied().unwrap_or(0);
            if delta > 0 {
                *entry.s3.entry(op.clone()).or_default() += delta;
            }
        }
        entry.lethe_cpu += to.lethe_cpu.saturating_sub(from.lethe_cpu);
        entry.postgres_cpu += to.postgres_cpu.saturating_sub(from.postgres_cpu);
    }
    by_phase
}
