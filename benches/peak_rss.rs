//! Benchmark 3 of issue 12: lethe's peak memory does not grow with the member. One
//! `lethe worker --once --ignore-window` process (the binary, a config file, as an
//! operator runs it) erases a member of 2,600 requests, another one of 26,000 (ten
//! times the requests and objects: the seed's largest), and, as the floor, a worker
//! with nothing to do; each process's peak resident set (VmHWM, polled every 10 ms
//! from /proc/<pid>/status) is reported, with the ratio of the two erasures.
//!
//! Run: `cargo bench --bench peak_rss`; `LETHE_BENCH_REQUESTS` sets the larger member
//! (the smaller is a tenth of it), and the S3 model's variables (benches/common)
//! apply. Figures go to `benches/results/peak_rss.md`.

#[path = "../tests/it/harness/mod.rs"]
mod harness;

mod common;

use std::time::Instant;

use common::*;
use lethe::example::{LargePdfs, SEED_LARGEST_REQUESTS, SEED_LARGEST_REQUESTS_PER_LARGE_PDF};

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let large_requests = env_usize(REQUESTS_ENV, SEED_LARGEST_REQUESTS);
    let small_requests = (large_requests / 10).max(1);
    let model = S3Model::from_env();
    let service = Service::start(harness::fresh_database().await).await;
    let large_pdfs = LargePdfs::OnePer(SEED_LARGEST_REQUESTS_PER_LARGE_PDF);

    note(
        started,
        &format!("loading members of {small_requests} and {large_requests} requests, latency off"),
    );
    let load_started = Instant::now();
    let small = service.load("small", 1, small_requests, large_pdfs).await;
    let large = service.load("large", 1, large_requests, large_pdfs).await;
    service
        .load("bystander", 3, 100, LargePdfs::FirstOfLargeMembers)
        .await;
    sqlx::query("ANALYZE")
        .execute(service.pool())
        .await
        .expect("ANALYZE");
    let load_time = load_started.elapsed();
    model.apply(&service.s3);
    let settings = WorkerSettings::limits_off(None);

    note(started, "an idle worker (nothing queued)");
    let (command, log) = service.worker(&settings, "rss-idle");
    let idle = run_measured_async(command, log).await;

    let mut runs = Vec::new();
    for (name, loaded) in [("small", &small), ("large", &large)] {
        let member = &loaded.members[0];
        note(
            started,
            &format!("erasing {} ({} requests)", member.key, member.requests),
        );
        let id = service.submit(&member.key).await;
        let (command, log) = service.worker(&settings, &format!("rss-{name}"));
        let run = run_measured_async(command, log).await;
        let (rows, objects) = service.erased(id).await;
        note(
            started,
            &format!(
                "  {} s, peak RSS {} MiB",
                secs(run.wall),
                mib(run.peak_rss_kib)
            ),
        );
        runs.push((member.requests, rows, objects, run));
    }

    let ratio = runs[1].3.peak_rss_kib as f64 / runs[0].3.peak_rss_kib as f64;
    let mut report = format!(
        "# peak_rss benchmark (issue 12, benchmark 3)\n\n{run_line}\n\n\
         Each row is one `lethe worker --once --ignore-window` process ({settings}), its peak \
         resident set read as VmHWM from /proc/<pid>/status every 10 ms. Throwaway PostgreSQL \
         15 (fsync off) and the harness's s3s-fs server with modelled latency: {model}.\n\n\
         | worker | requests | rows masked | objects deleted | peak RSS | wall time | CPU |\n\
         |---|---|---|---|---|---|---|\n\
         | idle: nothing queued (start, preflight, exit) | — | — | — | {idle_rss} MiB | {idle_wall} s | {idle_cpu} s |\n",
        run_line = run_line("cargo bench --bench peak_rss"),
        settings = settings.describe(),
        model = model.describe(),
        idle_rss = mib(idle.peak_rss_kib),
        idle_wall = secs(idle.wall),
        idle_cpu = secs(idle.cpu),
    );
    for (requests, rows, objects, run) in &runs {
        report.push_str(&format!(
            "| erasing one member | {} | {} | {} | {} MiB | {} s | {} s |\n",
            thousands(*requests as u64),
            thousands(*rows as u64),
            thousands(*objects as u64),
            mib(run.peak_rss_kib),
            secs(run.wall),
            secs(run.cpu),
        ));
    }
    report.push_str(&format!(
        "\nPeak RSS at {large_requests} requests / at {small_requests}: **{ratio:.3}** \
         ({pct:+.1}%; the target is within 10%). Above the idle worker: {small_extra} MiB and \
         {large_extra} MiB.\n\nLoading the data took {load:.0} s.\n",
        pct = (ratio - 1.0) * 100.0,
        small_extra = mib(runs[0].3.peak_rss_kib.saturating_sub(idle.peak_rss_kib)),
        large_extra = mib(runs[1].3.peak_rss_kib.saturating_sub(idle.peak_rss_kib)),
        load = load_time.as_secs_f64(),
    ));
    write_results("peak_rss", &report);
    note(started, "finished");
}
