//! Statements on `erasure_requests`, SQLite.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::{id, now, now_plus_secs, time};
use crate::error::Error;
use crate::store::requests::checkpoint::Progress;
use crate::store::requests::checkpoint::{bind_progress, progress_increments};
use crate::store::requests::counter_columns;
use crate::store::requests::{
    Counters, Leased, ListFilter, LockedState, OptionalState, Provenance, RECORD_COLUMNS,
    RequestRecord, StoredCheckpoint, Submission, replayed, unfinished_state_names,
};
use crate::store::{active_state_names, constant_list};
use crate::workflow::state::State;

/// A request row as SQLite returns it: ids as text.
#[derive(sqlx::FromRow)]
struct Row {
    id: Hyphenated,
    idempotency_key: Option<String>,
    state: String,
    resume_state: Option<String>,
    coalesced_into: Option<Hyphenated>,
    batch_done: i32,
    batch_total: Option<i32>,
    rows_found: i64,
    objects_found: i64,
    objects_retained: i64,
    objects_deleted: i64,
    objects_scheduled: i64,
    objects_locked: i64,
    rows_masked: i64,
    anomaly_count: i32,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    requested_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    targets_found_at: Option<DateTime<Utc>>,
    s3_started_at: Option<DateTime<Utc>>,
    s3_cleared_at: Option<DateTime<Utc>>,
    db_masked_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    coalesced_count: i64,
    subject_minimised: bool,
    submitted_by: Option<String>,
    external_ref: Option<String>,
}

impl TryFrom<Row> for RequestRecord {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(RequestRecord {
            id: r.id.into_uuid(),
            idempotency_key: r.idempotency_key,
            state: r.state.parse()?,
            resume_state: OptionalState::try_from(r.resume_state)?,
            coalesced_into: r.coalesced_into.map(Hyphenated::into_uuid),
            batch_done: r.batch_done,
            batch_total: r.batch_total,
            rows_found: r.rows_found,
            objects_found: r.objects_found,
            objects_retained: r.objects_retained,
            objects_deleted: r.objects_deleted,
            objects_scheduled: r.objects_scheduled,
            objects_locked: r.objects_locked,
            rows_masked: r.rows_masked,
            anomaly_count: r.anomaly_count,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            lease_owner: r.lease_owner,
            lease_expires_at: r.lease_expires_at,
            requested_at: r.requested_at,
            started_at: r.started_at,
            targets_found_at: r.targets_found_at,
            s3_started_at: r.s3_started_at,
            s3_cleared_at: r.s3_cleared_at,
            db_masked_at: r.db_masked_at,
            finished_at: r.finished_at,
            updated_at: r.updated_at,
            coalesced_count: r.coalesced_count,
            subject_minimised: r.subject_minimised,
            submitted_by: r.submitted_by,
            external_ref: r.external_ref,
            due_by: None,
            overdue: false,
            finished_late: false,
        })
    }
}

/// An earlier submission with the same idempotency key: id, coalesced
/// into, subject key, subject hash.
type IdempotentRow = (
    Hyphenated,
    Option<Hyphenated>,
    Option<String>,
    Option<String>,
);

fn records(rows: Vec<Row>) -> Result<Vec<RequestRecord>, Error> {
    rows.into_iter().map(RequestRecord::try_from).collect()
}

/// Submits under the write lock: the idempotency key is looked up, then an
/// active request of the subject, and the row is inserted already folded
/// (state 'coalesced') when there is one. No other writer runs in between,
/// so two submissions cannot both miss each other. (A bare INSERT is folded
/// by the trigger in `migrations/sqlite/` instead.)
pub async fn submit(
    pool: &SqlitePool,
    subject: &str,
    provenance: Provenance<'_>,
    subject_hash: Option<&str>,
) -> Result<Submission, Error> {
    let idempotency_key = provenance.idempotency_key;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let previously_done: Vec<Uuid> = match subject_hash {
        Some(hash) => sqlx::query_scalar::<_, Hyphenated>(
            "SELECT id FROM erasure_requests WHERE subject_hash = $1 AND state = 'done' \
              ORDER BY finished_at DESC",
        )
        .bind(hash)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(Hyphenated::into_uuid)
        .collect(),
        None => Vec::new(),
    };
    if let Some(key) = idempotency_key {
        let existing: Option<IdempotentRow> = sqlx::query_as(
            "SELECT id, coalesced_into, subject_key, subject_hash FROM erasure_requests \
                  WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id, coalesced_into, key_then, hash_then)) = existing {
            tx.rollback().await?;
            let same_subject = key_then.as_deref() == Some(subject)
                || (hash_then.is_some() && hash_then.as_deref() == subject_hash);
            return replayed(
                key,
                id.into_uuid(),
                coalesced_into.map(Hyphenated::into_uuid),
                same_subject,
                previously_done,
            );
        }
    }
    let active: Option<Hyphenated> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM erasure_requests WHERE subject_key = $1 AND state IN ({}) \
          ORDER BY requested_at LIMIT 1",
        constant_list(&unfinished_state_names())
    )))
    .bind(subject)
    .fetch_optional(&mut *tx)
    .await?;
    let inserted: Hyphenated = sqlx::query_scalar(concat!(
        "INSERT INTO erasure_requests \
             (subject_key, idempotency_key, state, coalesced_into, finished_at, external_ref, submitted_by) \
         VALUES ($1, $2, CASE WHEN $3 IS NULL THEN 'requested' ELSE 'coalesced' END, $3, \
                 CASE WHEN $3 IS NULL THEN NULL ELSE ",
        now!(),
        " END, $4, $5) RETURNING id"
    ))
    .bind(subject)
    .bind(idempotency_key)
    .bind(active)
    .bind(provenance.external_ref)
    .bind(provenance.submitted_by)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Submission {
        id: inserted.into_uuid(),
        coalesced_into: active.map(Hyphenated::into_uuid),
        replayed: false,
        previously_done,
    })
}

pub async fn get(pool: &SqlitePool, request: Uuid) -> Result<Option<RequestRecord>, Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLUMNS} FROM erasure_requests r WHERE r.id = $1"
    )))
    .bind(id(request))
    .fetch_optional(pool)
    .await?;
    row.map(RequestRecord::try_from).transpose()
}

pub async fn for_subject(
    pool: &SqlitePool,
    subject: &str,
    subject_hash: Option<&str>,
) -> Result<Vec<RequestRecord>, Error> {
    records(
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM erasure_requests r \
              WHERE r.subject_key = $1 OR ($2 IS NOT NULL AND r.subject_hash = $2) \
             ORDER BY r.requested_at DESC, r.rowid DESC"
        )))
        .bind(subject)
        .bind(subject_hash)
        .fetch_all(pool)
        .await?,
    )
}

pub async fn list(pool: &SqlitePool, filter: &ListFilter) -> Result<Vec<RequestRecord>, Error> {
    records(
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM erasure_requests r \
              WHERE ($1 IS NULL OR r.state = $1) \
                AND ($3 IS NULL OR (r.state IN ({unfinished}) AND r.requested_at < $3)) \
                AND ($4 IS NULL OR r.submitted_by = $4) \
                AND ($5 IS NULL OR r.requested_at < $5 OR (r.requested_at = $5 AND \
                     r.rowid < (SELECT c.rowid FROM erasure_requests c WHERE c.id = $6))) \
              ORDER BY r.requested_at DESC, r.rowid DESC LIMIT $2",
            unfinished = constant_list(&unfinished_state_names())
        )))
        .bind(filter.state.map(State::as_str))
        .bind(filter.limit.unwrap_or(1000))
        .bind(filter.overdue_before.map(time))
        .bind(filter.submitted_by.as_deref())
        .bind(filter.after.map(|cursor| time(cursor.requested_at)))
        .bind(filter.after.map(|cursor| id(cursor.id)))
        .fetch_all(pool)
        .await?,
    )
}

pub async fn checkpoint(pool: &SqlitePool, request: Uuid) -> Result<StoredCheckpoint, Error> {
    let (batch_done, batch_total, cursor): (i32, Option<i32>, Option<String>) = sqlx::query_as(
        "SELECT batch_done, batch_total, phase_cursor FROM erasure_requests WHERE id = $1",
    )
    .bind(id(request))
    .fetch_one(pool)
    .await?;
    let cursor = cursor
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|source| Error::Cursor {
            id: request,
            source,
        })?;
    Ok(StoredCheckpoint {
        batch_done,
        batch_total,
        cursor,
    })
}

/// Leases the next due request whose lease is free or expired. The caller's
/// transaction holds the write lock, so no other claim runs meanwhile: this
/// is what SKIP LOCKED does on PostgreSQL, one claimer at a time.
pub async fn lease_next(
    conn: &mut SqliteConnection,
    owner: &str,
    ttl: Duration,
) -> Result<Option<Leased>, Error> {
    let candidate: Option<(Hyphenated, Option<String>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, lease_owner FROM erasure_requests \
              WHERE state IN ({active}) AND next_attempt_at <= {now} \
                AND (lease_expires_at IS NULL OR lease_expires_at < {now}) \
              ORDER BY next_attempt_at, requested_at LIMIT 1",
            active = constant_list(&active_state_names()),
            now = now!()
        )))
        .fetch_optional(&mut *conn)
        .await?;
    let Some((request, previous_owner)) = candidate else {
        return Ok(None);
    };
    let (epoch, state, attempts): (i64, String, i32) = sqlx::query_as(concat!(
        "UPDATE erasure_requests \
            SET lease_owner = $2, lease_expires_at = ",
        now_plus_secs!("$3"),
        ", lease_epoch = lease_epoch + 1, started_at = coalesce(started_at, ",
        now!(),
        "), attempts = attempts + CASE WHEN $4 IS NULL OR progress_epoch = lease_epoch \
                                       THEN 0 ELSE 1 END, updated_at = ",
        now!(),
        " WHERE id = $1 RETURNING lease_epoch, state, attempts"
    ))
    .bind(request)
    .bind(owner)
    .bind(ttl.as_secs_f64())
    .bind(previous_owner.as_deref())
    .fetch_one(conn)
    .await?;
    Ok(Some(Leased {
        id: request.into_uuid(),
        epoch,
        state,
        attempts,
        previous_owner,
        resumption: None,
    }))
}

/// Seconds until the earliest waiting request falls due, by the database's
/// clock (negative when one is already due); `None` when none waits.
pub async fn next_due_in(pool: &SqlitePool) -> Result<Option<f64>, Error> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (julianday(min(max(next_attempt_at, coalesce(lease_expires_at, next_attempt_at)))) \
                 - julianday({now})) * 86400.0 \
           FROM erasure_requests WHERE state IN ({active})",
        now = now!(),
        active = constant_list(&active_state_names())
    )))
    .fetch_one(pool)
    .await?)
}

pub async fn schedule_retry(
    conn: &mut SqliteConnection,
    request: Uuid,
    message: &str,
    delay: Duration,
    attempts: i32,
) -> Result<(), Error> {
    sqlx::query(concat!(
        "UPDATE erasure_requests SET attempts = $4, last_error = $2, next_attempt_at = ",
        now_plus_secs!("$3"),
        ", lease_owner = NULL, lease_expires_at = NULL, updated_at = ",
        now!(),
        " WHERE id = $1"
    ))
    .bind(id(request))
    .bind(message)
    .bind(delay.as_secs_f64())
    .bind(attempts)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn park_failed(
    conn: &mut SqliteConnection,
    request: Uuid,
    message: &str,
    resume: State,
    attempts: i32,
) -> Result<(), Error> {
    sqlx::query(concat!(
        "UPDATE erasure_requests SET attempts = $4, last_error = $2, \
                state = 'failed', resume_state = $3, \
                lease_owner = NULL, lease_expires_at = NULL, updated_at = ",
        now!(),
        " WHERE id = $1"
    ))
    .bind(id(request))
    .bind(message)
    .bind(resume.as_str())
    .bind(attempts)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request's state. The caller's transaction holds the write lock,
/// which is the row lock PostgreSQL takes here.
pub async fn lock_state(
    conn: &mut SqliteConnection,
    request: Uuid,
) -> Result<Option<LockedState>, Error> {
    let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT state, resume_state, s3_started_at FROM erasure_requests WHERE id = $1",
    )
    .bind(id(request))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(state, resume_state, s3_started_at)| LockedState {
        state,
        resume_state,
        s3_started_at,
    }))
}

pub async fn resume(
    conn: &mut SqliteConnection,
    request: Uuid,
    resume: State,
) -> Result<(), Error> {
    sqlx::query(concat!(
        "UPDATE erasure_requests SET state = $2, resume_state = NULL, attempts = 0, next_attempt_at = ",
        now!(),
        ", updated_at = ",
        now!(),
        " WHERE id = $1"
    ))
    .bind(id(request))
    .bind(resume.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn cancel(conn: &mut SqliteConnection, request: Uuid) -> Result<(), Error> {
    sqlx::query(concat!(
        "UPDATE erasure_requests SET state = 'cancelled', resume_state = NULL, \
                lease_owner = NULL, lease_expires_at = NULL, finished_at = ",
        now!(),
        ", updated_at = ",
        now!(),
        " WHERE id = $1"
    ))
    .bind(id(request))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn batch_done(
    conn: &mut SqliteConnection,
    request: Uuid,
    cursor: &serde_json::Value,
    progress: Progress,
) -> Result<Counters, Error> {
    let query = sqlx::query_as(concat!(
        "UPDATE erasure_requests SET phase_cursor = $2, batch_done = batch_done + 1, ",
        progress_increments!(),
        ", attempts = 0, progress_epoch = lease_epoch, updated_at = ",
        now!(),
        " WHERE id = $1 RETURNING ",
        counter_columns!()
    ))
    .bind(id(request))
    .bind(cursor.to_string());
    Ok(bind_progress!(query, progress).fetch_one(conn).await?)
}

pub async fn phase_started(
    conn: &mut SqliteConnection,
    request: Uuid,
    total: i32,
    s3_starts: bool,
) -> Result<(), Error> {
    sqlx::query(concat!(
        "UPDATE erasure_requests SET batch_total = $2, \
                s3_started_at = CASE WHEN $3 THEN coalesce(s3_started_at, ",
        now!(),
        ") ELSE s3_started_at END, updated_at = ",
        now!(),
        " WHERE id = $1"
    ))
    .bind(id(request))
    .bind(total)
    .bind(s3_starts)
    .execute(conn)
    .await?;
    Ok(())
}

/// `stamp` is one of lethe's own milestone column names.
pub async fn advance(
    conn: &mut SqliteConnection,
    request: Uuid,
    to: State,
    stamp: &'static str,
) -> Result<(), Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE erasure_requests SET state = $2, {stamp} = {now}, batch_done = 0, batch_total = NULL, \
                s3_started_at = CASE WHEN $2 = 's3_cleared' THEN coalesce(s3_started_at, {now}) ELSE s3_started_at END, \
                phase_cursor = NULL, attempts = 0, progress_epoch = lease_epoch, updated_at = {now} \
          WHERE id = $1",
        now = now!()
    )))
    .bind(id(request))
    .bind(to.as_str())
    .execute(conn)
    .await?;
    Ok(())
}
