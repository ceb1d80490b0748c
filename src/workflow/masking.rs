//! S3Cleared -> DbMasked: masking (or deleting, per catalog policy) the
//! manifest's rows, one discovery batch at a time.
//!
//! Each batch runs one statement per table (tasks first, then features,
//! then client rows, so the rows leading to a member go last) and records
//! its checkpoint in the same transaction: the batch is masked and
//! checkpointed together, or neither. This phase starts only after every
//! object is deleted: a masked row no longer says which objects were its.
//! Each row's method (masked, deleted, or kept by the
//! `locked_object_rows = "keep"` policy) is recorded with it, for the
//! destruction record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value, start_phase};
use crate::catalog::{LockedObjectRows, RowErasure};
use crate::error::Error;
use crate::failpoint;
use crate::store::manifest::{self, ManifestRow};
use crate::store::requests::checkpoint::{self, Progress};
use crate::store::{Lease, events, service};

/// The last discovery batch masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cursor {
    pub after_batch: i32,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            after_batch: i32::MIN,
        }
    }
}

pub async fn step(ctx: &Context, lease: &Lease) -> Result<Step, Error> {
    let checkpoint = Checkpoint::load(&ctx.store, lease.request_id).await?;
    let mut total = checkpoint.batch_total;
    if total.is_none() {
        let batches = manifest::count_row_batches(&ctx.store, lease.request_id).await? as i32;
        start_phase(ctx, lease, State::S3Cleared, batches).await?;
        total = Some(batches);
    }
    let cursor: Cursor = checkpoint.cursor()?;
    let next =
        manifest::rows_of_next_batch(&ctx.store, lease.request_id, cursor.after_batch).await?;
    let Some((batch_no, rows)) = next else {
        return advance(ctx, lease, State::S3Cleared).await;
    };
    // The rate limit is paid before the batch starts, so a shutdown during
    // the wait gives the batch up before any row is touched.
    ctx.pace.rows(rows.len()).await?;
    let batch = checkpoint.next_batch();
    batch_started(ctx, lease, Phase::MaskingRows, batch).await?;

    // Policy may keep the rows that reference an object S3 refused to
    // erase, so the object can be found when its lock ends.
    let kept: Vec<ManifestRow> = match ctx.plan.catalog.storage.locked_object_rows {
        LockedObjectRows::Mask => Vec::new(),
        LockedObjectRows::Keep => {
            let retained =
                manifest::rows_referencing_retained(&ctx.store, lease.request_id).await?;
            rows.iter()
                .filter(|row| retained.contains(row))
                .cloned()
                .collect()
        }
    };
    let mut ids_by_table: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for row in rows.iter().filter(|row| !kept.contains(row)) {
        ids_by_table
            .entry(row.table.as_str())
            .or_default()
            .push(row.row_id.clone());
    }

    // Bounded waits: a row the service holds makes the batch give up and
    // retry later, not hold its own locks past a window's close.
    let mut tx = ctx
        .store
        .begin_limited(ctx.settings.masking_limits())
        .await?;
    lease.fence(&mut tx, State::S3Cleared).await?;
    let mut masked = 0u64;
    for table in ctx.plan.erase_order() {
        let name = table.name.to_string();
        if let Some(ids) = ids_by_table.remove(name.as_str()) {
            masked += service::erase(&mut tx, table, &ids).await?;
            let method = match table.erase {
                RowErasure::Mask => "masked",
                RowErasure::Delete => "deleted",
            };
            let except: Vec<String> = kept
                .iter()
                .filter(|row| row.table == name)
                .map(|row| row.row_id.clone())
                .collect();
            manifest::mark_erased(&mut tx, lease.request_id, batch_no, &name, method, &except)
                .await?;
        }
    }
    manifest::mark_kept(&mut tx, lease.request_id, &kept).await?;
    if let Some(table) = ids_by_table.keys().next() {
        // The manifest names a table the catalog no longer has: stop rather
        // than leave its rows unmasked.
        return Err(Error::Permanent {
            id: lease.request_id,
            message: format!(
                "the manifest lists rows of table {table}, which the catalog no longer describes; restore its catalog entry, then `lethe retry`"
            ),
        });
    }
    failpoint::pause_if_armed(Phase::MaskingRows, batch).await;
    let progress = Progress {
        rows_masked: masked as i64,
        ..Progress::default()
    };
    checkpoint::batch_done(
        &mut tx,
        lease,
        &cursor_value(&Cursor {
            after_batch: batch_no,
        }),
        progress,
    )
    .await?;
    let detail = format!("rows {masked}");
    events::record(
        &mut tx,
        lease,
        "batch_committed",
        Some(Phase::MaskingRows),
        Some(batch),
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    tracing::debug!(
        request_id = %lease.request_id, phase = %Phase::MaskingRows, batch, total = ?total,
        rows = masked, "batch committed"
    );
    Ok(Step::Batch {
        phase: Phase::MaskingRows,
        batch,
        total,
    })
}
