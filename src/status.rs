//! What `status` and `list` show: a request's state, the phase in progress
//! and its batch k of n, counts, attempts, the last error and timestamps,
//! whether it is overdue, and whether the off-peak window is open.
//! Never the subject key: it is not even read for these views.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::schedule::WindowState;
use crate::store::RequestRecord;
use crate::store::manifest::Anomaly;
use crate::workflow::state::State;

/// A request with what an operator needs to judge it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestStatus {
    #[serde(flatten)]
    pub record: RequestRecord,
    /// For a coalesced duplicate: the request that does the work.
    pub coalesced_into: Option<Box<RequestRecord>>,
    pub anomalies: Vec<Anomaly>,
    /// The off-peak windows now; `None` when none are configured (workers
    /// run at any time).
    pub window: Option<WindowState>,
}

/// Sets `due_by`, `overdue` and `finished_late`: a request not finished
/// `overdue_after` after its submission is overdue. Finished means done,
/// cancelled, or coalesced into another request (which carries the
/// deadline). A request done after its deadline stays marked as late.
pub fn mark_due(record: &mut RequestRecord, now: DateTime<Utc>, overdue_after: Duration) {
    let due_by = record.requested_at + overdue_after;
    record.due_by = Some(due_by);
    let unfinished = record.state.is_active() || record.state == State::Failed;
    record.overdue = unfinished && now >= due_by;
    record.finished_late =
        record.state == State::Done && record.finished_at.is_some_and(|finished| finished > due_by);
}

/// The line `status` and `list` print about the windows.
pub fn window_line(window: Option<&WindowState>) -> String {
    match window {
        Some(state) => format!("off-peak window {state}"),
        None => "off-peak window: none configured, workers run at any time".to_owned(),
    }
}

impl RequestStatus {
    /// The state that counts: a duplicate follows the request it joined.
    pub fn effective_state(&self) -> State {
        match &self.coalesced_into {
            Some(target) => target.state,
            None => self.record.state,
        }
    }
}

/// One line for the state and the work in progress, e.g.
/// `s3_cleared, masking_rows batch 3 of 12`.
pub fn progress_line(record: &RequestRecord) -> String {
    let state = record.state;
    match (state, state.phase()) {
        (State::Done, _) if record.anomaly_count > 0 => {
            format!("done with {} anomalies", record.anomaly_count)
        }
        (State::Failed, _) => match record.resume_state.0 {
            Some(resume) => format!("failed (retry resumes at {resume})"),
            None => "failed".to_owned(),
        },
        (_, Some(phase)) => match record.batch_total {
            Some(total) => format!("{state}, {phase} batch {} of {total}", record.batch_done),
            None => format!("{state}, {phase} (not started)"),
        },
        _ => state.to_string(),
    }
}

fn time(value: Option<DateTime<Utc>>) -> String {
    value
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.record;
        writeln!(f, "request      {}", r.id)?;
        writeln!(f, "state        {}", progress_line(r))?;
        if let Some(target) = &self.coalesced_into {
            writeln!(
                f,
                "coalesced    into {} (a duplicate submission; that request does the work)",
                target.id
            )?;
            writeln!(f, "  its state  {}", progress_line(target))?;
        }
        if r.coalesced_count > 0 {
            writeln!(
                f,
                "duplicates   {} later submission(s) folded into this one",
                r.coalesced_count
            )?;
        }
        if let Some(key) = &r.idempotency_key {
            writeln!(f, "reference    {key}")?;
        }
        if r.subject_minimised {
            writeln!(
                f,
                "member       kept only as a keyed hash (the erasure is done)"
            )?;
        }
        writeln!(
            f,
            "found        {} rows, {} objects to delete, {} retained (protected)",
            r.rows_found, r.objects_found, r.objects_retained
        )?;
        let mut progress = format!("{} objects deleted", r.objects_deleted);
        if r.objects_scheduled > 0 {
            progress.push_str(&format!(", {} scheduled for expiry", r.objects_scheduled));
        }
        if r.objects_locked > 0 {
            progress.push_str(&format!(
                ", {} retained (S3 refused: lock or access)",
                r.objects_locked
            ));
        }
        writeln!(f, "progress     {progress}, {} rows masked", r.rows_masked)?;
        writeln!(f, "anomalies    {}", r.anomaly_count)?;
        for anomaly in self.anomalies.iter().take(20) {
            let place = match (&anomaly.table_name, &anomaly.row_id) {
                (Some(table), Some(row)) => format!(" {table} row {row}"),
                (Some(table), None) => format!(" {table}"),
                _ => String::new(),
            };
            writeln!(f, "  - {}{place}: {}", anomaly.kind, anomaly.detail)?;
        }
        if self.anomalies.len() > 20 {
            writeln!(f, "  ... {} more (use --json)", self.anomalies.len() - 20)?;
        }
        let next = if r.state.is_active() && r.attempts > 0 {
            format!(", next attempt {}", time(Some(r.next_attempt_at)))
        } else {
            String::new()
        };
        writeln!(f, "attempts     {}{next}", r.attempts)?;
        writeln!(f, "last error   {}", r.last_error.as_deref().unwrap_or("-"))?;
        match (&r.lease_owner, r.lease_expires_at) {
            (Some(owner), Some(until)) => {
                writeln!(f, "lease        {owner} until {}", time(Some(until)))?
            }
            _ => writeln!(f, "lease        -")?,
        }
        writeln!(f, "requested    {}", time(Some(r.requested_at)))?;
        if let Some(due_by) = r.due_by {
            let flag = if r.overdue {
                "  OVERDUE: not done by its deadline"
            } else if r.finished_late {
                "  LATE: done after its deadline"
            } else {
                ""
            };
            writeln!(f, "due by       {}{flag}", time(Some(due_by)))?;
        }
        writeln!(f, "started      {}", time(r.started_at))?;
        writeln!(f, "targets      {}", time(r.targets_found_at))?;
        writeln!(f, "s3 started   {}", time(r.s3_started_at))?;
        writeln!(f, "s3 cleared   {}", time(r.s3_cleared_at))?;
        writeln!(f, "db masked    {}", time(r.db_masked_at))?;
        writeln!(f, "finished     {}", time(r.finished_at))?;
        write!(f, "window       {}", window_line(self.window.as_ref()))
    }
}

/// A table of requests for `list`.
pub fn list_table(records: &[RequestRecord]) -> String {
    let mut out = format!(
        "{:<36}  {:<44}  {:>8}  {:>8}  {:>9}  {:<20}  {:<7}\n",
        "REQUEST", "STATE", "OBJECTS", "ROWS", "ANOMALIES", "REQUESTED", "OVERDUE"
    );
    for r in records {
        out.push_str(&format!(
            "{:<36}  {:<44}  {:>8}  {:>8}  {:>9}  {:<20}  {:<7}\n",
            r.id,
            progress_line(r),
            r.objects_deleted,
            r.rows_masked,
            r.anomaly_count,
            r.requested_at.format("%Y-%m-%d %H:%M:%S"),
            overdue_cell(r)
        ));
    }
    if records.is_empty() {
        out.push_str("(no requests)\n");
    }
    out
}

/// The OVERDUE column: `yes` while late and unfinished, `late` once done
/// after the deadline.
fn overdue_cell(record: &RequestRecord) -> &'static str {
    if record.overdue {
        "yes"
    } else if record.finished_late {
        "late"
    } else {
        "-"
    }
}
