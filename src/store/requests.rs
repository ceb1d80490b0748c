//! Erasure requests: submission, claims, checkpoints, transitions, failure,
//! retry and cancel. SQL for the `erasure_requests` row lives here and only
//! here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::lease::Lease;
use super::{Store, active_state_names, events};
use crate::error::Error;
use crate::retry::{Decision, RetryPolicy};
use crate::workflow::state::State;

/// What a submission produced.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    /// The id of this submission's request row.
    pub id: Uuid,
    /// When the subject already had an active request: that request, which
    /// this submission was folded into.
    pub coalesced_into: Option<Uuid>,
    /// True when the idempotency key named an earlier submission, which is
    /// returned instead of a new one.
    pub replayed: bool,
    /// Earlier erasures of the same member that are done (matched by the
    /// keyed hash that replaced their key), newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previously_done: Vec<Uuid>,
}

/// A request as the store holds it, without the subject key.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RequestRecord {
    pub id: Uuid,
    pub idempotency_key: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: State,
    #[sqlx(try_from = "Option<String>")]
    pub resume_state: OptionalState,
    pub coalesced_into: Option<Uuid>,
    pub batch_done: i32,
    pub batch_total: Option<i32>,
    pub rows_found: i64,
    pub objects_found: i64,
    pub objects_retained: i64,
    pub objects_deleted: i64,
    /// Tagged for expiry instead of deleted (tag-and-expire buckets).
    pub objects_scheduled: i64,
    /// Retained: S3 refused them for good (object lock, legal hold, access denied).
    pub objects_locked: i64,
    pub rows_masked: i64,
    pub anomaly_count: i32,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub targets_found_at: Option<DateTime<Utc>>,
    pub s3_started_at: Option<DateTime<Utc>>,
    pub s3_cleared_at: Option<DateTime<Utc>>,
    pub db_masked_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Later submissions folded into this one.
    pub coalesced_count: i64,
    /// The raw subject key is gone; only its keyed hash is kept.
    pub subject_minimised: bool,
    /// When it should be done by (submission + `overdue_after`); set by
    /// the engine, not stored.
    #[sqlx(skip)]
    pub due_by: Option<DateTime<Utc>>,
    /// Not done (nor cancelled or coalesced) past `due_by`.
    #[sqlx(skip)]
    pub overdue: bool,
}

/// A nullable state column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OptionalState(pub Option<State>);

impl TryFrom<Option<String>> for OptionalState {
    type Error = crate::workflow::state::UnknownState;
    fn try_from(value: Option<String>) -> Result<Self, Self::Error> {
        value.map(|s| s.parse()).transpose().map(OptionalState)
    }
}

const RECORD_COLUMNS: &str = "r.id, r.idempotency_key, r.state, r.resume_state, r.coalesced_into, \
     r.batch_done, r.batch_total, r.rows_found, r.objects_found, r.objects_retained, \
     r.objects_deleted, r.objects_scheduled, r.objects_locked, r.rows_masked, r.anomaly_count, \
     r.attempts, r.next_attempt_at, \
     r.last_error, r.lease_owner, r.lease_expires_at, r.requested_at, r.started_at, \
     r.targets_found_at, r.s3_started_at, r.s3_cleared_at, r.db_masked_at, r.finished_at, \
     r.updated_at, \
     (SELECT count(*) FROM erasure_requests c WHERE c.coalesced_into = r.id) AS coalesced_count, \
     (r.subject_key IS NULL) AS subject_minimised";

/// A request's progress counters, read after each batch for its rates.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct Counters {
    pub rows_found: i64,
    pub objects_found: i64,
    pub objects_retained: i64,
    pub objects_deleted: i64,
    pub rows_masked: i64,
    pub anomaly_count: i32,
}

/// A claimed request: the lease, and where the request stands.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub lease: Lease,
    pub state: State,
    pub attempts: i32,
    /// The previous holder, when this claim took over an expired lease.
    pub took_over_from: Option<String>,
}

/// Filters for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<State>,
    pub limit: Option<i64>,
    /// Only unfinished requests (active or failed) submitted before this
    /// instant: the overdue ones, when it is now minus the deadline.
    pub overdue_before: Option<DateTime<Utc>>,
}

impl Store {
    /// Submits an erasure for `subject`. A duplicate for a subject with an
    /// active request is coalesced by the database trigger, whichever way it
    /// arrives (this call or a bare INSERT).
    pub async fn submit(
        &self,
        subject: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Submission, Error> {
        self.submit_matching(subject, idempotency_key, None).await
    }

    /// [`Store::submit`], also matching the member's finished requests by
    /// `subject_hash`, the keyed hash that replaced their raw key at Done:
    /// an idempotency key replayed after Done is still recognised as the
    /// same member's, and earlier erasures are reported.
    pub async fn submit_matching(
        &self,
        subject: &str,
        idempotency_key: Option<&str>,
        subject_hash: Option<&str>,
    ) -> Result<Submission, Error> {
        if subject.trim().is_empty() {
            return Err(Error::InvalidInput("the subject key is empty".into()));
        }
        let inserted: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "INSERT INTO erasure_requests (subject_key, idempotency_key) VALUES ($1, $2) \
             ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING id, coalesced_into",
        )
        .bind(subject)
        .bind(idempotency_key)
        .fetch_optional(&self.pool)
        .await?;
        let previously_done =
            match subject_hash {
                Some(hash) => sqlx::query_scalar(
                    "SELECT id FROM erasure_requests WHERE subject_hash = $1 AND state = 'done' \
                      ORDER BY finished_at DESC",
                )
                .bind(hash)
                .fetch_all(&self.pool)
                .await?,
                None => Vec::new(),
            };
        if let Some((id, coalesced_into)) = inserted {
            return Ok(Submission {
                id,
                coalesced_into,
                replayed: false,
                previously_done,
            });
        }
        // The idempotency key exists: the same submission again. It must be
        // for the same subject, or the caller reused a key by mistake.
        let key = idempotency_key.expect("a conflict needs an idempotency key");
        let (id, coalesced_into, same_subject): (Uuid, Option<Uuid>, bool) = sqlx::query_as(
            "SELECT id, coalesced_into, \
                    (subject_key IS NOT DISTINCT FROM $2 OR coalesce(subject_hash = $3, false)) \
               FROM erasure_requests WHERE idempotency_key = $1",
        )
        .bind(key)
        .bind(subject)
        .bind(subject_hash)
        .fetch_one(&self.pool)
        .await?;
        if !same_subject {
            return Err(Error::InvalidInput(format!(
                "idempotency key {key:?} was already used for a different subject (request {id})"
            )));
        }
        Ok(Submission {
            id,
            coalesced_into,
            replayed: true,
            previously_done: previously_done
                .into_iter()
                .filter(|done| *done != id)
                .collect(),
        })
    }

    /// One request.
    pub async fn get(&self, id: Uuid) -> Result<RequestRecord, Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM erasure_requests r WHERE r.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound(id))
    }

    /// Every request for a subject, newest first: by its raw key, and by
    /// `subject_hash` (the keyed hash that replaces the key at Done) when
    /// given.
    pub async fn for_subject(
        &self,
        subject: &str,
        subject_hash: Option<&str>,
    ) -> Result<Vec<RequestRecord>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM erasure_requests r \
              WHERE r.subject_key = $1 OR ($2::text IS NOT NULL AND r.subject_hash = $2) \
             ORDER BY r.requested_at DESC"
        )))
        .bind(subject)
        .bind(subject_hash)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Requests, newest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RequestRecord>, Error> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM erasure_requests r \
              WHERE ($1::text IS NULL OR r.state = $1) \
                AND ($3::timestamptz IS NULL OR (r.state = ANY($4) AND r.requested_at < $3)) \
              ORDER BY r.requested_at DESC LIMIT $2"
        )))
        .bind(filter.state.map(State::as_str))
        .bind(filter.limit.unwrap_or(1000))
        .bind(filter.overdue_before)
        .bind(unfinished_state_names())
        .fetch_all(&self.pool)
        .await?)
    }

    /// A request's progress counters.
    pub async fn counters(&self, id: Uuid) -> Result<Counters, Error> {
        Ok(sqlx::query_as(
            "SELECT rows_found, objects_found, objects_retained, objects_deleted, rows_masked, \
                    anomaly_count FROM erasure_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The subject key of a request, for the worker only (never logged).
    pub(crate) async fn subject_of(&self, id: Uuid) -> Result<String, Error> {
        let subject: Option<String> =
            sqlx::query_scalar("SELECT subject_key FROM erasure_requests WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        subject.ok_or_else(|| Error::Setup(format!("request {id} has no subject key left")))
    }

    /// Claims the next due request whose lease is free or expired, skipping
    /// rows another worker is claiming this instant (SKIP LOCKED).
    pub async fn claim(&self, owner: &str, ttl: Duration) -> Result<Option<Claimed>, Error> {
        let mut tx = self.pool.begin().await?;
        let claimed: Option<(Uuid, i64, String, i32, Option<String>)> = sqlx::query_as(
            "WITH candidate AS ( \
                 SELECT id, lease_owner AS previous_owner FROM erasure_requests \
                  WHERE state = ANY($3) AND next_attempt_at <= now() \
                    AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
                  ORDER BY next_attempt_at, requested_at \
                  LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE erasure_requests r \
                SET lease_owner = $1, \
                    lease_expires_at = now() + make_interval(secs => $2), \
                    lease_epoch = r.lease_epoch + 1, \
                    started_at = coalesce(r.started_at, now()), \
                    attempts = r.attempts + CASE WHEN candidate.previous_owner IS NULL THEN 0 ELSE 1 END, \
                    updated_at = now() \
               FROM candidate WHERE r.id = candidate.id \
             RETURNING r.id, r.lease_epoch, r.state, r.attempts, candidate.previous_owner",
        )
        .bind(owner)
        .bind(ttl.as_secs_f64())
        .bind(active_state_names())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((request_id, epoch, state, attempts, took_over_from)) = claimed else {
            tx.rollback().await?;
            return Ok(None);
        };
        let lease = Lease {
            request_id,
            epoch,
            owner: owner.to_owned(),
            ttl,
        };
        let kind = if took_over_from.is_some() {
            "taken_over"
        } else {
            "claimed"
        };
        events::record(&mut tx, &lease, kind, None, None, took_over_from.as_deref()).await?;
        tx.commit().await?;
        Ok(Some(Claimed {
            lease,
            state: state.parse()?,
            attempts,
            took_over_from,
        }))
    }

    /// When the earliest waiting request becomes due, for an idle worker's sleep.
    pub async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT min(greatest(next_attempt_at, coalesce(lease_expires_at, next_attempt_at))) \
               FROM erasure_requests WHERE state = ANY($1)",
        )
        .bind(active_state_names())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records a failed attempt and decides, under the request's row lock,
    /// whether to back off (still active, lease released, next attempt time
    /// stored) or park it in Failed, remembering where to resume. Returns the
    /// decision; `Ok(None)` when the lease was already lost, so there is
    /// nothing to record.
    pub async fn record_failure(
        &self,
        lease: &Lease,
        state: State,
        message: &str,
        transient: bool,
        policy: &RetryPolicy,
    ) -> Result<Option<Decision>, Error> {
        let mut tx = self.pool.begin().await?;
        match lease.fence(&mut tx, state).await {
            Ok(()) => {}
            // Someone else owns it now, or it was cancelled: their record wins.
            Err(Error::Fenced(_) | Error::StateChanged { .. }) => return Ok(None),
            Err(err) => return Err(err),
        }
        let attempts: i32 =
            sqlx::query_scalar("SELECT attempts FROM erasure_requests WHERE id = $1")
                .bind(lease.request_id)
                .fetch_one(&mut *tx)
                .await?;
        let decision = policy.decide(attempts.max(0) as u32 + 1, transient);
        match decision {
            Decision::RetryAfter(delay) => {
                sqlx::query(
                    "UPDATE erasure_requests SET attempts = attempts + 1, last_error = $2, \
                            next_attempt_at = now() + make_interval(secs => $3), \
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
                      WHERE id = $1",
                )
                .bind(lease.request_id)
                .bind(message)
                .bind(delay.as_secs_f64())
                .execute(&mut *tx)
                .await?;
                events::record(
                    &mut tx,
                    lease,
                    "retry_scheduled",
                    state.phase(),
                    None,
                    Some(message),
                )
                .await?;
            }
            Decision::GiveUp => {
                state.check_transition(State::Failed)?;
                sqlx::query(
                    "UPDATE erasure_requests SET attempts = attempts + 1, last_error = $2, \
                            state = 'failed', resume_state = $3, \
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
                      WHERE id = $1",
                )
                .bind(lease.request_id)
                .bind(message)
                .bind(state.as_str())
                .execute(&mut *tx)
                .await?;
                events::record(&mut tx, lease, "failed", state.phase(), None, Some(message))
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(decision))
    }

    /// Resumes a failed request from its checkpoint.
    pub async fn retry(&self, id: Uuid) -> Result<RequestRecord, Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT state, resume_state FROM erasure_requests WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let (state, resume) = row.ok_or(Error::NotFound(id))?;
        let state: State = state.parse()?;
        if state != State::Failed {
            return Err(Error::Refused {
                id,
                reason: format!("only a failed request can be retried; this one is {state}"),
            });
        }
        let resume: State = resume
            .ok_or_else(|| Error::Setup(format!("request {id} is failed without a resume state")))?
            .parse()?;
        State::Failed.check_transition(resume)?;
        sqlx::query(
            "UPDATE erasure_requests SET state = $2, resume_state = NULL, attempts = 0, \
                    next_attempt_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(resume.as_str())
        .execute(&mut *tx)
        .await?;
        events::record_operator(&mut tx, id, "retried", Some(resume.as_str())).await?;
        sqlx::query("SELECT pg_notify('lethe_erasure_requests', $1)")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get(id).await
    }

    /// Cancels a request that has not started deleting objects. Locks the
    /// row, so it cannot interleave with a worker starting S3 deletion: one
    /// of the two sees the other's write.
    pub async fn cancel(&self, id: Uuid) -> Result<RequestRecord, Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT state, s3_started_at FROM erasure_requests WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let (state, s3_started_at) = row.ok_or(Error::NotFound(id))?;
        let state: State = state.parse()?;
        if let Some(started) = s3_started_at {
            return Err(Error::Refused {
                id,
                reason: format!(
                    "S3 deletion started at {started}; an erasure that has deleted objects must finish \
                     (its rows would point at files that no longer exist)"
                ),
            });
        }
        state
            .check_transition(State::Cancelled)
            .map_err(|_| Error::Refused {
                id,
                reason: format!("a request in state {state} cannot be cancelled"),
            })?;
        sqlx::query(
            "UPDATE erasure_requests SET state = 'cancelled', resume_state = NULL, \
                    lease_owner = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now() \
              WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        events::record_operator(&mut tx, id, "cancelled", Some(state.as_str())).await?;
        tx.commit().await?;
        self.get(id).await
    }
}

/// States of a request that is not finished: active, or failed and waiting
/// for an operator. These can be overdue.
pub(crate) fn unfinished_state_names() -> Vec<&'static str> {
    let mut names = active_state_names();
    names.push(State::Failed.as_str());
    names
}

/// Checkpoint writes a worker makes inside a batch's transaction, after
/// [`Lease::fence`].
pub mod checkpoint {
    use super::*;

    /// Counter increments a batch contributes.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Progress {
        pub rows_found: i64,
        pub objects_found: i64,
        pub objects_retained: i64,
        pub objects_deleted: i64,
        /// Tagged for expiry (tag-and-expire buckets).
        pub objects_scheduled: i64,
        /// Retained because S3 refused them for good.
        pub objects_locked: i64,
        pub rows_masked: i64,
        pub anomalies: i32,
    }

    /// Records one completed batch: cursor, batch count, counters, and a
    /// reset of the consecutive-failure count.
    pub async fn batch_done(
        conn: &mut PgConnection,
        lease: &Lease,
        cursor: &serde_json::Value,
        progress: Progress,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE erasure_requests SET phase_cursor = $2, batch_done = batch_done + 1, \
                    rows_found = rows_found + $3, objects_found = objects_found + $4, \
                    objects_retained = objects_retained + $5, objects_deleted = objects_deleted + $6, \
                    rows_masked = rows_masked + $7, anomaly_count = anomaly_count + $8, \
                    objects_scheduled = objects_scheduled + $9, objects_locked = objects_locked + $10, \
                    attempts = 0, updated_at = now() \
              WHERE id = $1",
        )
        .bind(lease.request_id)
        .bind(cursor)
        .bind(progress.rows_found)
        .bind(progress.objects_found)
        .bind(progress.objects_retained)
        .bind(progress.objects_deleted)
        .bind(progress.rows_masked)
        .bind(progress.anomalies)
        .bind(progress.objects_scheduled)
        .bind(progress.objects_locked)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records how many batches the current phase has, once, when it starts.
    /// Starting S3 deletion also stamps `s3_started_at`, the point after which
    /// the request can no longer be cancelled.
    pub async fn phase_started(
        conn: &mut PgConnection,
        lease: &Lease,
        state: State,
        total: i32,
    ) -> Result<(), Error> {
        sqlx::query(
            "UPDATE erasure_requests SET batch_total = $2, \
                    s3_started_at = CASE WHEN $3 THEN coalesce(s3_started_at, now()) ELSE s3_started_at END, \
                    updated_at = now() WHERE id = $1",
        )
        .bind(lease.request_id)
        .bind(total)
        .bind(state == State::TargetsFound)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Moves to the next milestone and resets the phase checkpoint.
    pub async fn advance(
        conn: &mut PgConnection,
        lease: &Lease,
        from: State,
        to: State,
    ) -> Result<(), Error> {
        from.check_transition(to)?;
        let stamp = match to {
            State::TargetsFound => "targets_found_at",
            State::S3Cleared => "s3_cleared_at",
            State::DbMasked => "db_masked_at",
            State::Done => "finished_at",
            other => {
                return Err(Error::Setup(format!(
                    "advance to {other} is not a milestone"
                )));
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE erasure_requests SET state = $2, {stamp} = now(), batch_done = 0, batch_total = NULL, \
                    phase_cursor = NULL, attempts = 0, updated_at = now() \
              WHERE id = $1"
        )))
        .bind(lease.request_id)
        .bind(to.as_str())
        .execute(&mut *conn)
        .await?;
        events::record(
            conn,
            lease,
            "advanced",
            from.phase(),
            None,
            Some(to.as_str()),
        )
        .await?;
        Ok(())
    }
}
