//! Totals over every request, for `/metrics`: requests by state, overdue,
//! the event log's counts (batches, retries, lease takeovers), objects
//! deleted and rows masked, and how long each phase took for the requests
//! that are done. Read from the database at each scrape, so they count the
//! work of every worker on every host, not only this process's.

use chrono::{DateTime, Utc};

use super::requests::unfinished_state_names;
use super::{Store, constant_list, on_backend};
use crate::error::Error;
use crate::workflow::state::{Phase, State};

/// One scrape's totals.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Requests per state, every state listed (0 when none).
    pub by_state: Vec<(State, i64)>,
    /// Unfinished requests past their deadline.
    pub overdue: i64,
    /// Events per kind (`batch_committed`, `retry_scheduled`, `taken_over`, ...).
    pub events: Vec<(String, i64)>,
    pub objects_deleted: i64,
    pub rows_masked: i64,
    /// Seconds each phase took, per done request that recorded both ends.
    pub phase_seconds: Vec<(Phase, Vec<f64>)>,
}

type PhaseTimes = (
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// What a scrape reads besides the state counts: counts by event kind,
/// the totals, and the done requests' phase times.
type Readings = (Vec<(String, i64)>, (i64, i64), Vec<PhaseTimes>);

const BY_STATE: &str = "SELECT state, count(*) FROM erasure_requests GROUP BY state";
const BY_EVENT: &str = "SELECT kind, count(*) FROM erasure_events GROUP BY kind";
const TOTALS: &str = "SELECT CAST(coalesce(sum(objects_deleted), 0) AS bigint), \
                             CAST(coalesce(sum(rows_masked), 0) AS bigint) FROM erasure_requests";
const PHASE_TIMES: &str = "SELECT started_at, targets_found_at, s3_cleared_at, db_masked_at, finished_at \
                           FROM erasure_requests WHERE state = 'done'";

impl Store {
    /// Requests per state (every state listed) and the overdue count: what
    /// the queue page shows, without the rest of [`Store::stats`].
    pub async fn state_counts(
        &self,
        overdue_before: DateTime<Utc>,
    ) -> Result<(Vec<(State, i64)>, i64), Error> {
        let unfinished = constant_list(&unfinished_state_names());
        let overdue_sql = format!(
            "SELECT count(*) FROM erasure_requests WHERE state IN ({unfinished}) AND requested_at < $1"
        );
        let (states, overdue): (Vec<(String, i64)>, i64) = on_backend!(self.db(), pool => (
            sqlx::query_as(BY_STATE).fetch_all(pool).await?,
            sqlx::query_scalar(sqlx::AssertSqlSafe(overdue_sql))
                .bind(overdue_before)
                .fetch_one(pool)
                .await?,
        ), (
            sqlx::query_as(BY_STATE).fetch_all(pool).await?,
            sqlx::query_scalar(sqlx::AssertSqlSafe(overdue_sql))
                .bind(super::sqlite::time(overdue_before))
                .fetch_one(pool)
                .await?,
        ));
        let by_state = State::ALL
            .iter()
            .map(|state| {
                let count = states
                    .iter()
                    .find(|(name, _)| name == state.as_str())
                    .map_or(0, |(_, count)| *count);
                (*state, count)
            })
            .collect();
        Ok((by_state, overdue))
    }

    /// The totals now; `overdue_before` is now minus the deadline.
    pub async fn stats(&self, overdue_before: DateTime<Utc>) -> Result<Stats, Error> {
        let (by_state, overdue) = self.state_counts(overdue_before).await?;
        let (events, totals, times): Readings = on_backend!(self.db(), pool => (
            sqlx::query_as(BY_EVENT).fetch_all(pool).await?,
            sqlx::query_as(TOTALS).fetch_one(pool).await?,
            sqlx::query_as(PHASE_TIMES).fetch_all(pool).await?,
        ), (
            sqlx::query_as(BY_EVENT).fetch_all(pool).await?,
            sqlx::query_as(TOTALS).fetch_one(pool).await?,
            sqlx::query_as(PHASE_TIMES).fetch_all(pool).await?,
        ));
        let phases = [
            Phase::FindingTargets,
            Phase::DeletingObjects,
            Phase::MaskingRows,
            Phase::Verifying,
        ];
        let phase_seconds = phases
            .iter()
            .enumerate()
            .map(|(index, phase)| {
                let seconds = times
                    .iter()
                    .filter_map(|row| {
                        let ends = [row.0, row.1, row.2, row.3, row.4];
                        let (start, end) = (ends[index]?, ends[index + 1]?);
                        Some((end - start).num_milliseconds().max(0) as f64 / 1000.0)
                    })
                    .collect();
                (*phase, seconds)
            })
            .collect();
        Ok(Stats {
            by_state,
            overdue,
            events,
            objects_deleted: totals.0,
            rows_masked: totals.1,
            phase_seconds,
        })
    }
}
