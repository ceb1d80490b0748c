//! The destruction record's tables: the counts written when a request
//! reaches Done (per table and per bucket, each with its method), pruning of
//! the per-object manifest to those counts, and the replacement of a
//! member's raw key by its keyed hash. SQL only; [`crate::report`] builds
//! the record and [`crate::minimise`] decides when to prune and hash.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;

/// One count of the record: so many rows of a table, or objects of a
/// bucket, erased (or retained) by one method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Count {
    /// `table` or `bucket`.
    pub target: String,
    pub name: String,
    /// For a replica bucket: the bucket it replicates ('' otherwise).
    pub replica_of: String,
    /// Tables: masked, deleted, kept (pending while unfinished).
    /// Buckets: deleted, scheduled, retained_protected, retained_locked,
    /// retained_denied (pending while unfinished).
    pub method: String,
    pub items: i64,
    /// Object versions and delete markers removed (or versions tagged), in
    /// versioned buckets.
    pub versions: Option<i64>,
}

/// The counts, computed from the manifest: rows by table and method,
/// objects by bucket and method. Rows masked before methods were recorded
/// count as `erased`.
const LIVE_COUNTS: &str = "\
    SELECT 'table' AS target, table_name AS name, '' AS replica_of, \
           coalesce(method, CASE WHEN masked_at IS NULL THEN 'pending' ELSE 'erased' END) AS method, \
           count(*) AS items, NULL::bigint AS versions \
      FROM erasure_manifest_rows WHERE request_id = $1 GROUP BY 1, 2, 3, 4 \
    UNION ALL \
    SELECT 'bucket', bucket, coalesce(replica_of, ''), \
           CASE WHEN disposition = 'protected' THEN 'retained_protected' \
                WHEN outcome = 'locked' THEN 'retained_locked' \
                WHEN outcome = 'denied' THEN 'retained_denied' \
                WHEN outcome IS NOT NULL THEN outcome \
                WHEN deleted_at IS NOT NULL THEN 'deleted' \
                ELSE 'pending' END, \
           count(*), sum(versions)::bigint \
      FROM erasure_manifest_objects WHERE request_id = $1 GROUP BY 1, 2, 3, 4";

/// Writes the request's counts from its manifest (idempotent).
pub async fn write_counts(conn: &mut PgConnection, request_id: Uuid) -> Result<(), Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO erasure_record_counts (request_id, target, name, replica_of, method, items, versions) \
         SELECT $1, target, name, replica_of, method, items, versions FROM ({LIVE_COUNTS}) AS c \
         ON CONFLICT DO NOTHING"
    )))
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request's counts: those written at Done, or (before Done) computed
/// from the manifest as it stands.
pub async fn counts(conn: &mut PgConnection, request_id: Uuid) -> Result<Vec<Count>, Error> {
    let stored: Vec<Count> = sqlx::query_as(
        "SELECT target, name, replica_of, method, items, versions FROM erasure_record_counts \
          WHERE request_id = $1 ORDER BY target DESC, name, replica_of, method",
    )
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({LIVE_COUNTS}) AS c ORDER BY target DESC, name, replica_of, method"
    )))
    .bind(request_id)
    .fetch_all(conn)
    .await?)
}

/// Adds verification figures for one verified page (in its transaction).
pub async fn add_verified(
    conn: &mut PgConnection,
    request_id: Uuid,
    objects: i64,
    survivors: i64,
    rows: i64,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE erasure_requests SET objects_verified = objects_verified + $2, \
                survivors_found = survivors_found + $3, rows_verified = rows_verified + $4 \
          WHERE id = $1",
    )
    .bind(request_id)
    .bind(objects)
    .bind(survivors)
    .bind(rows)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the raw key by its hash on the request and on every finished
/// request of the same member, under the member's advisory lock: the lock
/// the coalescing trigger takes, so a submission racing with this commit
/// waits for it and then sees the request done (and starts a new one)
/// instead of folding into it and keeping the raw key.
pub async fn replace_subject(
    conn: &mut PgConnection,
    request_id: Uuid,
    subject: &str,
    hash: &str,
) -> Result<u64, Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('lethe/subject/' || $1, 0))")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
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

/// Finished requests that still hold a raw key (finished before lethe
/// minimised at Done): id and key, for [`replace_subject`].
pub async fn unminimised(pool: &PgPool, limit: i64) -> Result<Vec<(Uuid, String)>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, subject_key FROM erasure_requests \
          WHERE state = 'done' AND subject_key IS NOT NULL ORDER BY finished_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Done requests whose manifest is due for pruning, oldest first.
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

/// Prunes one request's manifest to counts, in the caller's transaction:
/// counts first (a request finished before counts existed gets them now),
/// then the per-object and per-row lists. Returns false when another
/// pruner got there first.
pub async fn prune_manifest(conn: &mut PgConnection, request_id: Uuid) -> Result<bool, Error> {
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM erasure_requests WHERE id = $1 AND manifest_pruned_at IS NULL FOR UPDATE SKIP LOCKED",
    )
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_none() {
        return Ok(false);
    }
    write_counts(conn, request_id).await?;
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
    Ok(true)
}

/// Requests done in `[from, to)`, in the order they finished.
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

/// Verification figures and minimisation facts of a request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Evidence {
    pub objects_verified: i64,
    pub survivors_found: i64,
    pub rows_verified: i64,
    pub manifest_pruned_at: Option<DateTime<Utc>>,
    pub subject_minimised: bool,
}

pub async fn evidence(conn: &mut PgConnection, request_id: Uuid) -> Result<Evidence, Error> {
    sqlx::query_as(
        "SELECT objects_verified, survivors_found, rows_verified, manifest_pruned_at, \
                (subject_key IS NULL) AS subject_minimised \
           FROM erasure_requests WHERE id = $1",
    )
    .bind(request_id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound(request_id))
}
