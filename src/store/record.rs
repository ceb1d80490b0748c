//! The destruction record's tables: the counts written when a request
//! reaches Done (per table and per bucket, each with its method), pruning of
//! the per-object manifest to those counts, and the replacement of a
//! member's raw key by its keyed hash. Storage only; [`crate::report`]
//! builds the record and [`crate::minimise`] decides when to prune and hash.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Store, Tx, on_backend, on_either_backend, postgres, sqlite};
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
/// count as `erased`. `{bigint}` is the backend's cast to a 64-bit integer
/// (SQLite's integers already are).
pub(super) fn live_counts(bigint: &str) -> String {
    format!(
        "\
    SELECT 'table' AS target, table_name AS name, '' AS replica_of, \
           coalesce(method, CASE WHEN masked_at IS NULL THEN 'pending' ELSE 'erased' END) AS method, \
           count(*) AS items, CAST(NULL AS {bigint}) AS versions \
      FROM erasure_manifest_rows WHERE request_id = $1 GROUP BY 1, 2, 3, 4 \
    UNION ALL \
    SELECT 'bucket', bucket, coalesce(replica_of, ''), \
           CASE WHEN disposition = 'protected' THEN 'retained_protected' \
                WHEN outcome = 'locked' THEN 'retained_locked' \
                WHEN outcome = 'denied' THEN 'retained_denied' \
                WHEN outcome IS NOT NULL THEN outcome \
                WHEN deleted_at IS NOT NULL THEN 'deleted' \
                ELSE 'pending' END, \
           count(*), CAST(sum(versions) AS {bigint}) \
      FROM erasure_manifest_objects WHERE request_id = $1 GROUP BY 1, 2, 3, 4"
    )
}

/// Writes the request's counts from its manifest (idempotent).
pub async fn write_counts(tx: &mut Tx, request_id: Uuid) -> Result<(), Error> {
    on_backend!(tx.conn(), conn =>
        postgres::record::write_counts(conn, request_id).await?,
        sqlite::record::write_counts(conn, request_id).await?);
    Ok(())
}

/// The request's counts: those written at Done, or (before Done) computed
/// from the manifest as it stands.
pub async fn counts(store: &Store, request_id: Uuid) -> Result<Vec<Count>, Error> {
    Ok(on_backend!(store.db(), pool =>
        postgres::record::counts(pool, request_id).await?,
        sqlite::record::counts(pool, request_id).await?))
}

/// Records verification's last figures, in Done's transaction: the rows
/// read back, and which client tables were checked for the member's key
/// (and which could not be).
pub async fn finish_verification(
    tx: &mut Tx,
    request_id: Uuid,
    rows_verified: i64,
    checked: &[String],
    unchecked: &[String],
) -> Result<(), Error> {
    let (checked, unchecked) = (checked.join(", "), unchecked.join(", "));
    on_either_backend!(tx.conn(), request_id, |conn, id| {
        sqlx::query(
            "UPDATE erasure_requests SET rows_verified = rows_verified + $2, \
                    key_check_tables = $3, key_unchecked_tables = $4 \
              WHERE id = $1",
        )
        .bind(id)
        .bind(rows_verified)
        .bind(&checked)
        .bind(&unchecked)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Replaces the raw key by its hash on the request and on every finished
/// request of the same member. On PostgreSQL it first takes the member's
/// advisory lock, the one the coalescing trigger takes; on SQLite the
/// transaction already holds the write lock. Either way a submission racing
/// with this commit waits for it and then sees the request done (and starts
/// a new one) instead of folding into it and keeping the raw key.
pub async fn replace_subject(
    tx: &mut Tx,
    request_id: Uuid,
    subject: &str,
    hash: &str,
    lock: MemberLock,
) -> Result<u64, Error> {
    Ok(on_backend!(tx.conn(), conn =>
        postgres::record::replace_subject(conn, request_id, subject, hash, lock).await?,
        sqlite::record::replace_subject(conn, request_id, subject, hash).await?))
}

/// Whether [`replace_subject`]'s transaction already holds the member's
/// lock ([`super::requests::lock_subject`], taken first by Done's
/// transaction), or must take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberLock {
    Held,
    Take,
}

/// Finished requests that still hold a raw key (finished before lethe
/// minimised at Done): id and key, for [`replace_subject`].
pub async fn unminimised(store: &Store, limit: i64) -> Result<Vec<(Uuid, String)>, Error> {
    Ok(on_backend!(store.db(), pool =>
        postgres::record::unminimised(pool, limit).await?,
        sqlite::record::unminimised(pool, limit).await?))
}

/// Done requests whose manifest is due for pruning, oldest first.
pub async fn due_for_pruning(
    store: &Store,
    retention_days: u32,
    limit: i64,
) -> Result<Vec<Uuid>, Error> {
    Ok(on_backend!(store.db(), pool =>
        postgres::record::due_for_pruning(pool, retention_days, limit).await?,
        sqlite::record::due_for_pruning(pool, retention_days, limit).await?))
}

/// Prunes one request's manifest to counts, in the caller's transaction:
/// counts first (a request finished before counts existed gets them now),
/// then the per-object and per-row lists. Returns false when another
/// pruner got there first.
pub async fn prune_manifest(tx: &mut Tx, request_id: Uuid) -> Result<bool, Error> {
    let claimed = on_backend!(tx.conn(), conn =>
        postgres::record::claim_for_pruning(conn, request_id).await?,
        sqlite::record::claim_for_pruning(conn, request_id).await?);
    if !claimed {
        return Ok(false);
    }
    write_counts(tx, request_id).await?;
    on_backend!(tx.conn(), conn =>
        postgres::record::drop_manifest(conn, request_id).await?,
        sqlite::record::drop_manifest(conn, request_id).await?);
    Ok(true)
}

/// Requests done in `[from, to)`, in the order they finished.
pub async fn done_between(
    store: &Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    Ok(on_backend!(store.db(), pool =>
        postgres::record::done_between(pool, from, to).await?,
        sqlite::record::done_between(pool, from, to).await?))
}

/// Verification figures and minimisation facts of a request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Evidence {
    pub objects_verified: i64,
    pub survivors_found: i64,
    pub rows_verified: i64,
    pub manifest_pruned_at: Option<DateTime<Utc>>,
    pub subject_minimised: bool,
    /// Client tables read back for the member's key (comma-separated).
    pub key_check_tables: Option<String>,
    /// Client tables that could not be (their erasure keeps the key).
    pub key_unchecked_tables: Option<String>,
}

pub async fn evidence(store: &Store, request_id: Uuid) -> Result<Evidence, Error> {
    let evidence: Option<Evidence> = on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_as(
            "SELECT objects_verified, survivors_found, rows_verified, manifest_pruned_at, \
                    (subject_key IS NULL) AS subject_minimised, key_check_tables, key_unchecked_tables \
               FROM erasure_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    evidence.ok_or(Error::NotFound(request_id))
}
