//! Statements on the destruction record's tables and minimisation,
//! PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;
use crate::store::record::{Count, MemberLock, live_counts};

pub async fn write_counts(conn: &mut PgConnection, request_id: Uuid) -> Result<(), Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO erasure_record_counts (request_id, target, name, replica_of, method, items, versions) \
         SELECT $1, target, name, replica_of, method, items, versions FROM ({}) AS c \
         ON CONFLICT DO NOTHING",
        live_counts("bigint")
    )))
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn counts(pool: &PgPool, request_id: Uuid) -> Result<Vec<Count>, Error> {
    let stored: Vec<Count> = sqlx::query_as(
        "SELECT target, name, replica_of, method, items, versions FROM erasure_record_counts \
          WHERE request_id = $1 ORDER BY target DESC, name, replica_of, method",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({}) AS c ORDER BY target DESC, name, replica_of, method",
        live_counts("bigint")
    )))
    .bind(request_id)
    .fetch_all(pool)
    .await?)
}

pub async fn replace_subject(
    conn: &mut PgConnection,
    request_id: Uuid,
    subject: &str,
    hash: &str,
    lock: MemberLock,
) -> Result<u64, Error> {
    if lock == MemberLock::Take {
        super::requests::lock_subject(&mut *conn, subject).await?;
    }
    Ok(sqlx::query(
        "UPDATE erasure_requests SET subject_hash = $3, subject_key = NULL, updated_at = now() \
          WHERE subject_key = $2 AND (id = $1 OR state IN ('done', 'cancelled', 'coalesced'))",
    )
    .bind(request_id)
    .bind(subject)
    .bind(hash)
    .execute(conn)
    .await?
    .rows_affected())
}

pub async fn unminimised(pool: &PgPool, limit: i64) -> Result<Vec<(Uuid, String)>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, subject_key FROM erasure_requests \
          WHERE state = 'done' AND subject_key IS NOT NULL ORDER BY finished_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn due_for_pruning(
    pool: &PgPool,
    retention_days: u32,
    limit: i64,
) -> Result<Vec<Uuid>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM erasure_requests \
          WHERE state = 'done' AND manifest_pruned_at IS NULL \
            AND finished_at <= now() - make_interval(days => $1) \
          ORDER BY finished_at LIMIT $2",
    )
    .bind(retention_days as i32)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Locks the request for pruning, skipping it if another pruner has it.
pub async fn claim_for_pruning(conn: &mut PgConnection, request_id: Uuid) -> Result<bool, Error> {
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM erasure_requests WHERE id = $1 AND manifest_pruned_at IS NULL FOR UPDATE SKIP LOCKED",
    )
    .bind(request_id)
    .fetch_optional(conn)
    .await?;
    Ok(claimed.is_some())
}

pub async fn drop_manifest(conn: &mut PgConnection, request_id: Uuid) -> Result<(), Error> {
    sqlx::query("DELETE FROM erasure_manifest_objects WHERE request_id = $1")
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM erasure_manifest_rows WHERE request_id = $1")
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE erasure_requests SET manifest_pruned_at = now() WHERE id = $1")
        .bind(request_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn done_between(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM erasure_requests \
          WHERE state = 'done' AND finished_at >= $1 AND finished_at < $2 \
          ORDER BY finished_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}
