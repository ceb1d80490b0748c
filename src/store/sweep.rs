//! What the second sweep writes: rows and objects found after the first
//! discovery (a member still writing while being erased, a row the service
//! rewrote after masking), recorded one by one once they are erased. Small
//! by nature (what was written in the minutes an erasure runs), so one
//! statement per item, inside the sweep's transaction.

use uuid::Uuid;

use super::manifest::ManifestRow;
use super::{Store, Tx, on_backend, on_either_backend};
use crate::error::Error;

/// The batch number the sweep's findings are written under: after every
/// discovery batch.
pub async fn next_batch_no(store: &Store, request_id: Uuid) -> Result<i32, Error> {
    Ok(on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_scalar::<_, i32>(
            "SELECT CAST(coalesce(max(batch_no), 0) + 1 AS integer) FROM erasure_manifest_rows WHERE request_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await?
    }))
}

/// Marks a row erased by `method` (masked or deleted), whatever its batch.
pub async fn mark_row_erased(
    tx: &mut Tx,
    request_id: Uuid,
    row: &ManifestRow,
    method: &str,
) -> Result<(), Error> {
    on_backend!(tx.conn(), conn => {
        sqlx::query(
            "UPDATE erasure_manifest_rows SET masked_at = now(), method = $4 \
              WHERE request_id = $1 AND table_name = $2 AND row_id = $3",
        )
        .bind(request_id)
        .bind(&row.table)
        .bind(&row.row_id)
        .bind(method)
        .execute(&mut *conn)
        .await?;
    }, {
        sqlx::query(concat!(
            "UPDATE erasure_manifest_rows SET masked_at = ",
            super::sqlite::now!(),
            ", method = $4 WHERE request_id = $1 AND table_name = $2 AND row_id = $3"
        ))
        .bind(super::sqlite::id(request_id))
        .bind(&row.table)
        .bind(&row.row_id)
        .bind(method)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// Records how an object ended (deleted, scheduled, locked, denied).
pub async fn record_object_outcome(
    tx: &mut Tx,
    request_id: Uuid,
    bucket: &str,
    key: &str,
    outcome: &str,
) -> Result<(), Error> {
    on_backend!(tx.conn(), conn => {
        sqlx::query(
            "UPDATE erasure_manifest_objects SET outcome = $4, deleted_at = coalesce(deleted_at, now()) \
              WHERE request_id = $1 AND bucket = $2 AND object_key = $3",
        )
        .bind(request_id)
        .bind(bucket)
        .bind(key)
        .bind(outcome)
        .execute(&mut *conn)
        .await?;
    }, {
        sqlx::query(concat!(
            "UPDATE erasure_manifest_objects SET outcome = $4, deleted_at = coalesce(deleted_at, ",
            super::sqlite::now!(),
            ") WHERE request_id = $1 AND bucket = $2 AND object_key = $3"
        ))
        .bind(super::sqlite::id(request_id))
        .bind(bucket)
        .bind(key)
        .bind(outcome)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}
