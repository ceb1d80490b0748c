//! Statements on the manifest and anomalies, PostgreSQL: set-based, one
//! statement per kind per batch (arrays bound and UNNESTed).

use std::collections::HashSet;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Error;
use crate::store::manifest::{Added, Anomaly, ManifestObject, ManifestRow, ObjectEnd};

/// Inserts a batch's rows and objects that the manifest does not hold yet;
/// anomalies are the caller's.
///
/// An entry already there is skipped by a look-up of its key, not
/// `ON CONFLICT` (whose speculative insertion cost as much again as the
/// insert itself), so a batch names each entry once (the first, which keeps
/// its place in the deletion order). The look-up is kept a per-entry probe
/// of the primary key (`OFFSET 0` keeps the planner from turning it into a
/// join): as a hash anti-join it read every entry the request already had,
/// for each batch, so a large member's batches grew ever slower (77 ms
/// against 30 ms for 4,333 rows after 78,000). Every look-up runs before
/// the first insert (the sort in `new` waits for all of them): a manifest
/// table analyzed while empty is probed by scanning its heap, and a probe
/// made while inserting re-read every entry the statement had added so far
/// (4,500 rows into the empty table: 200 ms, against 68 ms with the
/// look-ups first; once the table holds entries, 40-80 ms either way;
/// `ORDER BY` the ordinality would not do: the planner knows it sorted, and
/// `MATERIALIZED` alone is still read as the insert goes). No other
/// transaction writes this request's manifest at the same time: every
/// caller has fenced its lease first, which holds the request's row `FOR
/// UPDATE`.
pub async fn add(
    conn: &mut PgConnection,
    request_id: Uuid,
    batch_no: i32,
    rows: &[ManifestRow],
    objects: &[ManifestObject],
) -> Result<Added, Error> {
    let mut added = Added::default();
    if !rows.is_empty() {
        let rows = first_of_each(rows, |r| (r.table.as_str(), r.row_id.as_str()));
        let tables: Vec<&str> = rows.iter().map(|r| r.table.as_str()).collect();
        let ids: Vec<&str> = rows.iter().map(|r| r.row_id.as_str()).collect();
        added.rows = sqlx::query(
            "WITH new AS MATERIALIZED ( \
                 SELECT t, r FROM UNNEST($3::text[], $4::text[]) AS u(t, r) \
                  WHERE NOT EXISTS (SELECT 1 FROM erasure_manifest_rows m \
                                     WHERE m.request_id = $1 AND m.table_name = t AND m.row_id = r \
                                     OFFSET 0) \
                  ORDER BY t, r) \
             INSERT INTO erasure_manifest_rows (request_id, batch_no, table_name, row_id) \
             SELECT $1, $2, t, r FROM new",
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
        let objects = first_of_each(objects, |o| {
            (o.object.bucket.as_str(), o.object.key.as_str())
        });
        let buckets: Vec<&str> = objects.iter().map(|o| o.object.bucket.as_str()).collect();
        let keys: Vec<&str> = objects.iter().map(|o| o.object.key.as_str()).collect();
        let dispositions: Vec<&str> = objects.iter().map(|o| o.disposition()).collect();
        let sources: Vec<&str> = objects.iter().map(|o| o.source_table.as_str()).collect();
        let source_rows: Vec<&str> = objects.iter().map(|o| o.source_row.as_str()).collect();
        let replica_of: Vec<Option<&str>> =
            objects.iter().map(|o| o.replica_of.as_deref()).collect();
        let containers: Vec<bool> = objects.iter().map(|o| o.container).collect();
        // seq continues after the request's last object, in the order given:
        // the caller lists contained objects before their container.
        let inserted: Vec<String> = sqlx::query_scalar(
            "WITH new AS MATERIALIZED ( \
                 SELECT b, k, d, s, r, p, c, n \
                   FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[]) \
                        WITH ORDINALITY AS u(b, k, d, s, r, p, c, n) \
                  WHERE NOT EXISTS (SELECT 1 FROM erasure_manifest_objects m \
                                     WHERE m.request_id = $1 AND m.bucket = b AND m.object_key = k \
                                     OFFSET 0) \
                  ORDER BY b, k) \
             INSERT INTO erasure_manifest_objects \
                    (request_id, seq, bucket, object_key, disposition, source_table, source_row_id, replica_of, container) \
             SELECT $1, \
                    (SELECT coalesce(max(seq), 0) FROM erasure_manifest_objects WHERE request_id = $1) + n, \
                    b, k, d, s, r, p, c \
               FROM new \
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
    Ok(added)
}

/// The entries in their order, each key once: its first occurrence.
fn first_of_each<'a, T, K: Eq + std::hash::Hash + 'a>(
    entries: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut seen = HashSet::with_capacity(entries.len());
    entries.iter().filter(|e| seen.insert(key(e))).collect()
}

pub async fn record_anomalies(
    conn: &mut PgConnection,
    request_id: Uuid,
    anomalies: &[Anomaly],
) -> Result<(), Error> {
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
    Ok(())
}

pub async fn record_outcomes(
    conn: &mut PgConnection,
    request_id: Uuid,
    ends: &[ObjectEnd],
) -> Result<(), Error> {
    let seqs: Vec<i64> = ends.iter().map(|e| e.seq).collect();
    let outcomes: Vec<&str> = ends.iter().map(|e| e.outcome).collect();
    let versions: Vec<Option<i32>> = ends.iter().map(|e| e.versions).collect();
    let (Some(first), Some(last)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok(());
    };
    // The batch's range of `seq` as well: without it PostgreSQL plans a
    // hash join over every object of the request (a large member's 66,000
    // for each batch of 7,500), with it a scan of the batch's range.
    sqlx::query(
        "UPDATE erasure_manifest_objects m \
            SET outcome = u.o, versions = u.v, deleted_at = coalesce(m.deleted_at, now()) \
           FROM UNNEST($2::bigint[], $3::text[], $4::int[]) AS u(s, o, v) \
          WHERE m.request_id = $1 AND m.seq = u.s AND m.seq BETWEEN $5 AND $6",
    )
    .bind(request_id)
    .bind(&seqs)
    .bind(&outcomes)
    .bind(&versions)
    .bind(first)
    .bind(last)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_erased(
    conn: &mut PgConnection,
    request_id: Uuid,
    batch_no: i32,
    erased: &[(&str, &str)],
) -> Result<(), Error> {
    let tables: Vec<&str> = erased.iter().map(|(table, _)| *table).collect();
    let methods: Vec<&str> = erased.iter().map(|(_, method)| *method).collect();
    sqlx::query(
        "UPDATE erasure_manifest_rows m SET masked_at = now(), method = u.method \
           FROM UNNEST($3::text[], $4::text[]) AS u(t, method) \
          WHERE m.request_id = $1 AND m.batch_no = $2 AND m.table_name = u.t",
    )
    .bind(request_id)
    .bind(batch_no)
    .bind(&tables)
    .bind(&methods)
    .execute(conn)
    .await?;
    Ok(())
}

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
