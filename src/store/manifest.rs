//! The manifest: every row and object an erasure means to touch, written
//! during TargetsFound before anything is deleted, then worked through batch
//! by batch. Also the anomalies found on the way. Writes take the batch's
//! transaction; reads take the store. On PostgreSQL every write is
//! set-based (one statement per kind per batch, whatever the batch's size);
//! on SQLite, in-process and without arrays, one prepared statement per item
//! inside the batch's transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Store, Tx, on_backend, on_either_backend, postgres, sqlite};
use crate::error::Error;
use crate::references::ObjectRef;

/// A row to erase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManifestRow {
    pub table: String,
    pub row_id: String,
}

impl ManifestRow {
    /// These rows' keys, table by table (in the order given within each).
    pub fn keys_by_table<'r>(
        rows: impl IntoIterator<Item = &'r ManifestRow>,
    ) -> BTreeMap<&'r str, Vec<String>> {
        let mut keys: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for row in rows {
            keys.entry(row.table.as_str())
                .or_default()
                .push(row.row_id.clone());
        }
        keys
    }
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
    /// An [`AnomalyKind`]'s name (stored as text, so that a record written
    /// by another version of lethe still reads).
    pub kind: String,
    pub table_name: Option<String>,
    pub row_id: Option<String>,
    pub detail: String,
}

/// The kinds of anomaly: what could not be resolved, followed or erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A client row whose type no feature file names.
    UnknownFeatureType,
    /// A feature's table does not exist (an optional feature, or dropped).
    MissingTable,
    /// The catalog gives no link from this client table to the feature.
    NoLink,
    /// A link value not of the declared type in canonical spelling.
    UnlinkableValue,
    /// A feature row another member's request also claims.
    SharedRow,
    /// A row with a NULL in its key: it cannot be named.
    UnaddressableRow,
    /// A reference column that is not JSON.
    MalformedJson,
    /// A value of another shape than its catalog path expects.
    UnrecognisedShape,
    /// A file of the service's buckets at a path the catalog does not list.
    UndeclaredReference,
    /// A host or bucket that is not the service's.
    ForeignReference,
    /// Both readings of a `+` in a URL exist.
    AmbiguousPlus,
    /// A JSON manifest that does not exist...
    ManifestMissing,
    /// ...is not JSON or has no list where the catalog says...
    ManifestMalformed,
    /// ...or is larger than `expand.max_bytes`.
    ManifestTooLarge,
    /// An object under object lock or legal hold: retained.
    RetainedByLock,
    /// An object S3 refused to erase for good otherwise: retained.
    ErasureRefused,
    /// A catalogued bucket S3 says does not exist.
    BucketMissing,
}

impl AnomalyKind {
    const ALL: [AnomalyKind; 17] = [
        AnomalyKind::UnknownFeatureType,
        AnomalyKind::MissingTable,
        AnomalyKind::NoLink,
        AnomalyKind::UnlinkableValue,
        AnomalyKind::SharedRow,
        AnomalyKind::UnaddressableRow,
        AnomalyKind::MalformedJson,
        AnomalyKind::UnrecognisedShape,
        AnomalyKind::UndeclaredReference,
        AnomalyKind::ForeignReference,
        AnomalyKind::AmbiguousPlus,
        AnomalyKind::ManifestMissing,
        AnomalyKind::ManifestMalformed,
        AnomalyKind::ManifestTooLarge,
        AnomalyKind::RetainedByLock,
        AnomalyKind::ErasureRefused,
        AnomalyKind::BucketMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::UnknownFeatureType => "unknown_feature_type",
            AnomalyKind::MissingTable => "missing_table",
            AnomalyKind::NoLink => "no_link",
            AnomalyKind::UnlinkableValue => "unlinkable_value",
            AnomalyKind::SharedRow => "shared_row",
            AnomalyKind::UnaddressableRow => "unaddressable_row",
            AnomalyKind::MalformedJson => "malformed_json",
            AnomalyKind::UnrecognisedShape => "unrecognised_shape",
            AnomalyKind::UndeclaredReference => "undeclared_reference",
            AnomalyKind::ForeignReference => "foreign_reference",
            AnomalyKind::AmbiguousPlus => "ambiguous_plus",
            AnomalyKind::ManifestMissing => "manifest_missing",
            AnomalyKind::ManifestMalformed => "manifest_malformed",
            AnomalyKind::ManifestTooLarge => "manifest_too_large",
            AnomalyKind::RetainedByLock => "retained_by_lock",
            AnomalyKind::ErasureRefused => "erasure_refused",
            AnomalyKind::BucketMissing => "bucket_missing",
        }
    }

    pub fn parse(name: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Whether some of the member's data may be missing from the manifest
    /// because of it (a reference not followed, a row not proven theirs),
    /// as opposed to a retained object, which the manifest lists.
    pub fn could_hide_data(self) -> bool {
        !matches!(
            self,
            AnomalyKind::RetainedByLock | AnomalyKind::ErasureRefused | AnomalyKind::BucketMissing
        )
    }
}

impl Anomaly {
    pub fn new(
        kind: AnomalyKind,
        table_name: Option<String>,
        row_id: Option<String>,
        detail: String,
    ) -> Anomaly {
        Anomaly {
            kind: kind.as_str().to_owned(),
            table_name,
            row_id,
            detail,
        }
    }

    /// Its kind, if this version of lethe knows it.
    pub fn kind(&self) -> Option<AnomalyKind> {
        AnomalyKind::parse(&self.kind)
    }
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
    /// Shared by the page's objects in one bucket (a deletion page and the
    /// page read ahead hold 16,000 of them).
    pub bucket: Arc<str>,
    pub key: String,
    /// The table and row that referenced it, for anomalies; the table's
    /// name is shared like the bucket's.
    pub source_table: Arc<str>,
    pub source_row: Option<String>,
    /// It lists other objects: deleted after the plain objects of its batch.
    pub container: bool,
}

/// Where a pass over a request's manifest objects (deleting them, reading
/// them back) stands: the last sequence number done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectCursor {
    pub after_seq: i64,
}

impl ObjectCursor {
    /// The cursor past a page of objects.
    pub fn after(page: &[PendingObject]) -> ObjectCursor {
        ObjectCursor {
            after_seq: page.last().map(|o| o.seq).unwrap_or_default(),
        }
    }
}

impl ManifestObject {
    /// How the manifest stores what is to become of it.
    pub(super) fn disposition(&self) -> &'static str {
        if self.protected {
            "protected"
        } else {
            "delete"
        }
    }
}

/// Writes one discovery batch's findings.
pub async fn add(
    tx: &mut Tx,
    request_id: Uuid,
    batch_no: i32,
    rows: &[ManifestRow],
    objects: &[ManifestObject],
    anomalies: &[Anomaly],
) -> Result<Added, Error> {
    let mut added = on_backend!(tx.conn(), conn =>
        postgres::manifest::add(conn, request_id, batch_no, rows, objects).await?,
        sqlite::manifest::add(conn, request_id, batch_no, rows, objects).await?);
    added.anomalies = record_anomalies(tx, request_id, anomalies).await?;
    Ok(added)
}

/// Records anomalies; returns how many.
pub async fn record_anomalies(
    tx: &mut Tx,
    request_id: Uuid,
    anomalies: &[Anomaly],
) -> Result<i32, Error> {
    if anomalies.is_empty() {
        return Ok(0);
    }
    on_backend!(tx.conn(), conn =>
        postgres::manifest::record_anomalies(conn, request_id, anomalies).await?,
        sqlite::manifest::record_anomalies(conn, request_id, anomalies).await?);
    Ok(anomalies.len() as i32)
}

/// Objects S3 refused for good (lock, legal hold, access denied): retained,
/// reported, and left out of deletion and verification.
const NOT_RETAINED: &str = "(outcome IS NULL OR outcome NOT IN ('locked', 'denied'))";

/// How many objects the request deletes (and verification reads back).
pub async fn count_objects_to_delete(store: &Store, request_id: Uuid) -> Result<i64, Error> {
    Ok(on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM erasure_manifest_objects \
              WHERE request_id = $1 AND disposition = 'delete' AND {NOT_RETAINED}"
        )))
        .bind(id)
        .fetch_one(pool)
        .await?
    }))
}

/// The next objects to delete after `after_seq`, in deletion order: the
/// first `limit` of them.
///
/// Read a window of `seq` at a time (twice `limit` wide), not by `ORDER BY
/// seq LIMIT` alone. PostgreSQL cannot tell how many of a request's entries
/// there are (a manifest table analyzed while empty, or holding many small
/// requests beside one large one, says a few), so it planned that read as a
/// scan of every entry after the cursor and a sort: each page of a
/// 66,000-object member read all the entries after it (40-55 ms a page of
/// 4,000, against 4 ms in `seq` order). A window holds at most twice
/// `limit` entries, whatever the plan. `seq` is dense but for entries a
/// batch named again, and protected or refused objects are left out, so a
/// window can come back short before the end: the next window fills the
/// page, up to the request's last `seq`, which the same statement returns.
pub async fn objects_after(
    store: &Store,
    request_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<PendingObject>, Error> {
    let mut page: Vec<PendingObject> = Vec::new();
    let mut window_start = after_seq;
    while (page.len() as i64) < limit {
        let window_end = window_start.saturating_add(limit.saturating_mul(2));
        let (last_seq, found) = objects_in_window(
            store,
            request_id,
            window_start,
            window_end,
            limit - page.len() as i64,
        )
        .await?;
        page.extend(found);
        match last_seq {
            Some(last_seq) if last_seq > window_end => window_start = window_end,
            _ => break,
        }
    }
    Ok(page)
}

/// Up to `limit` objects to delete with `seq` in `(after_seq, up_to]`, and
/// the request's last `seq` (none: no objects).
async fn objects_in_window(
    store: &Store,
    request_id: Uuid,
    after_seq: i64,
    up_to: i64,
    limit: i64,
) -> Result<(Option<i64>, Vec<PendingObject>), Error> {
    // One row at least: the last `seq` beside each object of the window, or
    // beside NULLs when the window holds none.
    type WindowRow = (
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<bool>,
    );
    let found: Vec<WindowRow> = on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH bound AS ( \
                 SELECT max(seq) AS last_seq FROM erasure_manifest_objects WHERE request_id = $1) \
             SELECT bound.last_seq, p.seq, p.bucket, p.object_key, p.source_table, p.source_row_id, p.container \
               FROM bound LEFT JOIN ( \
                    SELECT seq, bucket, object_key, source_table, source_row_id, container \
                      FROM erasure_manifest_objects \
                     WHERE request_id = $1 AND disposition = 'delete' AND {NOT_RETAINED} \
                       AND seq > $2 AND seq <= $3 \
                     ORDER BY seq LIMIT $4) p ON true \
              ORDER BY p.seq"
        )))
        .bind(id)
        .bind(after_seq)
        .bind(up_to)
        .bind(limit)
        .fetch_all(pool)
        .await?
    });
    let last_seq = found.first().and_then(|row| row.0);
    let (mut bucket_before, mut table_before) = (None, None);
    let objects = found
        .into_iter()
        .filter_map(
            |(_, seq, bucket, key, source_table, source_row, container)| {
                Some(PendingObject {
                    seq: seq?,
                    bucket: shared(&mut bucket_before, bucket?),
                    key: key?,
                    source_table: shared(&mut table_before, source_table?),
                    source_row,
                    container: container?,
                })
            },
        )
        .collect();
    Ok((last_seq, objects))
}

/// `value`, sharing the allocation of the entry before when it is the same
/// (a page's objects come in runs of one bucket and one source table).
fn shared(before: &mut Option<Arc<str>>, value: String) -> Arc<str> {
    match before {
        Some(same) if **same == *value => same.clone(),
        _ => before.insert(Arc::from(value)).clone(),
    }
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
    tx: &mut Tx,
    request_id: Uuid,
    ends: &[ObjectEnd],
) -> Result<(), Error> {
    if ends.is_empty() {
        return Ok(());
    }
    on_backend!(tx.conn(), conn =>
        postgres::manifest::record_outcomes(conn, request_id, ends).await?,
        sqlite::manifest::record_outcomes(conn, request_id, ends).await?);
    Ok(())
}

/// The rows that referenced objects S3 refused to erase (for the
/// `locked_object_rows = "keep"` policy).
pub async fn rows_referencing_retained(
    store: &Store,
    request_id: Uuid,
) -> Result<Vec<ManifestRow>, Error> {
    let rows: Vec<(String, String)> = on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_as(
            "SELECT DISTINCT source_table, source_row_id FROM erasure_manifest_objects \
              WHERE request_id = $1 AND outcome IN ('locked', 'denied') AND source_row_id IS NOT NULL",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(table, row_id)| ManifestRow { table, row_id })
        .collect())
}

/// The distinct row batches, for the masking phase's total.
pub async fn count_row_batches(store: &Store, request_id: Uuid) -> Result<i64, Error> {
    Ok(on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_scalar(
            "SELECT count(DISTINCT batch_no) FROM erasure_manifest_rows WHERE request_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await?
    }))
}

/// One discovery batch's manifest rows.
#[derive(Debug, Clone)]
pub struct RowBatch {
    pub batch_no: i32,
    pub rows: Vec<ManifestRow>,
    /// No batch of the request's rows comes after it.
    pub last: bool,
}

/// The rows of the first batch after `after_batch`, if any.
pub async fn rows_of_next_batch(
    store: &Store,
    request_id: Uuid,
    after_batch: i32,
) -> Result<Option<RowBatch>, Error> {
    rows_of_batch_after(store, request_id, after_batch, "true").await
}

/// The first batch after `after_batch`, if any, with those of its rows
/// that meet `condition` (a constant SQL predicate on the manifest row),
/// and whether it is the request's last: one statement.
async fn rows_of_batch_after(
    store: &Store,
    request_id: Uuid,
    after_batch: i32,
    condition: &'static str,
) -> Result<Option<RowBatch>, Error> {
    // One row at least: the next batch's number (NULL when there is none)
    // beside each of its rows, or beside NULLs when none meets `condition`.
    type Found = (Option<i32>, Option<i32>, Option<String>, Option<String>);
    let found: Vec<Found> = on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH next AS ( \
                 SELECT min(batch_no) AS batch_no, \
                        (SELECT max(batch_no) FROM erasure_manifest_rows WHERE request_id = $1) AS last_no \
                   FROM erasure_manifest_rows WHERE request_id = $1 AND batch_no > $2) \
             SELECT next.batch_no, next.last_no, m.table_name, m.row_id \
               FROM next LEFT JOIN erasure_manifest_rows m \
                 ON m.request_id = $1 AND m.batch_no = next.batch_no AND {condition} \
              ORDER BY m.table_name, m.row_id"
        )))
        .bind(id)
        .bind(after_batch)
        .fetch_all(pool)
        .await?
    });
    let Some(&(Some(batch_no), last_no, _, _)) = found.first() else {
        return Ok(None);
    };
    let rows = found
        .into_iter()
        .filter_map(|(_, _, table, row_id)| {
            Some(ManifestRow {
                table: table?,
                row_id: row_id?,
            })
        })
        .collect();
    Ok(Some(RowBatch {
        batch_no,
        rows,
        last: last_no == Some(batch_no),
    }))
}

/// Marks a batch's rows erased, each table's by its method (masked or
/// deleted), in one statement inside the batch's transaction. Rows kept by
/// policy are marked after it ([`mark_kept`], same transaction).
pub async fn mark_erased(
    tx: &mut Tx,
    request_id: Uuid,
    batch_no: i32,
    erased: &[(&str, &str)],
) -> Result<(), Error> {
    if erased.is_empty() {
        return Ok(());
    }
    on_backend!(tx.conn(), conn =>
        postgres::manifest::mark_erased(conn, request_id, batch_no, erased).await?,
        sqlite::manifest::mark_erased(conn, request_id, batch_no, erased).await?);
    Ok(())
}

/// Marks rows kept unmasked by policy (inside the batch's transaction).
pub async fn mark_kept(tx: &mut Tx, request_id: Uuid, rows: &[ManifestRow]) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    on_backend!(tx.conn(), conn =>
        postgres::manifest::mark_kept(conn, request_id, rows).await?,
        sqlite::manifest::mark_kept(conn, request_id, rows).await?);
    Ok(())
}

/// The rows of the first batch after `after_batch` that verification reads
/// back: every row but those kept by policy.
pub async fn rows_to_verify(
    store: &Store,
    request_id: Uuid,
    after_batch: i32,
) -> Result<Option<RowBatch>, Error> {
    const NOT_KEPT: &str = "(method IS NULL OR method <> 'kept')";
    rows_of_batch_after(store, request_id, after_batch, NOT_KEPT).await
}

/// The anomalies recorded for a request.
pub async fn anomalies(store: &Store, request_id: Uuid) -> Result<Vec<Anomaly>, Error> {
    Ok(on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_as(
            "SELECT kind, table_name, row_id, detail FROM erasure_anomalies \
              WHERE request_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    }))
}
