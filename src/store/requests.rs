//! Erasure requests: submission, claims, checkpoints, transitions, failure,
//! retry and cancel. What decides (the retry policy, legal transitions,
//! cancel's rule, who may write) is here, once; the statements on the
//! `erasure_requests` row are in `postgres/requests.rs` and
//! `sqlite/requests.rs`, and only there.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::lease::Lease;
use super::{
    Backed, Store, Tx, active_state_names, events, on_backend, on_either_backend, postgres, sqlite,
};
use crate::error::Error;
use crate::retry::{Decision, RetryPolicy, Verdict};
use crate::store::events::EventKind;
use crate::workflow::state::{Phase, State};

pub use super::list_filter::{ListCursor, ListFilter};
pub use super::submission::{Provenance, Submission};

/// A request as the store holds it, without the subject key.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "serve", derive(utoipa::ToSchema))]
pub struct RequestRecord {
    pub id: Uuid,
    pub idempotency_key: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: State,
    /// A failed request's state to resume from.
    #[sqlx(try_from = "Option<String>")]
    #[cfg_attr(feature = "serve", schema(value_type = Option<State>))]
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
    /// The API token (its name) that submitted the request over HTTP.
    pub submitted_by: Option<String>,
    /// The submitter's own reference (a ticket, a withdrawal id).
    pub external_ref: Option<String>,
    /// When it should be done by (submission + `overdue_after`); set by
    /// the engine, not stored.
    #[sqlx(skip)]
    pub due_by: Option<DateTime<Utc>>,
    /// Not done (nor cancelled or coalesced) past `due_by`.
    #[sqlx(skip)]
    pub overdue: bool,
    /// Done, but after `due_by`: no longer overdue, still worth an
    /// auditor's question.
    #[sqlx(skip)]
    pub finished_late: bool,
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

/// The columns of a [`RequestRecord`], from `erasure_requests r` (the same
/// SQL on both backends).
pub(super) const RECORD_COLUMNS: &str = "r.id, r.idempotency_key, r.state, r.resume_state, r.coalesced_into, \
     r.batch_done, r.batch_total, r.rows_found, r.objects_found, r.objects_retained, \
     r.objects_deleted, r.objects_scheduled, r.objects_locked, r.rows_masked, r.anomaly_count, \
     r.attempts, r.next_attempt_at, \
     r.last_error, r.lease_owner, r.lease_expires_at, r.requested_at, r.started_at, \
     r.targets_found_at, r.s3_started_at, r.s3_cleared_at, r.db_masked_at, r.finished_at, \
     r.updated_at, \
     (SELECT count(*) FROM erasure_requests c WHERE c.coalesced_into = r.id) AS coalesced_count, \
     (r.subject_key IS NULL) AS subject_minimised, r.submitted_by, r.external_ref";

/// [`Counters`]' columns, in its order: what [`Store::counters`] reads and
/// what a batch's commit returns (`checkpoint::batch_done`).
macro_rules! counter_columns {
    () => {
        "rows_found, objects_found, objects_retained, objects_deleted, rows_masked, anomaly_count"
    };
}
pub(crate) use counter_columns;

/// A request's progress counters, as each batch's commit leaves them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
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
    /// What the worker goes on from, when the claim read it in the same
    /// statement (PostgreSQL); otherwise [`Store::resumption`] reads it.
    pub(crate) resumption: Option<Resumption>,
}

/// A request's checkpoint as stored: batches done, batches known, cursor.
#[derive(Debug, Clone, Default)]
pub struct StoredCheckpoint {
    pub batch_done: i32,
    pub batch_total: Option<i32>,
    pub cursor: Option<serde_json::Value>,
}

impl Store {
    /// Submits an erasure for `subject`. A duplicate for a subject with an
    /// active request is coalesced into it, whichever way it arrives (this
    /// call or a bare INSERT, which the database's trigger folds).
    pub async fn submit(
        &self,
        subject: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Submission, Error> {
        let provenance = Provenance {
            idempotency_key,
            ..Provenance::default()
        };
        self.submit_matching(subject, provenance, None).await
    }

    /// [`Store::submit`], also matching the member's finished requests by
    /// `subject_hash`, the keyed hash that replaced their raw key at Done:
    /// an idempotency key replayed after Done is still recognised as the
    /// same member's, and earlier erasures are reported.
    pub async fn submit_matching(
        &self,
        subject: &str,
        provenance: Provenance<'_>,
        subject_hash: Option<&str>,
    ) -> Result<Submission, Error> {
        if subject.trim().is_empty() {
            return Err(Error::InvalidInput("the subject key is empty".into()));
        }
        let submission = on_backend!(self.db(), pool =>
            postgres::requests::submit(pool, subject, provenance, subject_hash).await?,
            sqlite::requests::submit(pool, subject, provenance, subject_hash).await?);
        if !submission.replayed && submission.coalesced_into.is_none() {
            self.wake_workers();
        }
        Ok(submission)
    }

    /// One request.
    pub async fn get(&self, id: Uuid) -> Result<RequestRecord, Error> {
        on_backend!(self.db(), pool =>
            postgres::requests::get(pool, id).await?,
            sqlite::requests::get(pool, id).await?)
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
        Ok(on_backend!(self.db(), pool =>
            postgres::requests::for_subject(pool, subject, subject_hash).await?,
            sqlite::requests::for_subject(pool, subject, subject_hash).await?))
    }

    /// Requests, newest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RequestRecord>, Error> {
        Ok(on_backend!(self.db(), pool =>
            postgres::requests::list(pool, filter).await?,
            sqlite::requests::list(pool, filter).await?))
    }

    /// A request's progress counters.
    pub async fn counters(&self, id: Uuid) -> Result<Counters, Error> {
        Ok(on_either_backend!(self.db(), id, |pool, stored_id| {
            sqlx::query_as(concat!(
                "SELECT ",
                counter_columns!(),
                " FROM erasure_requests WHERE id = $1"
            ))
            .bind(stored_id)
            .fetch_one(pool)
            .await?
        }))
    }

    /// A request's checkpoint for the phase in progress.
    pub async fn checkpoint(&self, id: Uuid) -> Result<StoredCheckpoint, Error> {
        Ok(on_backend!(self.db(), pool =>
            postgres::requests::checkpoint(pool, id).await?,
            sqlite::requests::checkpoint(pool, id).await?))
    }

    /// What a worker needs to go on with a request it has claimed, read in
    /// one statement: the member's key (for the worker only, never logged),
    /// the counters and the checkpoint.
    pub(crate) async fn resumption(&self, id: Uuid) -> Result<Resumption, Error> {
        let row: ResumptionRow = on_either_backend!(self.db(), id, |pool, stored_id| {
            sqlx::query_as(concat!(
                "SELECT ",
                resumption_columns!(),
                " FROM erasure_requests WHERE id = $1"
            ))
            .bind(stored_id)
            .fetch_one(pool)
            .await?
        });
        row.into_resumption(id)
    }

    /// Claims the next due request whose lease is free or expired. On
    /// PostgreSQL, rows another worker is claiming this instant are skipped
    /// (SKIP LOCKED); on SQLite, claims are serialised by the write lock.
    pub async fn claim(&self, owner: &str, ttl: Duration) -> Result<Option<Claimed>, Error> {
        let leased = match self.db() {
            // One statement: the lease and its event.
            Backed::Postgres(pool) => postgres::requests::lease_next(pool, owner, ttl).await?,
            Backed::Sqlite(_) => self.claim_in_transaction(owner, ttl).await?,
        };
        let Some(leased) = leased else {
            return Ok(None);
        };
        // A row that does not read (no key left, a cursor that does not
        // parse) is read again by the worker, whose failure path records why.
        let resumption = leased
            .resumption
            .and_then(|row| row.into_resumption(leased.id).ok());
        Ok(Some(Claimed {
            lease: Lease {
                request_id: leased.id,
                epoch: leased.epoch,
                owner: owner.to_owned(),
                ttl,
            },
            state: leased.state.parse()?,
            attempts: leased.attempts,
            took_over_from: leased.previous_owner,
            resumption,
        }))
    }

    /// The claim as a transaction of two statements (SQLite): the lease,
    /// then its event.
    async fn claim_in_transaction(
        &self,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Leased>, Error> {
        let mut tx = self.begin().await?;
        let leased = match tx.conn() {
            Backed::Sqlite(conn) => sqlite::requests::lease_next(conn, owner, ttl).await?,
            Backed::Postgres(_) => {
                return Err(Error::Invariant(
                    "a PostgreSQL claim is one statement (postgres::requests::lease_next)".into(),
                ));
            }
        };
        let Some(leased) = leased else {
            tx.rollback().await?;
            return Ok(None);
        };
        let lease = Lease {
            request_id: leased.id,
            epoch: leased.epoch,
            owner: owner.to_owned(),
            ttl,
        };
        let kind = if leased.previous_owner.is_some() {
            EventKind::TakenOver
        } else {
            EventKind::Claimed
        };
        events::record(
            &mut tx,
            &lease,
            kind,
            None,
            None,
            leased.previous_owner.as_deref(),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(leased))
    }

    /// How long until the earliest waiting request becomes due (zero when
    /// one is due now), for an idle worker's sleep; `None` when none waits.
    /// Measured by the database's clock alone, the clock that stamps due
    /// times and leases: never compared with the host's.
    pub async fn next_due_in(&self) -> Result<Option<Duration>, Error> {
        let seconds = on_backend!(self.db(), pool =>
            postgres::requests::next_due_in(pool).await?,
            sqlite::requests::next_due_in(pool).await?);
        Ok(seconds.map(|s| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)))
    }

    /// Records a failed attempt and decides, under the request's row lock
    /// (the write lock on SQLite), whether to back off (still active, lease
    /// released, next attempt time stored) or park it in Failed, remembering
    /// where to resume. Only attempts without progress count: the attempt
    /// made progress when a batch committed (or a phase advanced) under this
    /// lease. `describe` turns the verdict into the stored `last_error`.
    /// Returns the verdict; `Ok(None)` when the lease was already lost, so
    /// there is nothing to record.
    pub async fn record_failure(
        &self,
        lease: &Lease,
        state: State,
        transient: bool,
        policy: &RetryPolicy,
        describe: impl FnOnce(&Verdict) -> String,
    ) -> Result<Option<Verdict>, Error> {
        let mut tx = self.begin().await?;
        match lease.fence(&mut tx, state).await {
            Ok(()) => {}
            // Someone else owns it now, or it was cancelled: their record wins.
            Err(Error::Fenced(_) | Error::StateChanged { .. }) => return Ok(None),
            Err(err) => return Err(err),
        }
        let id = lease.request_id;
        let (attempts, progress_epoch): (i32, Option<i64>) =
            on_either_backend!(tx.conn(), id, |conn, stored_id| {
                sqlx::query_as(
                    "SELECT attempts, progress_epoch FROM erasure_requests WHERE id = $1",
                )
                .bind(stored_id)
                .fetch_one(conn)
                .await?
            });
        let progressed = progress_epoch == Some(lease.epoch);
        let verdict = policy.after_failure(attempts.max(0) as u32, progressed, transient);
        let message = describe(&verdict);
        let count = i32::try_from(verdict.attempts).unwrap_or(i32::MAX);
        match verdict.decision {
            Decision::RetryAfter(delay) => {
                on_backend!(tx.conn(), conn =>
                    postgres::requests::schedule_retry(conn, id, &message, delay, count).await?,
                    sqlite::requests::schedule_retry(conn, id, &message, delay, count).await?);
                events::record(
                    &mut tx,
                    lease,
                    EventKind::RetryScheduled,
                    state.phase(),
                    None,
                    Some(&message),
                )
                .await?;
            }
            Decision::GiveUp => {
                state.check_transition(State::Failed)?;
                on_backend!(tx.conn(), conn =>
                    postgres::requests::park_failed(conn, id, &message, state, count).await?,
                    sqlite::requests::park_failed(conn, id, &message, state, count).await?);
                events::record(
                    &mut tx,
                    lease,
                    EventKind::Failed,
                    state.phase(),
                    None,
                    Some(&message),
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(verdict))
    }

    /// Resumes a failed request from its checkpoint.
    pub async fn retry(&self, id: Uuid) -> Result<RequestRecord, Error> {
        let mut tx = self.begin().await?;
        let (state, row) = lock_state(&mut tx, id).await?;
        if state != State::Failed {
            return Err(Error::Refused {
                id,
                reason: format!("only a failed request can be retried; this one is {state}"),
            });
        }
        let resume: State = row
            .resume_state
            .ok_or_else(|| {
                Error::Invariant(format!("request {id} is failed without a resume state"))
            })?
            .parse()?;
        State::Failed.check_transition(resume)?;
        on_backend!(tx.conn(), conn =>
            postgres::requests::resume(conn, id, resume).await?,
            sqlite::requests::resume(conn, id, resume).await?);
        events::record_operator(&mut tx, id, EventKind::Retried, Some(resume.as_str())).await?;
        tx.commit().await?;
        self.wake_workers();
        self.get(id).await
    }

    /// Cancels a request that has not started deleting objects. Locks the
    /// row (the database on SQLite), so it cannot interleave with a worker
    /// starting S3 deletion: one of the two sees the other's write.
    pub async fn cancel(&self, id: Uuid) -> Result<RequestRecord, Error> {
        let mut tx = self.begin().await?;
        let (state, row) = lock_state(&mut tx, id).await?;
        if let Some(started) = row.s3_started_at {
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
        on_backend!(tx.conn(), conn =>
            postgres::requests::cancel(conn, id).await?,
            sqlite::requests::cancel(conn, id).await?);
        events::record_operator(&mut tx, id, EventKind::Cancelled, Some(state.as_str())).await?;
        tx.commit().await?;
        self.get(id).await
    }
}

/// Takes the member's lock (PostgreSQL: the advisory lock of the coalescing
/// trigger; SQLite: the write lock, already held) for the rest of the
/// transaction.
///
/// The lock order, everywhere: a member's advisory lock first, then request
/// rows. The insert trigger takes the advisory lock and then, through the
/// foreign key of `coalesced_into`, a share lock on the active request's
/// row; so a transaction that locks a request row (a fence) and will also
/// want the member's lock (Done, which minimises the member's rows) must
/// take the member's lock first, or the two wait for each other until
/// PostgreSQL aborts one — usually the service's INSERT.
pub async fn lock_subject(tx: &mut Tx, subject: &str) -> Result<(), Error> {
    match tx.conn() {
        super::Backed::Postgres(conn) => postgres::requests::lock_subject(conn, subject).await,
        super::Backed::Sqlite(_) => Ok(()),
    }
}

/// A request's state and the columns `retry` and `cancel` judge it by,
/// locked for the rest of the transaction.
async fn lock_state(tx: &mut Tx, id: Uuid) -> Result<(State, LockedState), Error> {
    let row = on_backend!(tx.conn(), conn =>
        postgres::requests::lock_state(conn, id).await?,
        sqlite::requests::lock_state(conn, id).await?);
    let row = row.ok_or(Error::NotFound(id))?;
    Ok((row.state.parse()?, row))
}

/// The submission an idempotency key names again.
pub(super) fn replayed(
    key: &str,
    id: Uuid,
    coalesced_into: Option<Uuid>,
    same_subject: bool,
    previously_done: Vec<Uuid>,
) -> Result<Submission, Error> {
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

/// What a claim leased, as the backend modules report it.
pub(super) struct Leased {
    pub id: Uuid,
    pub epoch: i64,
    pub state: String,
    pub attempts: i32,
    pub previous_owner: Option<String>,
    /// Read by the claim itself (PostgreSQL).
    pub resumption: Option<ResumptionRow>,
}

/// A request row read under lock, for retry and cancel.
#[derive(Debug, Clone)]
pub(super) struct LockedState {
    pub state: String,
    pub resume_state: Option<String>,
    pub s3_started_at: Option<DateTime<Utc>>,
}

/// States of a request that is not finished: active, or failed and waiting
/// for an operator. These can be overdue.
pub(crate) fn unfinished_state_names() -> Vec<&'static str> {
    let mut names = active_state_names();
    names.push(State::Failed.as_str());
    names
}

pub mod checkpoint;
mod resumption;
pub use resumption::Resumption;
pub(super) use resumption::ResumptionRow;
pub(crate) use resumption::resumption_columns;
