//! DbMasked -> Done: reading back what the erasure claims. A DeleteObjects
//! response is not proof (S3 reports keys that never existed as deleted), so
//! every manifest object is checked with HeadObject, a page at a time; a
//! survivor is deleted once more and checked again, and if it is still there
//! the request stops with the bucket named. Then every manifest row's
//! catalogued columns are read back. Only a clean read-back reaches Done.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value, start_phase};
use crate::error::Error;
use crate::store::manifest;
use crate::store::requests::checkpoint::{self, Progress};
use crate::store::{Lease, events};

/// Objects are verified in pages of this many HeadObject calls.
const OBJECTS_PER_BATCH: i64 = 1000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// The last manifest object verified.
    pub after_seq: i64,
}

pub async fn step(ctx: &Context, lease: &Lease, subject: &str) -> Result<Step, Error> {
    let checkpoint = Checkpoint::load(&ctx.store, lease.request_id).await?;
    let mut total = checkpoint.batch_total;
    if total.is_none() {
        let mut conn = ctx.store.pool().acquire().await?;
        let objects = manifest::count_objects_to_delete(&mut conn, lease.request_id).await?;
        drop(conn);
        // Object pages, plus one batch for the rows.
        let batches = ((objects + OBJECTS_PER_BATCH - 1) / OBJECTS_PER_BATCH) as i32 + 1;
        start_phase(ctx, lease, State::DbMasked, batches).await?;
        total = Some(batches);
    }
    let cursor: Cursor = checkpoint.cursor()?;
    let page = {
        let mut conn = ctx.store.pool().acquire().await?;
        manifest::objects_after(
            &mut conn,
            lease.request_id,
            cursor.after_seq,
            OBJECTS_PER_BATCH,
        )
        .await?
    };
    let batch = checkpoint.next_batch();
    batch_started(ctx, lease, Phase::Verifying, batch).await?;
    let Some(last) = page.last() else {
        verify_rows(ctx, lease).await?;
        verify_nothing_left(ctx, lease, subject).await?;
        return advance(ctx, lease, State::DbMasked).await;
    };
    let next_cursor = Cursor {
        after_seq: last.seq,
    };

    let mut by_bucket: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for object in &page {
        by_bucket
            .entry(object.bucket.as_str())
            .or_default()
            .push(object.key.clone());
    }
    for (bucket, keys) in by_bucket {
        let survivors = ctx.objects.existing(bucket, keys).await?;
        if survivors.is_empty() {
            continue;
        }
        // Something put them back, or the delete was lost: once more.
        tracing::warn!(
            request_id = %lease.request_id, bucket, survivors = survivors.len(),
            "objects still exist after deletion; deleting them again"
        );
        for chunk in survivors.chunks(crate::objects::MAX_KEYS_PER_DELETE) {
            ctx.objects.delete_keys(bucket, chunk).await?;
        }
        let still = ctx.objects.existing(bucket, survivors).await?;
        if !still.is_empty() {
            return Err(Error::Permanent {
                id: lease.request_id,
                message: format!(
                    "{} object(s) in bucket {bucket:?} still exist after being deleted twice; \
                     check object lock, versioning and replication on the bucket, then `lethe retry`",
                    still.len()
                ),
            });
        }
    }

    let mut tx = ctx.store.pool().begin().await?;
    lease.fence(&mut tx, State::DbMasked).await?;
    checkpoint::batch_done(
        &mut tx,
        lease,
        &cursor_value(&next_cursor),
        Progress::default(),
    )
    .await?;
    let detail = format!("objects checked {}", page.len());
    events::record(
        &mut tx,
        lease,
        "batch_committed",
        Some(Phase::Verifying),
        Some(batch),
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    Ok(Step::Batch {
        phase: Phase::Verifying,
        batch,
        total,
    })
}

/// Checks every manifest row's catalogued columns, batch by batch.
async fn verify_rows(ctx: &Context, lease: &Lease) -> Result<(), Error> {
    let mut after_batch = i32::MIN;
    loop {
        let next = {
            let mut conn = ctx.store.pool().acquire().await?;
            manifest::rows_of_next_batch(&mut conn, lease.request_id, after_batch).await?
        };
        let Some((batch_no, rows)) = next else {
            return Ok(());
        };
        after_batch = batch_no;
        let mut ids_by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for row in &rows {
            ids_by_table
                .entry(row.table.as_str())
                .or_default()
                .push(row.row_id.clone());
        }
        for (table, ids) in ids_by_table {
            let Some(plan) = ctx.plan.tables.get(table) else {
                return Err(Error::Permanent {
                    id: lease.request_id,
                    message: format!(
                        "cannot verify table {table}: the catalog no longer describes it"
                    ),
                });
            };
            let unerased = plan.count_unerased(ctx.store.pool(), &ids).await?;
            if unerased > 0 {
                return Err(Error::Permanent {
                    id: lease.request_id,
                    message: format!(
                        "verification: {unerased} row(s) of table {table} still hold unmasked values after masking \
                         (something wrote to them afterwards); stop that writer, then `lethe retry` to verify again"
                    ),
                });
            }
        }
    }
}

/// Checks that no client row still carries the subject key: every row
/// discovery found is masked by now, so one that still matches was missed
/// (or added after discovery). Either way the erasure is not complete.
async fn verify_nothing_left(ctx: &Context, lease: &Lease, subject: &str) -> Result<(), Error> {
    for client in ctx.plan.clients.iter().filter(|c| c.erases_subject) {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(client.count_sql.as_str()))
            .bind(subject)
            .fetch_one(ctx.store.pool())
            .await?;
        if left > 0 {
            return Err(Error::Permanent {
                id: lease.request_id,
                message: format!(
                    "verification: {left} row(s) of table {} still carry the member's key after masking; \
                     they were not in the manifest (written after discovery?). Stop whatever writes them; \
                     the request stays failed so that this is looked at",
                    client.table
                ),
            });
        }
    }
    Ok(())
}
