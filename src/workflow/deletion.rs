//! TargetsFound -> S3Cleared: erasing the manifest's objects, one batch of
//! up to `delete_batch_size` at a time (DeleteObjects calls of at most
//! 1,000 keys, `s3.concurrency` in flight), in manifest order,
//! each bucket the way its catalog settings say ([`super::s3_erasure`]:
//! delete, delete every version and marker, or tag for expiry).
//!
//! S3 calls are not transactional, so the order within a batch is: record
//! the batch start, erase per bucket, then commit the checkpoint with each
//! object's outcome. A crash between the calls and the commit repeats the
//! batch, which is harmless: S3 reports a missing key as deleted, and a
//! tagged object stays tagged. A worker that has lost its lease may still
//! repeat an erasure of manifest objects before its fenced commit fails; it
//! can never touch anything outside the manifest.
//!
//! An object S3 refuses for good (object lock, legal hold, access denied)
//! is retained: recorded with its outcome and as an anomaly naming the
//! bucket and reason, not retried, and the erasure goes on. A call or key
//! refused for now is sent again alone ([`crate::objects::Resend`]); only
//! one that outlasts the re-sends fails the batch, which the request's
//! durable retry repeats (every object in it is safe to delete again).

use std::collections::{BTreeMap, HashMap};

use super::Context;
use super::batch::{Committed, PhaseRun, ReadAhead};
use super::s3_erasure::{self, ObjectOutcome, Refusal};
use super::side_by_side;
use super::state::{Phase, State};
use crate::catalog::LockedObjectRows;
use crate::error::Error;
use crate::objects::ObjectError;
use crate::objects::buckets::Freshness;
use crate::pace::Admission;
use crate::store::manifest::{self, Anomaly, AnomalyKind, ObjectEnd, PendingObject};
use crate::store::requests::checkpoint::Progress;
use crate::store::{Lease, Tx};

use crate::store::manifest::ObjectCursor as Cursor;

/// Erasing one request's objects, a manifest page at a time.
pub struct Deletion;

/// What a batch's S3 calls came to.
pub struct Erasure {
    ends: Vec<ObjectEnd>,
    anomalies: Vec<Anomaly>,
    retained: usize,
    calls: usize,
}

impl PhaseRun for Deletion {
    type Cursor = Cursor;
    type Work = Vec<PendingObject>;
    type Effects = Erasure;
    const FROM: State = State::TargetsFound;
    const PHASE: Phase = Phase::DeletingObjects;
    // A page is manifest objects after this batch's; its commit records
    // outcomes of its own objects only.
    const READ_AHEAD: ReadAhead = ReadAhead::Input;

    async fn total(&self, ctx: &Context, lease: &Lease) -> Result<i32, Error> {
        // Starting the phase also stamps s3_started_at: from here on the
        // request cannot be cancelled.
        let size = objects_per_batch(ctx);
        let objects = manifest::count_objects_to_delete(&ctx.store, lease.request_id).await?;
        Ok(((objects + size - 1) / size) as i32)
    }

    async fn read(
        &self,
        ctx: &Context,
        lease: &Lease,
        cursor: &Cursor,
    ) -> Result<Option<Vec<PendingObject>>, Error> {
        let size = objects_per_batch(ctx);
        let pending =
            manifest::objects_after(&ctx.store, lease.request_id, cursor.after_seq, size).await?;
        Ok((!pending.is_empty()).then_some(pending))
    }

    async fn pace(&self, ctx: &Context, pending: &Vec<PendingObject>) -> Admission {
        ctx.pace.objects(pending.len()).await
    }

    fn cursor_after(&self, pending: &Vec<PendingObject>) -> Cursor {
        Cursor::after(pending)
    }

    /// The manifest is complete before deletion starts, and a page is read
    /// in `seq` order: one shorter than asked for is the last.
    fn is_final(&self, ctx: &Context, pending: &Vec<PendingObject>) -> bool {
        (pending.len() as i64) < objects_per_batch(ctx)
    }

    async fn act(
        &self,
        ctx: &Context,
        lease: &Lease,
        _batch: i32,
        pending: &Vec<PendingObject>,
    ) -> Result<Erasure, Error> {
        erase_batch(ctx, lease, pending).await
    }

    async fn write(
        &self,
        tx: &mut Tx,
        _ctx: &Context,
        lease: &Lease,
        _batch: i32,
        _pending: Vec<PendingObject>,
        erasure: Erasure,
    ) -> Result<Committed, Error> {
        let Erasure {
            ends,
            anomalies,
            retained,
            calls,
        } = erasure;
        let count = |outcome: ObjectOutcome| {
            ends.iter()
                .filter(|end| end.outcome == outcome.as_str())
                .count() as i64
        };
        let progress = Progress {
            objects_deleted: count(ObjectOutcome::Deleted),
            objects_scheduled: count(ObjectOutcome::Scheduled),
            objects_locked: retained as i64,
            anomalies: anomalies.len() as i32,
            ..Progress::default()
        };
        manifest::record_outcomes(tx, lease.request_id, &ends).await?;
        manifest::record_anomalies(tx, lease.request_id, &anomalies).await?;
        tracing::debug!(calls, "DeleteObjects and tagging calls of the batch");
        Ok(Committed {
            detail: format!(
                "objects {} deleted {} scheduled {} retained {}",
                ends.len(),
                progress.objects_deleted,
                progress.objects_scheduled,
                progress.objects_locked
            ),
            progress,
        })
    }
}

/// Objects per deletion batch: `worker.delete_batch_size`, sent as calls of
/// at most 1,000 keys, `s3.concurrency` at a time — under an object rate
/// limit, at most five seconds' worth, so that a batch's wait for its
/// allowance stays short and a window's close is seen between batches.
fn objects_per_batch(ctx: &Context) -> i64 {
    let size = i64::from(ctx.settings.delete_batch_size.max(1));
    match ctx.settings.max_objects_per_sec {
        0 => size,
        rate => size.min(i64::from(rate) * 5).max(1),
    }
}

/// Erases a page of manifest objects: two rounds, plain objects first, then
/// containers (JSON documents that list other objects), so a container
/// never goes before what it names; within a round, the buckets side by
/// side, each the way it wants (delete, delete every version, or tag).
async fn erase_batch(
    ctx: &Context,
    lease: &Lease,
    pending: &[PendingObject],
) -> Result<Erasure, Error> {
    let mut ends: Vec<ObjectEnd> = Vec::with_capacity(pending.len());
    let mut retained: Vec<(&PendingObject, Refusal)> = Vec::new();
    let mut transient: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut missing_buckets: Vec<String> = Vec::new();
    let mut calls = 0;
    for containers in [false, true] {
        // The keys are borrowed from the batch, not copied: a batch's
        // memory is what bounds a worker's (issue 12).
        let mut by_bucket: Vec<(&str, Vec<&PendingObject>)> = Vec::new();
        for object in pending.iter().filter(|o| o.container == containers) {
            match by_bucket
                .iter_mut()
                .find(|(bucket, _)| *bucket == &*object.bucket)
            {
                Some((_, objects)) => objects.push(object),
                None => by_bucket.push((&object.bucket, vec![object])),
            }
        }
        // The round's buckets are erased side by side, sharing the
        // request's `s3.concurrency` in proportion to their keys.
        let round: usize = by_bucket.iter().map(|(_, objects)| objects.len()).sum();
        let results = side_by_side::all(by_bucket.iter().map(|(bucket, objects)| async move {
            let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
            s3_erasure::erase_in(&ctx.buckets, bucket, &keys, round, Freshness::Cached).await
        }))
        .await;
        for ((bucket, objects), result) in by_bucket.iter().zip(results) {
            calls += 1;
            let result = result?;
            if result.bucket_missing && !missing_buckets.iter().any(|b| b == bucket) {
                missing_buckets.push((*bucket).to_owned());
            }
            for erased in result.erased {
                let object = objects[erased.index];
                ends.push(ObjectEnd {
                    seq: object.seq,
                    outcome: erased.outcome.as_str(),
                    versions: erased.versions,
                });
            }
            // Refusals are matched to the keys sent byte for byte; one for a
            // key this batch did not send is not ours to record (the store
            // already drops those, so this only guards the invariant).
            let mut sent: HashMap<&str, &PendingObject> = HashMap::new();
            for refusal in result.refused {
                if refusal.transient {
                    *transient
                        .entry(((*bucket).to_owned(), refusal.code.clone()))
                        .or_default() += 1;
                    continue;
                }
                if sent.is_empty() {
                    sent = objects.iter().map(|o| (o.key.as_str(), *o)).collect();
                }
                if let Some(object) = sent.get(refusal.key.as_str()) {
                    retained.push((object, refusal));
                }
            }
        }
        // A container waits until everything before it is certainly gone.
        if !transient.is_empty() {
            break;
        }
    }
    if !transient.is_empty() {
        return Err(transient_refusal(&transient));
    }
    let mut anomalies: Vec<Anomaly> = retained
        .iter()
        .map(|(object, refusal)| retained_anomaly(ctx, object, refusal))
        .collect();
    anomalies.extend(new_missing_bucket_anomalies(ctx, lease, &missing_buckets).await?);
    for (object, refusal) in &retained {
        ends.push(ObjectEnd {
            seq: object.seq,
            outcome: refusal.outcome().as_str(),
            versions: None,
        });
        tracing::warn!(
            bucket = %object.bucket, reason = %refusal.reason,
            "S3 refused to erase an object for good; it is retained and recorded as an anomaly"
        );
    }
    Ok(Erasure {
        ends,
        anomalies,
        retained: retained.len(),
        calls,
    })
}

/// The anomaly for an object S3 refused for good: names the bucket, the
/// reason and what became of the rows, never the key.
pub fn retained_anomaly(ctx: &Context, object: &PendingObject, refusal: &Refusal) -> Anomaly {
    let (kind, what) = match refusal.outcome() {
        ObjectOutcome::Locked => (AnomalyKind::RetainedByLock, "object lock or legal hold"),
        _ => (AnomalyKind::ErasureRefused, "a permanent refusal"),
    };
    let rows = match ctx.plan.catalog.storage.locked_object_rows {
        LockedObjectRows::Mask => {
            "the rows referencing it are masked (storage.locked_object_rows = \"mask\")"
        }
        LockedObjectRows::Keep => {
            "the row referencing it is kept unmasked so it can be found again (storage.locked_object_rows = \"keep\")"
        }
    };
    Anomaly {
        kind: kind.as_str().to_owned(),
        table_name: Some(object.source_table.to_string()),
        row_id: object.source_row.clone(),
        detail: format!(
            "bucket {:?}: S3 refused to erase an object ({}), which is {what}: the object is retained, \
             not retried, and reported as retained; {rows}",
            object.bucket, refusal.reason
        ),
    }
}

/// The anomaly for a catalogued bucket S3 says does not exist: its objects
/// are gone with it, which is recorded once per request, never as an error
/// that would fail every member for ever.
pub fn missing_bucket_anomaly(bucket: &str) -> Anomaly {
    Anomaly {
        kind: AnomalyKind::BucketMissing.as_str().to_owned(),
        table_name: None,
        row_id: None,
        detail: format!(
            "bucket {bucket:?} does not exist (S3 answered NoSuchBucket): the objects the manifest \
             lists in it are gone with it and count as deleted; if the bucket was renamed, moved \
             or is reached through another endpoint or region, fix the catalog and submit the \
             member again"
        ),
    }
}

/// The missing-bucket anomalies this request does not have yet.
pub async fn new_missing_bucket_anomalies(
    ctx: &Context,
    lease: &Lease,
    buckets: &[String],
) -> Result<Vec<Anomaly>, Error> {
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let recorded = manifest::anomalies(&ctx.store, lease.request_id).await?;
    Ok(buckets
        .iter()
        .map(|bucket| missing_bucket_anomaly(bucket))
        .filter(|anomaly| {
            !recorded
                .iter()
                .any(|r| r.kind == anomaly.kind && r.detail == anomaly.detail)
        })
        .collect())
}

/// A transient per-key refusal retries the whole batch. Names buckets and
/// codes with counts, never keys.
fn transient_refusal(refused: &BTreeMap<(String, String), usize>) -> Error {
    let summary: Vec<String> = refused
        .iter()
        .map(|((bucket, code), n)| format!("{n} object(s) in bucket {bucket:?}: {code}"))
        .collect();
    let bucket = refused
        .keys()
        .next()
        .map(|(bucket, _)| bucket.clone())
        .unwrap_or_default();
    Error::Objects(ObjectError::transient(
        "DeleteObjects",
        &bucket,
        format!("S3 refused to erase {} for now", summary.join("; ")),
    ))
}
