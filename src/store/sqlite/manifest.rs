//! Statements on the manifest and anomalies, SQLite. SQLite runs in
//! process and has no arrays, so a batch is written one prepared statement
//! per item (sqlx caches the statement), inside the batch's transaction;
//! sets read back are bound as one JSON array.

use sqlx::SqliteConnection;
use uuid::Uuid;

use super::{id, now};
use crate::error::Error;
use crate::store::manifest::{Added, Anomaly, ManifestObject, ManifestRow, ObjectEnd};

/// Inserts a batch's rows and objects; anomalies are the caller's.
pub async fn add(
    conn: &mut SqliteConnection,
    request_id: Uuid,
    batch_no: i32,
    rows: &[ManifestRow],
    objects: &[ManifestObject],
) -> Result<Added, Error> {
    let request = id(request_id);
    let mut added = Added::default();
    for row in rows {
        added.rows += sqlx::query(
            "INSERT INTO erasure_manifest_rows (request_id, batch_no, table_name, row_id) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(request)
        .bind(batch_no)
        .bind(&row.table)
        .bind(&row.row_id)
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
    }
    if objects.is_empty() {
        return Ok(added);
    }
    // seq continues after the request's last object, in the order given:
    // the caller lists contained objects before their container. The write
    // lock keeps the maximum from moving under us.
    let mut seq: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(seq), 0) FROM erasure_manifest_objects WHERE request_id = $1",
    )
    .bind(request)
    .fetch_one(&mut *conn)
    .await?;
    for object in objects {
        seq += 1;
        let inserted = sqlx::query(
            "INSERT INTO erasure_manifest_objects \
                    (request_id, seq, bucket, object_key, disposition, source_table, source_row_id, \
                     replica_of, container) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(request)
        .bind(seq)
        .bind(&object.object.bucket)
        .bind(&object.object.key)
        .bind(object.disposition())
        .bind(&object.source_table)
        .bind(&object.source_row)
        .bind(object.replica_of.as_deref())
        .bind(object.container)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            if object.protected {
                added.objects_retained += 1;
            } else {
                added.objects_to_delete += 1;
            }
        }
    }
    Ok(added)
}

pub async fn record_anomalies(
    conn: &mut SqliteConnection,
    request_id: Uuid,
    anomalies: &[Anomaly],
) -> Result<(), Error> {
    for anomaly in anomalies {
        sqlx::query(
            "INSERT INTO erasure_anomalies (request_id, kind, table_name, row_id, detail) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id(request_id))
        .bind(&anomaly.kind)
        .bind(anomaly.table_name.as_deref())
        .bind(anomaly.row_id.as_deref())
        .bind(&anomaly.detail)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn record_outcomes(
    conn: &mut SqliteConnection,
    request_id: Uuid,
    ends: &[ObjectEnd],
) -> Result<(), Error> {
    for end in ends {
        sqlx::query(concat!(
            "UPDATE erasure_manifest_objects SET outcome = $3, versions = $4, deleted_at = coalesce(deleted_at, ",
            now!(),
            ") WHERE request_id = $1 AND seq = $2"
        ))
        .bind(id(request_id))
        .bind(end.seq)
        .bind(end.outcome)
        .bind(end.versions)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn mark_erased(
    conn: &mut SqliteConnection,
    request_id: Uuid,
    batch_no: i32,
    erased: &[(&str, &str)],
) -> Result<(), Error> {
    let methods: serde_json::Map<String, serde_json::Value> = erased
        .iter()
        .map(|(table, method)| ((*table).to_owned(), (*method).into()))
        .collect();
    sqlx::query(concat!(
        "UPDATE erasure_manifest_rows SET masked_at = ",
        now!(),
        ", method = (SELECT value FROM json_each($3) WHERE key = table_name) \
          WHERE request_id = $1 AND batch_no = $2 \
            AND table_name IN (SELECT key FROM json_each($3))"
    ))
    .bind(id(request_id))
    .bind(batch_no)
    .bind(serde_json::Value::Object(methods).to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_kept(
    conn: &mut SqliteConnection,
    request_id: Uuid,
    rows: &[ManifestRow],
) -> Result<(), Error> {
    for row in rows {
        sqlx::query(
            "UPDATE erasure_manifest_rows SET method = 'kept', masked_at = NULL \
              WHERE request_id = $1 AND table_name = $2 AND row_id = $3",
        )
        .bind(id(request_id))
        .bind(&row.table)
        .bind(&row.row_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
