//! DbMasked -> Done: reading back what the erasure claims. A DeleteObjects
//! response is not proof (S3 reports keys that never existed as deleted), so
//! every manifest object is read back a checkpointed page at a time (a call
//! that fails for now is sent again alone, see [`crate::objects::Resend`]:
//! one error never restarts the page), each bucket the way
//! it was erased: a listing per prefix group (or HeadObject where a listing
//! cannot answer) in an unversioned bucket, ListObjectVersions
//! (once per prefix group, not per key) in a versioned one, and the tag in a
//! tag-and-expire one. A survivor is erased once more and read back again;
//! if it is still there the request stops with the bucket named (never the
//! key). Every manifest row's catalogued columns are read back too, a
//! discovery batch's rows alongside each page of objects (the one waits on
//! S3, the other on the database), and at the end no client row may still
//! carry the member's key. A row found holding values again sends every
//! row to be read afresh at the end, where the sweep takes it
//! ([`super::sweep`]). Only a clean read-back reaches Done
//! ([`super::completion`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::{Committed, PhaseRun, ReadAhead};
use super::s3_erasure::{self, Refusal};
use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, batch_started, completion, cursor_value, sweep};
use crate::error::Error;
use crate::objects::ObjectError;
use crate::objects::buckets::Freshness;
use crate::store::events::EventKind;
use crate::store::manifest::{self, Anomaly, ObjectCursor, ObjectEnd, PendingObject, RowBatch};
use crate::store::requests::checkpoint::Progress;
use crate::store::{Lease, Tx, events};

/// Objects are verified in pages of this many read-backs (HeadObject calls
/// sent `s3.concurrency` at a time, or listings), each page checkpointed: a
/// page that fails (a call that outlasted its re-sends) repeats at most this
/// many read-backs, and the pages before it stand.
const OBJECTS_PER_BATCH: i64 = 4000;

/// Where verification stands: the objects read back, and how far the
/// manifest's rows were read back alongside them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(flatten)]
    objects: ObjectCursor,
    /// A checkpoint written before rows were read alongside the objects
    /// has none: its rows are all read at the end.
    #[serde(default = "RowsRead::at_end")]
    rows: RowsRead,
}

/// How the manifest's rows are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RowsRead {
    /// Alongside the object pages, a discovery batch a page: every batch up
    /// to `after_batch` read back and still masked (`checked` rows); `done`
    /// once the last batch was.
    Alongside {
        after_batch: i32,
        checked: i64,
        done: bool,
    },
    /// All of them at the end, afresh: a row read alongside held values
    /// again, or a sweep ran since.
    AtEnd,
}

impl RowsRead {
    fn at_end() -> RowsRead {
        RowsRead::AtEnd
    }
}

impl Default for RowsRead {
    fn default() -> Self {
        RowsRead::Alongside {
            after_batch: i32::MIN,
            checked: 0,
            done: false,
        }
    }
}

/// Reading one request's erasure back.
pub struct Verification<'a> {
    pub subject: &'a str,
}

/// A page of objects to read back, and the discovery batch of rows read
/// back alongside it.
pub struct Page {
    objects: Vec<PendingObject>,
    rows: Option<RowBatch>,
    /// How the rows stood before this page.
    rows_before: RowsRead,
}

/// What a page's read-back found.
pub struct ReadBack {
    ends: Vec<ObjectEnd>,
    anomalies: Vec<Anomaly>,
    survivors_found: i64,
    /// A row read back alongside held values again.
    rows_rewritten: bool,
}

impl PhaseRun for Verification<'_> {
    type Cursor = Cursor;
    type Work = Page;
    type Effects = ReadBack;
    const FROM: State = State::DbMasked;
    const PHASE: Phase = Phase::Verifying;
    // A page is manifest objects after this batch's; its commit records
    // outcomes of its own objects only.
    const READ_AHEAD: ReadAhead = ReadAhead::Input;
    // Its end is not a plain advance: sweeps, then the record.
    const ENDS_BY_ADVANCING: bool = false;

    async fn total(&self, ctx: &Context, lease: &Lease) -> Result<i32, Error> {
        let objects = manifest::count_objects_to_delete(&ctx.store, lease.request_id).await?;
        Ok(self.total_of(((objects + OBJECTS_PER_BATCH - 1) / OBJECTS_PER_BATCH) as i32))
    }

    /// Object pages, plus one batch for the rows.
    fn total_of(&self, pages: i32) -> i32 {
        pages + 1
    }

    async fn read(
        &self,
        ctx: &Context,
        lease: &Lease,
        cursor: &Cursor,
    ) -> Result<Option<Page>, Error> {
        let objects = manifest::objects_after(
            &ctx.store,
            lease.request_id,
            cursor.objects.after_seq,
            OBJECTS_PER_BATCH,
        )
        .await?;
        if objects.is_empty() {
            // Rows left unread are read at the end.
            return Ok(None);
        }
        let rows = match cursor.rows {
            RowsRead::Alongside {
                after_batch,
                done: false,
                ..
            } => manifest::rows_to_verify(&ctx.store, lease.request_id, after_batch).await?,
            _ => None,
        };
        Ok(Some(Page {
            objects,
            rows,
            rows_before: cursor.rows,
        }))
    }

    fn cursor_after(&self, page: &Page) -> Cursor {
        let rows = match (page.rows_before, &page.rows) {
            (RowsRead::AtEnd, _) => RowsRead::AtEnd,
            (RowsRead::Alongside { checked, .. }, Some(batch)) => RowsRead::Alongside {
                after_batch: batch.batch_no,
                checked: checked + batch.rows.len() as i64,
                done: batch.last,
            },
            // Nothing was left to read alongside.
            (
                RowsRead::Alongside {
                    after_batch,
                    checked,
                    ..
                },
                None,
            ) => RowsRead::Alongside {
                after_batch,
                checked,
                done: true,
            },
        };
        Cursor {
            objects: ObjectCursor::after(&page.objects),
            rows,
        }
    }

    /// A row read back alongside held values again: every row is read
    /// again at the end, where the sweep takes what is found.
    fn cursor_found(&self, after: &Cursor, found: &ReadBack) -> Option<Cursor> {
        found.rows_rewritten.then(|| Cursor {
            objects: after.objects.clone(),
            rows: RowsRead::AtEnd,
        })
    }

    /// A page shorter than asked for is the last.
    fn is_final(&self, _ctx: &Context, page: &Page) -> bool {
        (page.objects.len() as i64) < OBJECTS_PER_BATCH
    }

    /// The page's objects are read back from S3 while its rows are read
    /// back from the database.
    async fn act(
        &self,
        ctx: &Context,
        lease: &Lease,
        batch: i32,
        page: &Page,
    ) -> Result<ReadBack, Error> {
        let rows = async {
            match &page.rows {
                Some(batch) => sweep::rewritten(ctx, lease, &batch.rows).await,
                None => Ok(Vec::new()),
            }
        };
        let (mut found, rewritten) =
            tokio::try_join!(read_back(ctx, lease, batch, &page.objects), rows)?;
        found.rows_rewritten = !rewritten.is_empty();
        Ok(found)
    }

    async fn write(
        &self,
        tx: &mut Tx,
        _ctx: &Context,
        lease: &Lease,
        _batch: i32,
        page: Page,
        found: ReadBack,
    ) -> Result<Committed, Error> {
        let page = page.objects;
        manifest::record_outcomes(tx, lease.request_id, &found.ends).await?;
        manifest::record_anomalies(tx, lease.request_id, &found.anomalies).await?;
        Ok(Committed {
            progress: Progress {
                objects_locked: found.ends.len() as i64,
                anomalies: found.anomalies.len() as i32,
                objects_verified: page.len() as i64,
                survivors_found: found.survivors_found,
                ..Progress::default()
            },
            detail: format!(
                "objects checked {} survivors {} retained {}",
                page.len(),
                found.survivors_found,
                found.ends.len()
            ),
        })
    }

    /// Every object is read back: the rows next, what was written after
    /// discovery swept, and only a clean read-back reaches Done.
    async fn finish(
        &self,
        ctx: &Context,
        lease: &Lease,
        checkpoint: &Checkpoint,
        total: Option<i32>,
    ) -> Result<Step, Error> {
        // This step's start is recorded before what it changes: before a
        // sweep, or in Done's own commit. Reading the rows back changes
        // nothing.
        let batch = checkpoint.next_batch();
        let cursor: Cursor = checkpoint.cursor()?;
        let reading = std::time::Instant::now();
        let (left, rows) = match cursor.rows {
            RowsRead::Alongside {
                after_batch,
                checked,
                done,
            } => {
                let after = (!done).then_some(after_batch);
                let (left, more) = sweep::leftovers(ctx, lease, self.subject, after).await?;
                (left, checked + more)
            }
            RowsRead::AtEnd => sweep::leftovers(ctx, lease, self.subject, Some(i32::MIN)).await?,
        };
        tracing::debug!(
            rows,
            elapsed_ms = reading.elapsed().as_millis() as u64,
            "rows read back"
        );
        if !left.is_empty() {
            // Written after discovery: swept, then read back again (the
            // objects it added come after the cursor, and every row is read
            // again at the end).
            batch_started(ctx, lease, Phase::Verifying, batch).await?;
            let cursor = cursor_value(&Cursor {
                rows: RowsRead::AtEnd,
                ..cursor
            });
            sweep::run(ctx, lease, self.subject, &left, &cursor).await?;
            // It deleted: what is read back next rests on a new answer.
            ctx.buckets.forget_verifying(lease.request_id);
            return Ok(Step::Batch {
                phase: Phase::Verifying,
                batch,
                total,
                advanced: None,
                counters: None,
                checkpoint: None,
            });
        }
        refuse_unnamed_rows(lease, &left)?;
        ctx.buckets.forget_verifying(lease.request_id);
        completion::finish(ctx, lease, self.subject, rows, batch).await
    }
}

/// Reads a page back, bucket by bucket; a survivor is erased once more and
/// read back again.
async fn read_back(
    ctx: &Context,
    lease: &Lease,
    batch: i32,
    page: &[PendingObject],
) -> Result<ReadBack, Error> {
    let mut by_bucket: BTreeMap<&str, Vec<&PendingObject>> = BTreeMap::new();
    for object in page {
        by_bucket.entry(&*object.bucket).or_default().push(object);
    }
    let mut survivors_found = 0i64;
    let mut retained: Vec<(&PendingObject, Refusal)> = Vec::new();
    let mut found = read_back_buckets(ctx, lease, &by_bucket).await?;
    let mut missing_buckets: Vec<String> = Vec::new();
    for (bucket, objects) in by_bucket {
        let survivors = match found.remove(bucket) {
            Some(Some(survivors)) => survivors,
            // A bucket that no longer exists holds nothing.
            Some(None) => {
                missing_buckets.push(bucket.to_owned());
                continue;
            }
            None => {
                return Err(Error::Invariant(format!(
                    "bucket {bucket:?} was not read back"
                )));
            }
        };
        if survivors.is_empty() {
            continue;
        }
        survivors_found += survivors.len() as i64;
        // Something put them back, or the erasure was lost: once more.
        tracing::warn!(
            bucket,
            survivors = survivors.len(),
            "objects still there after erasure; erasing them again"
        );
        let detail = format!(
            "bucket {bucket:?}: {} object(s) erased again",
            survivors.len()
        );
        events::record_now(
            &ctx.store,
            lease,
            EventKind::SurvivorsFound,
            Some(Phase::Verifying),
            Some(batch),
            Some(&detail),
        )
        .await?;
        // Deleting again: asked afresh, and the next read-back asks again.
        ctx.buckets.forget_verifying(lease.request_id);
        let view = ctx.buckets.view(bucket, Freshness::Fresh).await?;
        let again = s3_erasure::erase(&view, &survivors).await?;
        let mut refused_keys = Vec::new();
        for refusal in again.refused {
            if refusal.transient {
                return Err(Error::Objects(ObjectError::transient(
                    "DeleteObjects",
                    bucket,
                    format!("S3 refused to erase a survivor for now: {}", refusal.code),
                )));
            }
            // Matched byte for byte to a key sent; an answer for any other
            // key is not ours to record (the read-back below still sees
            // whatever is left).
            let Some(object) = objects.iter().find(|o| o.key == refusal.key) else {
                continue;
            };
            refused_keys.push(refusal.key.clone());
            retained.push((object, refusal));
        }
        let erased: Vec<String> = survivors
            .into_iter()
            .filter(|key| !refused_keys.contains(key))
            .collect();
        let still = s3_erasure::survivors(&view, &erased).await?;
        if !still.is_empty() {
            return Err(Error::Permanent {
                id: lease.request_id,
                message: format!(
                    "verification: {} object(s) in bucket {bucket:?} are still there after being erased twice \
                     (the server reported them erased: its response is not proof); check object lock, \
                     versioning, replication and lifecycle on the bucket and whatever writes to it, then `lethe retry`",
                    still.len()
                ),
            });
        }
    }

    let mut anomalies: Vec<Anomaly> = retained
        .iter()
        .map(|(object, refusal)| super::deletion::retained_anomaly(ctx, object, refusal))
        .collect();
    anomalies
        .extend(super::deletion::new_missing_bucket_anomalies(ctx, lease, &missing_buckets).await?);
    let ends: Vec<ObjectEnd> = retained
        .iter()
        .map(|(object, refusal)| ObjectEnd {
            seq: object.seq,
            outcome: refusal.outcome().as_str(),
            versions: None,
        })
        .collect();
    Ok(ReadBack {
        ends,
        anomalies,
        survivors_found,
        rows_rewritten: false,
    })
}

/// Which of a page's objects each bucket still holds (`None`: the bucket
/// does not exist). The buckets are read back side by side, the request's
/// `s3.concurrency` shared between them in proportion to their keys, so a
/// page costs about one bucket's round of calls, not one per bucket.
/// Versioning is asked after the request's deletions: the proof must not
/// rest on a cached "unversioned" (objects/buckets.rs).
async fn read_back_buckets(
    ctx: &Context,
    lease: &Lease,
    by_bucket: &BTreeMap<&str, Vec<&PendingObject>>,
) -> Result<BTreeMap<String, Option<Vec<String>>>, Error> {
    let total: usize = by_bucket.values().map(Vec::len).sum();
    let mut found = BTreeMap::new();
    let mut running = tokio::task::JoinSet::new();
    for (bucket, objects) in by_bucket {
        let view = match ctx
            .buckets
            .view(bucket, Freshness::Verifying(lease.request_id))
            .await
        {
            Ok(view) => view,
            Err(err) if err.is_no_such_bucket() => {
                found.insert((*bucket).to_owned(), None);
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        let mut view = view;
        view.store = view.store.with_share(objects.len(), total);
        let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
        let name = (*bucket).to_owned();
        running.spawn(async move {
            let survivors = s3_erasure::survivors(&view, &keys).await;
            (name, survivors)
        });
    }
    while let Some(joined) = running.join_next().await {
        let (bucket, survivors) = match joined {
            Ok(answer) => answer,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => {
                return Err(Error::Objects(ObjectError::transient(
                    "S3 read-back",
                    "",
                    format!("a read-back task ended early: {err}"),
                )));
            }
        };
        match survivors {
            Ok(keys) => found.insert(bucket, Some(keys)),
            Err(err) if err.is_no_such_bucket() => found.insert(bucket, None),
            Err(err) => return Err(err.into()),
        };
    }
    Ok(found)
}

/// The member's rows that cannot be named (a NULL key column, reported at
/// discovery) still carry their key: the erasure cannot be proven complete.
fn refuse_unnamed_rows(lease: &Lease, left: &sweep::Leftovers) -> Result<(), Error> {
    match left.unnamed.first() {
        None => Ok(()),
        Some((table, unnamed)) => Err(Error::Permanent {
            id: lease.request_id,
            message: format!(
                "verification: {unnamed} row(s) of table {table} still carry the member's key and have a NULL key, \
                 so lethe cannot erase them (see the unaddressable_row anomaly); give them a key, then `lethe retry`"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_phase_reads_rows_alongside_and_an_older_checkpoint_reads_them_at_the_end() {
        let fresh: Cursor = serde_json::from_value(cursor_value(&Cursor::default())).unwrap();
        assert_eq!(fresh.rows, RowsRead::default());
        assert!(matches!(
            fresh.rows,
            RowsRead::Alongside {
                after_batch: i32::MIN,
                checked: 0,
                done: false
            }
        ));
        // Written by a worker that read every row at the end: nothing says
        // which rows were read, so all of them are.
        let older: Cursor = serde_json::from_value(serde_json::json!({"after_seq": 4000})).unwrap();
        assert_eq!(older.objects.after_seq, 4000);
        assert_eq!(older.rows, RowsRead::AtEnd);
    }

    #[test]
    fn a_row_found_written_again_sends_every_row_to_the_end() {
        let after = Cursor {
            objects: ObjectCursor { after_seq: 8000 },
            rows: RowsRead::Alongside {
                after_batch: 2,
                checked: 900,
                done: false,
            },
        };
        let found = |rows_rewritten| ReadBack {
            ends: Vec::new(),
            anomalies: Vec::new(),
            survivors_found: 0,
            rows_rewritten,
        };
        let verification = Verification { subject: "member" };
        assert!(verification.cursor_found(&after, &found(false)).is_none());
        let moved = verification.cursor_found(&after, &found(true)).unwrap();
        assert_eq!(moved.objects.after_seq, 8000);
        assert_eq!(moved.rows, RowsRead::AtEnd);
    }
}
