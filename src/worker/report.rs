//! The worker's line per batch: the request id (never the subject), the
//! phase, batch k of n, what the batch did (counted from the request's
//! counters before and after it), how long it took and its rate. The same
//! figures feed the live status line ([`super::progress`]).

use std::time::Duration;

use super::progress;
use crate::store::requests::Counters;
use crate::workflow::state::Phase;

/// One batch's counts and rates, for its log line and the live progress.
pub(super) struct BatchReport {
    pub phase: Phase,
    pub batch: i32,
    pub total: Option<i32>,
    /// The whole step, rate-limit waits included: the rate the database
    /// and S3 actually saw.
    pub elapsed: Duration,
    pub before: Counters,
    pub after: Counters,
}

impl BatchReport {
    /// The items this phase counts, their number in this batch, per second.
    fn items(&self) -> Option<(&'static str, i64, f64)> {
        let (unit, n) = match self.phase {
            Phase::FindingTargets => ("rows found", self.after.rows_found - self.before.rows_found),
            Phase::DeletingObjects => (
                "objects deleted",
                self.after.objects_deleted - self.before.objects_deleted,
            ),
            Phase::MaskingRows => (
                "rows masked",
                self.after.rows_masked - self.before.rows_masked,
            ),
            Phase::Verifying => return None,
        };
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        Some((unit, n, (n as f64 / secs * 10.0).round() / 10.0))
    }

    /// One line per batch, naming the request id (never the subject).
    pub fn log(&self) {
        let (phase, batch) = (self.phase, self.batch);
        let total = self.total.unwrap_or(0);
        let elapsed_ms = self.elapsed.as_millis() as u64;
        let (a, b) = (&self.after, &self.before);
        match (self.phase, self.items()) {
            (Phase::FindingTargets, Some((_, rows, rows_per_sec))) => tracing::info!(
                %phase, batch, total, rows, objects = a.objects_found - b.objects_found,
                retained = a.objects_retained - b.objects_retained,
                anomalies = a.anomaly_count - b.anomaly_count, elapsed_ms, rows_per_sec,
                "batch committed"
            ),
            (Phase::DeletingObjects, Some((_, objects, objects_per_sec))) => tracing::info!(
                %phase, batch, total, objects, elapsed_ms, objects_per_sec,
                "batch committed"
            ),
            (Phase::MaskingRows, Some((_, rows, rows_per_sec))) => tracing::info!(
                %phase, batch, total, rows, elapsed_ms, rows_per_sec,
                "batch committed"
            ),
            _ => tracing::info!(%phase, batch, total, elapsed_ms, "batch committed"),
        }
    }

    pub fn progress(&self) -> progress::Entry {
        progress::Entry {
            phase: self.phase,
            batch: self.batch,
            total: self.total,
            rate: self.items().map(|(unit, _, per_sec)| (per_sec, unit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_counted_from_the_counters_and_timed_with_its_waits() {
        let before = Counters {
            objects_deleted: 1000,
            ..Counters::default()
        };
        let report = BatchReport {
            phase: Phase::DeletingObjects,
            batch: 2,
            total: Some(5),
            elapsed: Duration::from_millis(5_000),
            before,
            after: Counters {
                objects_deleted: 2000,
                ..before
            },
        };
        assert_eq!(report.items(), Some(("objects deleted", 1000, 200.0)));
        let entry = report.progress();
        assert_eq!((entry.batch, entry.total), (2, Some(5)));
        assert_eq!(entry.rate, Some((200.0, "objects deleted")));
        let verifying = BatchReport {
            phase: Phase::Verifying,
            ..report
        };
        assert_eq!(verifying.items(), None);
    }
}
