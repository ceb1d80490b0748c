//! Statements on the destruction record's tables and minimisation, SQLite.

use chrono::{DateTime, Utc};
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::{id, now, time};
use crate::error::Error;
use crate::store::record::{Count, live_counts};

pub async fn write_counts(conn: &mut SqliteConnection, request_id: Uuid) -> Result<(), Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO erasure_record_counts (request_id, target, name, replica_of, method, items, versions) \
         SELECT $1, target, name, replica_of, method, items, versions FROM ({}) AS c WHERE true \
         ON CONFLICT DO NOTHING",
        live_counts("integer")
    )))
    .bind(id(request_id))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn counts(pool: &SqlitePool, request_id: Uuid) -> Result<Vec<Count>, Error> {
    let stored: Vec<Count> = sqlx::query_as(
        "SELECT target, name, replica_of, method, items, versions FROM erasure_record_counts \
          WHERE request_id = $1 ORDER BY target DESC, name, replica_of, method",
    )
    .bind(id(request_id))
    .fetch_all(pool)
    .await?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({}) AS c ORDER BY target DESC, name, replica_of, method",
        live_counts("integer")
    )))
    .bind(id(request_id))
    .fetch_all(pool)
    .await?)
}

/// The caller's transaction holds the write lock: the subject's advisory
/// lock on PostgreSQL.
pub async fn replace_subject(
    conn: &mut SqliteConnection,
    request_id: Uuid,
    subject: &str,
    hash: &str,
) -> Result<u64, Error> {
    Ok(sqlx::query(concat!(
        "UPDATE erasure_requests SET subject_hash = $3, subject_key = NULL, updated_at = ",
        now!(),
        " WHERE subject_key = $2 AND (id = $1 OR state IN ('done', 'cancelled', 'coalesced'))"
    ))
    .bind(id(request_id))
    .bind(subject)
    .bind(hash)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn unminimised(pool: &SqlitePool, limit: i64) -> Result<Vec<(Uuid, String)>, Error> {
    let rows: Vec<(Hyphenated, String)> = sqlx::query_as(
        "SELECT id, subject_key FROM erasure_requests \
          WHERE state = 'done' AND subject_key IS NOT NULL ORDER BY finished_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, key)| (id.into_uuid(), key))
        .collect())
}

pub async fn due_for_pruning(
    pool: &SqlitePool,
    retention_days: u32,
    limit: i64,
) -> Result<Vec<Uuid>, Error> {
    let ids: Vec<Hyphenated> = sqlx::query_scalar(
        "SELECT id FROM erasure_requests \
          WHERE state = 'done' AND manifest_pruned_at IS NULL \
            AND finished_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d days', $1)) \
          ORDER BY finished_at LIMIT $2",
    )
    .bind(retention_days)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(Hyphenated::into_uuid).collect())
}

/// Under the write lock no other pruner runs: only whether it is done.
pub async fn claim_for_pruning(
    conn: &mut SqliteConnection,
    request_id: Uuid,
) -> Result<bool, Error> {
    let claimed: Option<Hyphenated> = sqlx::query_scalar(
        "SELECT id FROM erasure_requests WHERE id = $1 AND manifest_pruned_at IS NULL",
    )
    .bind(id(request_id))
    .fetch_optional(conn)
    .await?;
    Ok(claimed.is_some())
}

pub async fn drop_manifest(conn: &mut SqliteConnection, request_id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM erasure_manifest_objects WHERE request_id = $1")
        .bind(id(request_id))
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM erasure_manifest_rows WHERE request_id = $1")
        .bind(id(request_id))
        .execute(&mut *conn)
        .await?;
    sqlx::query(concat!(
        "UPDATE erasure_requests SET manifest_pruned_at = ",
        now!(),
        " WHERE id = $1"
    ))
    .bind(id(request_id))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn done_between(
    pool: &SqlitePool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    let ids: Vec<Hyphenated> = sqlx::query_scalar(
        "SELECT id FROM erasure_requests \
          WHERE state = 'done' AND finished_at >= $1 AND finished_at < $2 \
          ORDER BY finished_at, id",
    )
    .bind(time(from))
    .bind(time(to))
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(Hyphenated::into_uuid).collect())
}
