//! The manifest: every row and object an erasure means to touch, written
//! during TargetsFound before anything is deleted, then worked through batch
//! by batch. Also the anomalies found on the way. All writes are set-based:
//! one statement per kind per batch, whatever the batch's size.

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Error;
use crate::references::ObjectRef;

/// A row to erase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManifestRow {
    pub table: String,
    pub row_id: String,
}

/// An object found for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestObject {
    pub object: ObjectRef,
    /// Retained (shared), not deleted.
    pub protected: bool,
    /// The table whose row referenced it.
    pub source_table: String,
    /// That row's id.
    pub source_row: String,
    /// For the copy in a replica bucket: the bucket it replicates.
    pub replica_of: Option<String>,
    /// It lists other objects (they come before it in the manifest).
    pub container: bool,
}

/// Something that could not be resolved or erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Anomaly {
    pub kind: String,
    pub table_name: Option<String>,
    pub row_id: Option<String>,
    pub detail: String,
}

/// What one batch's manifest insert added (duplicates of earlier batches
/// are not counted twice).
#[derive(Debug, Clone, Copy, Default)]
pub struct Added {
    pub rows: i64,
    pub objects_to_delete: i64,
    pub objects_retained: i64,
    pub anomalies: i32,
}

/// An object due for deletion, with its place in the deletion order.
#[derive(Debug, Clone)]
pub struct PendingObject {
    pub seq: i64,
    pub bucket: String,
    pub key: String,
    /// The table and row that referenced it, for anomalies.
    pub source_table: String,
    pub source_row: Option<String>,
    /// It lists other objects: deleted after the plain objects of its batch.
    pub container: bool,
}

/// Writes one discovery batch's findings.
pub async fn add(
    conn: &mut PgConnection,
    request_id: Uuid,
    batch_no: i32,
    rows: &[ManifestRow],
    objects: &[ManifestObject],
    anomalies: &[Anomaly],
) -> Result<Added, Error> {
    let mut added = Added::default();
    if !rows.is_empty() {
        let tables: Vec<&str> = rows.iter().map(|r| r.table.as_str()).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r.row_id.as_str()).collect();
        added.rows = sqlx::query(
            "INSERT INTO erasure_manifest_rows (request_id, batch_no, table_name, row_id) \
             SELECT $1, $2, t, r FROM UNNEST($3::text[], $4::text[]) AS u(t, r) \
             ON CONFLICT DO NOTHING",
        )
        .bind(request_id)
        .bind(batch_no)
        .bind(&tables)
        .bind(&ids)
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
    }
    if !objects.is_empty() {
        let buckets: Vec<&str> = objects.iter().map(|o| o.object.bucket.as_str()).collect();
        let keys: Vec<&str> = objects.iter().map(|o| o.object.key.as_str()).collect();
        let dispositions: Vec<&str> = objects
            .iter()
            .map(|o| if o.protected { "protected" } else { "delete" })
            .collect();
        let sources: Vec<&str> = objects.iter().map(|o| o.source_table.as_str()).collect();
        let source_rows: Vec<&str> = objects.iter().map(|o| o.source_row.as_str()).collect();
        let replica_of: Vec<Option<&str>> =
            objects.iter().map(|o| o.replica_of.as_deref()).collect();
        let containers: Vec<bool> = objects.iter().map(|o| o.container).collect();
        // seq continues after the request's last object, in the order given:
        // the caller lists contained objects before their container.
        let inserted: Vec<String> = sqlx::query_scalar(
            "INSERT INTO erasure_manifest_objects \
                    (request_id, seq, bucket, object_key, disposition, source_table, source_row_id, replica_of, container) \
             SELECT $1, \
                    (SELECT coalesce(max(seq), 0) FROM erasure_manifest_objects WHERE request_id = $1) + n, \
                    b, k, d, s, r, p, c \
               FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[]) \
                    WITH ORDINALITY AS u(b, k, d, s, r, p, c, n) \
             ON CONFLICT DO NOTHING \
             RETURNING disposition",
        )
        .bind(request_id)
        .bind(&buckets)
        .bind(&keys)
        .bind(&dispositions)
        .bind(&sources)
        .bind(&source_rows)
        .bind(&replica_of)
        .bind(&containers)
        .fetch_all(&mut *conn)
        .await?;
        added.objects_to_delete = inserted.iter().filter(|d| *d == "delete").count() as i64;
        added.objects_retained = inserted.len() as i64 - added.objects_to_delete;
    }
    added.anomalies = record_anomalies(conn, request_id, anomalies).await?;
    Ok(added)
}

/// Records anomalies; returns how many.
pub async fn record_anomalies(
    conn: &mut PgConnection,
    request_id: Uuid,
    anomalies: &[Anomaly],
) -> Result<i32, Error> {
    if anomalies.is_empty() {
        return Ok(0);
    }
    let kinds: Vec<&str> = anomalies.iter().map(|a| a.kind.as_str()).collect();
    let tables: Vec<Option<&str>> = anomalies.iter().map(|a| a.table_name.as_deref()).collect();
    let rows: Vec<Option<&str>> = anomalies.iter().map(|a| a.row_id.as_deref()).collect();
    let details: Vec<&str> = anomalies.iter().map(|a| a.detail.as_str()).collect();
    sqlx::query(
        "INSERT INTO erasure_anomalies (request_id, kind, table_name, row_id, detail) \
         SELECT $1, k, t, r, d FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[]) AS u(k, t, r, d)",
    )
    .bind(request_id)
    .bind(&kinds)
    .bind(&tables)
    .bind(&rows)
    .bind(&details)
    .execute(conn)
    .await?;
    Ok(anomalies.len() as i32)
}

/// Objects S3 refused for good (lock, legal hold, access denied): retained,
/// reported, and left out of deletion and verification.
const NOT_RETAINED: &str = "(outcome IS NULL OR outcome NOT IN ('locked', 'denied'))";

/// How many objects the request deletes (and verification reads back).
pub async fn count_objects_to_delete(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM erasure_manifest_objects \
          WHERE request_id = $1 AND disposition = 'delete' AND {NOT_RETAINED}"
    )))
    .bind(request_id)
    .fetch_one(conn)
    .await?)
}

/// The next objects to delete after `after_seq`, in deletion order.
pub async fn objects_after(
    conn: &mut PgConnection,
    request_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<PendingObject>, Error> {
    let rows: Vec<(i64, String, String, String, Option<String>, bool)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT seq, bucket, object_key, source_table, source_row_id, container FROM erasure_manifest_objects \
              WHERE request_id = $1 AND disposition = 'delete' AND {NOT_RETAINED} AND seq > $2 \
              ORDER BY seq LIMIT $3"
        )))
        .bind(request_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(seq, bucket, key, source_table, source_row, container)| PendingObject {
                seq,
                bucket,
                key,
                source_table,
                source_row,
                container,
            },
        )
        .collect())
}

/// How one object ended, for [`record_outcomes`].
#[derive(Debug, Clone)]
pub struct ObjectEnd {
    pub seq: i64,
    /// deleted | scheduled | locked | denied
    pub outcome: &'static str,
    pub versions: Option<i32>,
}

/// Records how objects ended (inside the batch's checkpoint transaction).
/// `deleted_at` is stamped for every outcome: it is when lethe finished
/// with the object.
pub async fn record_outcomes(
    conn: &mut PgConnection,
    request_id: Uuid,
    ends: &[ObjectEnd],
) -> Result<(), Error> {
    if ends.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = ends.iter().map(|e| e.seq).collect();
    let outcomes: Vec<&str> = ends.iter().map(|e| e.outcome).collect();
    let versions: Vec<Option<i32>> = ends.iter().map(|e| e.versions).collect();
    sqlx::query(
        "UPDATE erasure_manifest_objects m \
            SET outcome = u.o, versions = u.v, deleted_at = coalesce(m.deleted_at, now()) \
           FROM UNNEST($2::bigint[], $3::text[], $4::int[]) AS u(s, o, v) \
          WHERE m.request_id = $1 AND m.seq = u.s",
    )
    .bind(request_id)
    .bind(&seqs)
    .bind(&outcomes)
    .bind(&versions)
    .execute(conn)
    .await?;
    Ok(())
}

/// The rows that referenced objects S3 refused to erase (for the
/// `locked_object_rows = "keep"` policy).
pub async fn rows_referencing_retained(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<Vec<ManifestRow>, Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT source_table, source_row_id FROM erasure_manifest_objects \
          WHERE request_id = $1 AND outcome IN ('locked', 'denied') AND source_row_id IS NOT NULL",
    )
    .bind(request_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(table, row_id)| ManifestRow { table, row_id })
        .collect())
}

/// The distinct row batches, for the masking phase's total.
pub async fn count_row_batches(conn: &mut PgConnection, request_id: Uuid) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        "SELECT count(DISTINCT batch_no) FROM erasure_manifest_rows WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(conn)
    .await?)
}

/// The rows of the first batch after `after_batch`, if any.
pub async fn rows_of_next_batch(
    conn: &mut PgConnection,
    request_id: Uuid,
    after_batch: i32,
) -> Result<Option<(i32, Vec<ManifestRow>)>, Error> {
    let next: Option<i32> = sqlx::query_scalar(
        "SELECT min(batch_no) FROM erasure_manifest_rows WHERE request_id = $1 AND batch_no > $2",
    )
    .bind(request_id)
    .bind(after_batch)
    .fetch_one(&mut *conn)
    .await?;
    let Some(batch_no) = next else {
        return Ok(None);
    };
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name, row_id FROM erasure_manifest_rows \
          WHERE request_id = $1 AND batch_no = $2 ORDER BY table_name, row_id",
    )
    .bind(request_id)
    .bind(batch_no)
    .fetch_all(conn)
    .await?;
    Ok(Some((
        batch_no,
        rows.into_iter()
            .map(|(table, row_id)| ManifestRow { table, row_id })
            .collect(),
    )))
}

/// Marks a batch's rows of one table erased, by `method` (masked or
/// deleted), inside the batch's transaction.
pub async fn mark_erased(
    conn: &mut PgConnection,
    request_id: Uuid,
    batch_no: i32,
    table: &str,
    method: &str,
    except: &[String],
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE erasure_manifest_rows SET masked_at = now(), method = $4 \
          WHERE request_id = $1 AND batch_no = $2 AND table_name = $3 AND NOT (row_id = ANY($5))",
    )
    .bind(request_id)
    .bind(batch_no)
    .bind(table)
    .bind(method)
    .bind(except)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks rows kept unmasked by policy (inside the batch's transaction).
pub async fn mark_kept(
    conn: &mut PgConnection,
    request_id: Uuid,
    rows: &[ManifestRow],
) -> Result<(), Error> {
    let tables: Vec<&str> = rows.iter().map(|r| r.table.as_str()).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.row_id.as_str()).collect();
    sqlx::query(
        "UPDATE erasure_manifest_rows m SET method = 'kept', masked_at = NULL \
           FROM UNNEST($2::text[], $3::text[]) AS u(t, r) \
          WHERE m.request_id = $1 AND m.table_name = u.t AND m.row_id = u.r",
    )
    .bind(request_id)
    .bind(&tables)
    .bind(&ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The rows of the first batch after `after_batch` that verification reads
/// back: every row but those kept by policy.
pub async fn rows_to_verify(
    conn: &mut PgConnection,
    request_id: Uuid,
    after_batch: i32,
) -> Result<Option<(i32, Vec<ManifestRow>)>, Error> {
    let Some((batch_no, rows)) = rows_of_next_batch(&mut *conn, request_id, after_batch).await?
    else {
        return Ok(None);
    };
    let kept: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name, row_id FROM erasure_manifest_rows \
          WHERE request_id = $1 AND batch_no = $2 AND method = 'kept'",
    )
    .bind(request_id)
    .bind(batch_no)
    .fetch_all(conn)
    .await?;
    let rows = rows
        .into_iter()
        .filter(|row| {
            !kept
                .iter()
                .any(|(table, id)| *table == row.table && *id == row.row_id)
        })
        .collect();
    Ok(Some((batch_no, rows)))
}

/// The anomalies recorded for a request.
pub async fn anomalies(conn: &mut PgConnection, request_id: Uuid) -> Result<Vec<Anomaly>, Error> {
    Ok(sqlx::query_as(
        "SELECT kind, table_name, row_id, detail FROM erasure_anomalies WHERE request_id = $1 ORDER BY id",
    )
    .bind(request_id)
    .fetch_all(conn)
    .await?)
}
