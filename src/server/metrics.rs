//! `/metrics`: Prometheus's text format, read from the database at each
//! scrape ([`crate::store::stats`]), so one scrape of any `lethe serve`
//! counts the work of every worker.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api::ApiCaller;
use super::problem::Problem;
use crate::config::Role;
use crate::error::Error;
use crate::store::stats::Stats;

/// Histogram bounds for a phase's duration, in seconds: from a small
/// member's second to a large one's hours.
const BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 43200.0, 86400.0,
];

/// Prometheus text: requests by state, overdue, batches, objects deleted,
/// rows masked, retries, lease takeovers, phase durations.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A `submit` token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, Problem> {
    caller.require(&[Role::Operate, Role::Audit])?;
    let deadline = state.engine.config().overdue_after().map_err(Error::from)?;
    let stats = state
        .engine
        .store()
        .stats(state.engine.clock().now() - deadline)
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        render(&stats),
    )
        .into_response())
}

fn event_count(stats: &Stats, kind: &str) -> i64 {
    stats
        .events
        .iter()
        .filter(|(name, _)| name == kind)
        .map(|(_, count)| count)
        .sum()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The text of one scrape.
pub fn render(stats: &Stats) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "lethe_requests",
        "gauge",
        "Erasure requests by state.",
    );
    for (state, count) in &stats.by_state {
        let _ = writeln!(out, "lethe_requests{{state=\"{state}\"}} {count}");
    }
    family(
        &mut out,
        "lethe_requests_overdue",
        "gauge",
        "Unfinished requests past their deadline (overdue_after).",
    );
    let _ = writeln!(out, "lethe_requests_overdue {}", stats.overdue);
    let counters = [
        (
            "lethe_batches_total",
            "Batches committed.",
            event_count(stats, "batch_committed"),
        ),
        (
            "lethe_objects_deleted_total",
            "Objects deleted.",
            stats.objects_deleted,
        ),
        ("lethe_rows_masked_total", "Rows masked.", stats.rows_masked),
        (
            "lethe_retries_total",
            "Failed attempts scheduled for a retry.",
            event_count(stats, "retry_scheduled"),
        ),
        (
            "lethe_operator_retries_total",
            "Failed requests resumed by an operator.",
            event_count(stats, "retried"),
        ),
        (
            "lethe_failures_total",
            "Requests that stopped in failed.",
            event_count(stats, "failed"),
        ),
        (
            "lethe_lease_takeovers_total",
            "Expired leases taken over (a worker died holding them).",
            event_count(stats, "taken_over"),
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        &mut out,
        "lethe_phase_duration_seconds",
        "histogram",
        "How long each phase took, for requests that are done.",
    );
    for (phase, seconds) in &stats.phase_seconds {
        for bound in BUCKETS {
            let within = seconds.iter().filter(|s| **s <= bound).count();
            let _ = writeln!(
                out,
                "lethe_phase_duration_seconds_bucket{{phase=\"{phase}\",le=\"{bound}\"}} {within}"
            );
        }
        let _ = writeln!(
            out,
            "lethe_phase_duration_seconds_bucket{{phase=\"{phase}\",le=\"+Inf\"}} {}",
            seconds.len()
        );
        let sum: f64 = seconds.iter().sum();
        let _ = writeln!(
            out,
            "lethe_phase_duration_seconds_sum{{phase=\"{phase}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "lethe_phase_duration_seconds_count{{phase=\"{phase}\"}} {}",
            seconds.len()
        );
    }
    out
}
