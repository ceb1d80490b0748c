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

use serde::{Deserialize, Serialize};

use super::Context;
use super::batch::{Committed, PhaseRun, ReadAhead};
use super::state::{Phase, State};
use crate::catalog::{LockedObjectRows, RowErasure};
use crate::error::Error;
use crate::pace::Admission;
use crate::store::manifest::{self, ManifestRow, RowBatch};
use crate::store::requests::checkpoint::Progress;
use crate::store::{Lease, Tx, service};

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

/// Masking one request's rows, a discovery batch at a time.
pub struct Masking;

/// A discovery batch's rows, and those policy keeps unmasked.
pub struct Rows {
    batch_no: i32,
    rows: Vec<ManifestRow>,
    kept: Vec<ManifestRow>,
    /// No batch of rows follows it.
    last: bool,
}

impl PhaseRun for Masking {
    type Cursor = Cursor;
    type Work = Rows;
    type Effects = ();
    const FROM: State = State::S3Cleared;
    const PHASE: Phase = Phase::MaskingRows;
    // A batch is the manifest rows of the next discovery batch; its
    // commit records the method of its own rows only.
    const READ_AHEAD: ReadAhead = ReadAhead::Input;

    async fn total(&self, ctx: &Context, lease: &Lease) -> Result<i32, Error> {
        Ok(manifest::count_row_batches(&ctx.store, lease.request_id).await? as i32)
    }

    async fn read(
        &self,
        ctx: &Context,
        lease: &Lease,
        cursor: &Cursor,
    ) -> Result<Option<Rows>, Error> {
        let Some(RowBatch {
            batch_no,
            rows,
            last,
        }) = manifest::rows_of_next_batch(&ctx.store, lease.request_id, cursor.after_batch).await?
        else {
            return Ok(None);
        };
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
        Ok(Some(Rows {
            batch_no,
            rows,
            kept,
            last,
        }))
    }

    async fn pace(&self, ctx: &Context, work: &Rows) -> Admission {
        ctx.pace.rows(work.rows.len()).await
    }

    fn cursor_after(&self, rows: &Rows) -> Cursor {
        Cursor {
            after_batch: rows.batch_no,
        }
    }

    fn is_final(&self, _ctx: &Context, rows: &Rows) -> bool {
        rows.last
    }

    async fn act(
        &self,
        _ctx: &Context,
        _lease: &Lease,
        _batch: i32,
        _work: &Rows,
    ) -> Result<(), Error> {
        // Masking is all inside the batch's transaction.
        Ok(())
    }

    async fn begin(&self, ctx: &Context) -> Result<Tx, Error> {
        // Bounded waits: a row the service holds makes the batch give up
        // and retry later, not hold its own locks past a window's close.
        ctx.store.begin_limited(ctx.settings.masking_limits()).await
    }

    async fn write(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        lease: &Lease,
        _batch: i32,
        work: Rows,
        _: (),
    ) -> Result<Committed, Error> {
        let Rows {
            batch_no,
            rows,
            kept,
            ..
        } = work;
        let mut ids_by_table =
            ManifestRow::keys_by_table(rows.iter().filter(|row| !kept.contains(row)));
        let mut masked = 0u64;
        let mut erased: Vec<(&str, &str)> = Vec::new();
        for table in ctx.plan.erase_order() {
            if let Some((name, ids)) = ids_by_table.remove_entry(table.name.to_string().as_str()) {
                masked += service::erase(tx, table, &ids).await?;
                let method = match table.erase {
                    RowErasure::Mask => "masked",
                    RowErasure::Delete => "deleted",
                };
                erased.push((name, method));
            }
        }
        // The batch's rows of every erased table in one statement, then the
        // rows kept by policy set back to kept.
        manifest::mark_erased(tx, lease.request_id, batch_no, &erased).await?;
        manifest::mark_kept(tx, lease.request_id, &kept).await?;
        if let Some(table) = ids_by_table.keys().next() {
            // The manifest names a table the catalog no longer has: stop
            // rather than leave its rows unmasked.
            return Err(Error::Permanent {
                id: lease.request_id,
                message: format!(
                    "the manifest lists rows of table {table}, which the catalog no longer describes; restore its catalog entry, then `lethe retry`"
                ),
            });
        }
        Ok(Committed {
            progress: Progress {
                rows_masked: masked as i64,
                ..Progress::default()
            },
            detail: format!("rows {masked}"),
        })
    }
}
