//! TargetsFound -> S3Cleared: deleting the manifest's objects, one batch of
//! up to `delete_batch_size` (at most 1,000) at a time, in manifest order.
//!
//! S3 calls are not transactional, so the order within a batch is: record
//! the batch start, call DeleteObjects per bucket, then commit the
//! checkpoint. A crash between the calls and the commit repeats the batch,
//! which is harmless: S3 reports a missing key as deleted. A worker that has
//! lost its lease may still repeat a delete of manifest objects before its
//! fenced commit fails; it can never delete anything outside the manifest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value, start_phase};
use crate::error::Error;
use crate::failpoint;
use crate::objects::{KeyFailure, ObjectErrorKind};
use crate::store::manifest;
use crate::store::requests::checkpoint::{self, Progress};
use crate::store::{Lease, events};

/// The last manifest sequence number deleted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    pub after_seq: i64,
}

pub async fn step(ctx: &Context, lease: &Lease) -> Result<Step, Error> {
    let checkpoint = Checkpoint::load(&ctx.store, lease.request_id).await?;
    let size = i64::from(ctx.settings.delete_batch_size);
    let mut total = checkpoint.batch_total;
    if total.is_none() {
        let mut conn = ctx.store.pool().acquire().await?;
        let objects = manifest::count_objects_to_delete(&mut conn, lease.request_id).await?;
        let batches = ((objects + size - 1) / size) as i32;
        // Also stamps s3_started_at: from here on the request cannot be cancelled.
        start_phase(ctx, lease, State::TargetsFound, batches).await?;
        total = Some(batches);
    }
    let cursor: Cursor = checkpoint.cursor()?;
    let pending = {
        let mut conn = ctx.store.pool().acquire().await?;
        manifest::objects_after(&mut conn, lease.request_id, cursor.after_seq, size).await?
    };
    let Some(last) = pending.last() else {
        return advance(ctx, lease, State::TargetsFound).await;
    };
    let next_cursor = Cursor {
        after_seq: last.seq,
    };
    // The rate limit is paid before the batch starts, so a shutdown during
    // the wait gives the batch up before any object is touched.
    ctx.pace.objects(pending.len()).await?;
    let batch = checkpoint.next_batch();
    batch_started(ctx, lease, Phase::DeletingObjects, batch).await?;

    // One DeleteObjects call per bucket, buckets in order of first appearance
    // so that objects listed inside another object go before it.
    let mut by_bucket: Vec<(String, Vec<String>)> = Vec::new();
    for object in &pending {
        match by_bucket
            .iter_mut()
            .find(|(bucket, _)| *bucket == object.bucket)
        {
            Some((_, keys)) => keys.push(object.key.clone()),
            None => by_bucket.push((object.bucket.clone(), vec![object.key.clone()])),
        }
    }
    let mut refused: BTreeMap<(String, String), Vec<KeyFailure>> = BTreeMap::new();
    for (bucket, keys) in &by_bucket {
        for failure in ctx.objects.delete_keys(bucket, keys).await? {
            refused
                .entry((bucket.clone(), failure.code.clone()))
                .or_default()
                .push(failure);
        }
    }
    if !refused.is_empty() {
        return Err(refusal_error(lease, &refused));
    }
    failpoint::pause_if_armed(Phase::DeletingObjects, batch).await;

    let seqs: Vec<i64> = pending.iter().map(|object| object.seq).collect();
    let mut tx = ctx.store.pool().begin().await?;
    lease.fence(&mut tx, State::TargetsFound).await?;
    manifest::mark_deleted(&mut tx, lease.request_id, &seqs).await?;
    let progress = Progress {
        objects_deleted: seqs.len() as i64,
        ..Progress::default()
    };
    checkpoint::batch_done(&mut tx, lease, &cursor_value(&next_cursor), progress).await?;
    let detail = format!("objects {}", seqs.len());
    events::record(
        &mut tx,
        lease,
        "batch_committed",
        Some(Phase::DeletingObjects),
        Some(batch),
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    tracing::debug!(
        request_id = %lease.request_id, phase = %Phase::DeletingObjects, batch, total = ?total,
        objects = seqs.len(), buckets = by_bucket.len(), "batch committed"
    );
    Ok(Step::Batch {
        phase: Phase::DeletingObjects,
        batch,
        total,
    })
}

/// Turns per-key refusals into one error: transient if any refusal is
/// (the whole batch is retried), permanent otherwise. Names buckets and
/// codes with counts, never keys.
fn refusal_error(lease: &Lease, refused: &BTreeMap<(String, String), Vec<KeyFailure>>) -> Error {
    let summary: Vec<String> = refused
        .iter()
        .map(|((bucket, code), failures)| {
            let message = failures
                .first()
                .map(|f| f.message.as_str())
                .unwrap_or_default();
            format!(
                "{} object(s) in bucket {bucket:?}: {code} ({message})",
                failures.len()
            )
        })
        .collect();
    let transient = refused
        .values()
        .flatten()
        .any(|failure| failure.kind == ObjectErrorKind::Transient);
    let message = format!("S3 refused to delete {}", summary.join("; "));
    if transient {
        Error::Objects(crate::objects::ObjectError::transient(
            "DeleteObjects",
            &refused
                .keys()
                .next()
                .map(|(b, _)| b.clone())
                .unwrap_or_default(),
            message,
        ))
    } else {
        Error::Permanent {
            id: lease.request_id,
            message: format!(
                "{message}; fix the cause (permissions, object lock), then `lethe retry`"
            ),
        }
    }
}
