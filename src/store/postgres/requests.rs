//! Statements on `erasure_requests`, PostgreSQL.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;
use crate::store::events::EventKind;
use crate::store::lease::Lease;
use crate::store::requests::checkpoint::{CommitEvent, Progress, Verified};
use crate::store::requests::checkpoint::{bind_progress, progress_increments};
use crate::store::requests::counter_columns;
use crate::store::requests::{
    Counters, Leased, ListFilter, LockedState, Provenance, RECORD_COLUMNS, RequestRecord,
    StoredCheckpoint, Submission, replayed, unfinished_state_names,
};
use crate::store::requests::{ResumptionRow, resumption_columns};
use crate::store::{active_state_names, constant_list};
use crate::workflow::state::{Phase, State};

pub async fn submit(
    pool: &PgPool,
    subject: &str,
    provenance: Provenance<'_>,
    subject_hash: Option<&str>,
) -> Result<Submission, Error> {
    let idempotency_key = provenance.idempotency_key;
    // The insert trigger folds a duplicate into the active request, under
    // the subject's advisory lock.
    let inserted: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "INSERT INTO erasure_requests (subject_key, idempotency_key, external_ref, submitted_by) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (idempotency_key) DO NOTHING \
         RETURNING id, coalesced_into",
    )
    .bind(subject)
    .bind(idempotency_key)
    .bind(provenance.external_ref)
    .bind(provenance.submitted_by)
    .fetch_optional(pool)
    .await?;
    let previously_done = match subject_hash {
        Some(hash) => {
            sqlx::query_scalar(
                "SELECT id FROM erasure_requests WHERE subject_hash = $1 AND state = 'done' \
                  ORDER BY finished_at DESC",
            )
            .bind(hash)
            .fetch_all(pool)
            .await?
        }
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
    .fetch_one(pool)
    .await?;
    replayed(key, id, coalesced_into, same_subject, previously_done)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<RequestRecord>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM erasure_requests r WHERE r.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

pub async fn for_subject(
    pool: &PgPool,
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
    .fetch_all(pool)
    .await?)
}

pub async fn list(pool: &PgPool, filter: &ListFilter) -> Result<Vec<RequestRecord>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM erasure_requests r \
          WHERE ($1::text IS NULL OR r.state = $1) \
            AND ($3::timestamptz IS NULL OR (r.state = ANY($4) AND r.requested_at < $3)) \
            AND ($5::text IS NULL OR r.submitted_by = $5) \
            AND ($6::timestamptz IS NULL OR (r.requested_at, r.id) < ($6, $7::uuid)) \
          ORDER BY r.requested_at DESC, r.id DESC LIMIT $2"
    )))
    .bind(filter.state.map(State::as_str))
    .bind(filter.limit.unwrap_or(1000))
    .bind(filter.overdue_before)
    .bind(unfinished_state_names())
    .bind(filter.submitted_by.as_deref())
    .bind(filter.after.map(|cursor| cursor.requested_at))
    .bind(filter.after.map(|cursor| cursor.id))
    .fetch_all(pool)
    .await?)
}

pub async fn checkpoint(pool: &PgPool, id: Uuid) -> Result<StoredCheckpoint, Error> {
    let (batch_done, batch_total, cursor): (i32, Option<i32>, Option<serde_json::Value>) =
        sqlx::query_as(
            "SELECT batch_done, batch_total, phase_cursor FROM erasure_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(StoredCheckpoint {
        batch_done,
        batch_total,
        cursor,
    })
}

/// Leases the next due request whose lease is free or expired, skipping
/// rows another worker is claiming this instant (SKIP LOCKED), and appends
/// the claim's event (`claimed`, or `taken_over` naming the previous
/// holder): one statement, so one round trip and no transaction of its
/// own. Taking over an expired lease counts an attempt, unless that lease
/// made progress.
pub async fn lease_next(
    pool: &PgPool,
    owner: &str,
    ttl: Duration,
) -> Result<Option<Leased>, Error> {
    // The states are written into the statement, not bound: only then can
    // its cached (generic) plan use the partial index `erasure_requests_claimable`.
    let claimed: Option<LeasedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH candidate AS ( \
             SELECT id, lease_owner AS previous_owner FROM erasure_requests \
              WHERE state IN ({active}) AND next_attempt_at <= now() \
                AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
              ORDER BY next_attempt_at, requested_at \
              LIMIT 1 FOR UPDATE SKIP LOCKED), \
         leased AS ( \
             UPDATE erasure_requests r \
            SET lease_owner = $1, \
                lease_expires_at = now() + make_interval(secs => $2), \
                lease_epoch = r.lease_epoch + 1, \
                started_at = coalesce(r.started_at, now()), \
                attempts = r.attempts + CASE WHEN candidate.previous_owner IS NULL \
                                              OR r.progress_epoch = r.lease_epoch THEN 0 ELSE 1 END, \
                updated_at = now() \
           FROM candidate WHERE r.id = candidate.id \
         RETURNING r.id, r.lease_epoch, r.state, r.attempts, candidate.previous_owner, \
                   {resumption}), \
         event AS ( \
             INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, detail) \
             SELECT id, $1, lease_epoch, \
                    CASE WHEN previous_owner IS NULL THEN $3 ELSE $4 END, previous_owner \
               FROM leased) \
         SELECT * FROM leased",
        active = constant_list(&active_state_names()),
        // What the worker goes on from, read with the claim instead of after it.
        resumption = resumption_columns!(),
    )))
    .bind(owner)
    .bind(ttl.as_secs_f64())
    .bind(EventKind::Claimed.as_str())
    .bind(EventKind::TakenOver.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(claimed.map(|row| Leased {
        id: row.id,
        epoch: row.lease_epoch,
        state: row.state,
        attempts: row.attempts,
        previous_owner: row.previous_owner,
        resumption: Some(row.resumption),
    }))
}

/// A claim's row: the lease, and where the request stands.
#[derive(sqlx::FromRow)]
struct LeasedRow {
    id: Uuid,
    lease_epoch: i64,
    state: String,
    attempts: i32,
    previous_owner: Option<String>,
    #[sqlx(flatten)]
    resumption: ResumptionRow,
}

/// Seconds until the earliest waiting request falls due, by the database's
/// clock (negative when one is already due); `None` when none waits.
pub async fn next_due_in(pool: &PgPool) -> Result<Option<f64>, Error> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT extract(epoch FROM \
                min(greatest(next_attempt_at, coalesce(lease_expires_at, next_attempt_at))) - now() \
               )::float8 \
           FROM erasure_requests WHERE state IN ({active})",
        active = constant_list(&active_state_names())
    )))
    .fetch_one(pool)
    .await?)
}

pub async fn schedule_retry(
    conn: &mut PgConnection,
    id: Uuid,
    message: &str,
    delay: Duration,
    attempts: i32,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE erasure_requests SET attempts = $4, last_error = $2, \
                next_attempt_at = now() + make_interval(secs => $3), \
                lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
          WHERE id = $1",
    )
    .bind(id)
    .bind(message)
    .bind(delay.as_secs_f64())
    .bind(attempts)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn park_failed(
    conn: &mut PgConnection,
    id: Uuid,
    message: &str,
    resume: State,
    attempts: i32,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE erasure_requests SET attempts = $4, last_error = $2, \
                state = 'failed', resume_state = $3, \
                lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
          WHERE id = $1",
    )
    .bind(id)
    .bind(message)
    .bind(resume.as_str())
    .bind(attempts)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the member's advisory lock for the rest of the transaction: the
/// lock the insert trigger takes before it looks for an active request.
pub async fn lock_subject(conn: &mut PgConnection, subject: &str) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('lethe/subject/' || $1, 0))")
        .bind(subject)
        .execute(conn)
        .await?;
    Ok(())
}

/// The request's state, with its row locked for the rest of the transaction.
pub async fn lock_state(conn: &mut PgConnection, id: Uuid) -> Result<Option<LockedState>, Error> {
    let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT state, resume_state, s3_started_at FROM erasure_requests WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(state, resume_state, s3_started_at)| LockedState {
        state,
        resume_state,
        s3_started_at,
    }))
}

/// Resumes a failed request, and wakes every listening worker at commit.
pub async fn resume(conn: &mut PgConnection, id: Uuid, resume: State) -> Result<(), Error> {
    sqlx::query(
        "UPDATE erasure_requests SET state = $2, resume_state = NULL, attempts = 0, \
                next_attempt_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(resume.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('lethe_erasure_requests', $1)")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn cancel(conn: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE erasure_requests SET state = 'cancelled', resume_state = NULL, \
                lease_owner = NULL, lease_expires_at = NULL, finished_at = now(), updated_at = now() \
          WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where a batch's commit leaves its phase.
pub enum BatchEnd<'a> {
    /// The phase goes on from this cursor.
    GoesOn(&'a serde_json::Value),
    /// It was the phase's last batch: the request moves `from` -> `to`,
    /// stamping the milestone column `stamp`.
    Advances {
        from: State,
        to: State,
        stamp: &'static str,
    },
}

/// A batch's counters and its `batch_committed` event, and either its
/// cursor or the move to the next milestone with its `advanced` event, in
/// one statement. Returns the counters as they now stand.
pub async fn batch_done(
    conn: &mut PgConnection,
    lease: &Lease,
    end: BatchEnd<'_>,
    progress: Progress,
    event: CommitEvent<'_>,
) -> Result<Counters, Error> {
    let (moves, advanced_event) = match &end {
        BatchEnd::GoesOn(_) => (
            "phase_cursor = $2, batch_done = batch_done + 1".to_owned(),
            "",
        ),
        // The advance resets the cursor: this batch's is not written.
        BatchEnd::Advances { stamp, .. } => (
            format!(
                "state = $2, {stamp} = now(), batch_done = 0, batch_total = NULL, phase_cursor = NULL, \
                 s3_started_at = CASE WHEN $2 = 's3_cleared' THEN coalesce(s3_started_at, now()) ELSE s3_started_at END"
            ),
            ", (2, $19, $20, NULL, $2)",
        ),
    };
    let sql = format!(
        "WITH done AS ( \
             UPDATE erasure_requests SET {increments}, {moves}, \
                    attempts = 0, progress_epoch = lease_epoch, updated_at = now() \
              WHERE id = $1 RETURNING id, {counters}), \
         event AS ( \
             INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, batch_no, detail) \
             SELECT done.id, $13, $14, e.kind, e.phase, e.batch_no, e.detail \
               FROM done, (VALUES (1, $15::text, $16::text, $17::int, $18::text){advanced_event}) \
                          AS e(ord, kind, phase, batch_no, detail) \
              ORDER BY e.ord) \
         SELECT {counters} FROM done",
        increments = progress_increments!(),
        counters = counter_columns!(),
    );
    let query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(lease.request_id);
    let query = match &end {
        BatchEnd::GoesOn(cursor) => query.bind(*cursor),
        BatchEnd::Advances { to, .. } => query.bind(to.as_str()),
    };
    let query = bind_progress!(query, progress)
        .bind(&lease.owner)
        .bind(lease.epoch)
        .bind(event.kind.as_str())
        .bind(event.phase.as_str())
        .bind(event.batch)
        .bind(event.detail);
    let query = match end {
        BatchEnd::GoesOn(_) => query,
        BatchEnd::Advances { from, .. } => query
            .bind(EventKind::Advanced.as_str())
            .bind(from.phase().map(Phase::as_str)),
    };
    Ok(query.fetch_one(conn).await?)
}

/// The move to Done with verification's last figures: the finishing
/// step's `batch_started`, the `advanced` event, the `subject_minimised`
/// event after it, and the lease's release with its `released` event, in
/// one statement.
pub async fn finish_done(
    conn: &mut PgConnection,
    lease: &Lease,
    verified: &Verified,
    minimised: &str,
) -> Result<(), Error> {
    sqlx::query(
        "WITH done AS ( \
             UPDATE erasure_requests SET rows_verified = rows_verified + $2, \
                    key_check_tables = $3, key_unchecked_tables = $4, \
                    state = 'done', finished_at = now(), batch_done = 0, batch_total = NULL, \
                    phase_cursor = NULL, attempts = 0, progress_epoch = lease_epoch, \
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
              WHERE id = $1 RETURNING id) \
         INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, batch_no, detail) \
         SELECT done.id, $5, $6, e.kind, e.phase, e.batch_no, e.detail \
           FROM done, (VALUES (0, $12::text, $8::text, $13::int, NULL::text), \
                              (1, $7, $8, NULL, 'done'), (2, $9, $8, NULL, $10), \
                              (3, $11, NULL, NULL, NULL)) \
                      AS e(ord, kind, phase, batch_no, detail) \
          ORDER BY e.ord",
    )
    .bind(lease.request_id)
    .bind(verified.rows)
    .bind(verified.checked_tables.join(", "))
    .bind(verified.unchecked_tables.join(", "))
    .bind(&lease.owner)
    .bind(lease.epoch)
    .bind(EventKind::Advanced.as_str())
    .bind(Phase::Verifying.as_str())
    .bind(EventKind::SubjectMinimised.as_str())
    .bind(minimised)
    .bind(EventKind::Released.as_str())
    .bind(EventKind::BatchStarted.as_str())
    .bind(verified.batch)
    .execute(conn)
    .await?;
    Ok(())
}

/// A phase's start, as [`start_phase`] writes it.
pub struct PhaseStart {
    pub state: State,
    pub phase: Phase,
    pub batch: i32,
    pub total: i32,
    pub s3_starts: bool,
}

/// Starts a phase: its batch total and its first batch's `batch_started`
/// event, in one statement whose `WHERE` is the lease's fence (this lease
/// still holds the request, in `state`). False when it wrote nothing.
pub async fn start_phase(pool: &PgPool, lease: &Lease, start: PhaseStart) -> Result<bool, Error> {
    let written = sqlx::query(
        "WITH started AS ( \
             UPDATE erasure_requests SET batch_total = $2, \
                    s3_started_at = CASE WHEN $3 THEN coalesce(s3_started_at, now()) ELSE s3_started_at END, \
                    updated_at = now() \
              WHERE id = $1 AND lease_epoch = $4 AND lease_owner = $5 AND state = $6 \
             RETURNING id) \
         INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, batch_no) \
         SELECT id, $5, $4, $7, $8, $9 FROM started",
    )
    .bind(lease.request_id)
    .bind(start.total)
    .bind(start.s3_starts)
    .bind(lease.epoch)
    .bind(&lease.owner)
    .bind(start.state.as_str())
    .bind(EventKind::BatchStarted.as_str())
    .bind(start.phase.as_str())
    .bind(start.batch)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(written == 1)
}

/// The move to the next milestone and its `advanced` event, in one
/// statement. `stamp` is one of lethe's own milestone column names.
pub async fn advance(
    conn: &mut PgConnection,
    lease: &Lease,
    from: State,
    to: State,
    stamp: &'static str,
) -> Result<(), Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH advanced AS ( \
             UPDATE erasure_requests SET state = $2, {stamp} = now(), batch_done = 0, batch_total = NULL, \
                    s3_started_at = CASE WHEN $2 = 's3_cleared' THEN coalesce(s3_started_at, now()) ELSE s3_started_at END, \
                    phase_cursor = NULL, attempts = 0, progress_epoch = lease_epoch, updated_at = now() \
              WHERE id = $1 RETURNING id) \
         INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, detail) \
         SELECT id, $3, $4, $5, $6, $2 FROM advanced"
    )))
    .bind(lease.request_id)
    .bind(to.as_str())
    .bind(&lease.owner)
    .bind(lease.epoch)
    .bind(EventKind::Advanced.as_str())
    .bind(from.phase().map(Phase::as_str))
    .execute(conn)
    .await?;
    Ok(())
}
