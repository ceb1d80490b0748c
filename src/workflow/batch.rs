//! One shape for every phase's step, written once: load the checkpoint,
//! read the next batch's input, pay the load limit, record the batch's
//! start (with the phase's batch total, when it is the first), do the
//! batch's work, then in ONE fenced transaction write its outcome, its
//! checkpoint and its `batch_committed` event — and, when it was the
//! phase's last batch, the advance to the next milestone — and commit. A
//! phase ([`PhaseRun`]) supplies only what it reads, what it does (its S3
//! or SQL work) and what it writes, the way underway's steps return a
//! transition and its runner does the rest.
//!
//! The rule this module keeps: a batch's effects on lethe's tables and its
//! checkpoint commit together or not at all, under a lease fence, so a crash
//! anywhere repeats at most the one batch in flight. Transactions are few
//! (a small erasure's phase is one batch: its start and its commit): a
//! phase with no work is not started at all, and the last batch advances
//! the request in its own commit. The next batch is prepared while this
//! one is done ([`ReadAhead`], held in an [`Ahead`]): where a phase's input
//! is lethe's own manifest (deletion, masking, verification) it is read
//! while this batch works and commits; where its work only reads
//! (discovery) it is also worked out while this one commits. Either way
//! the prepared batch wrote nothing, so a crash still repeats one batch.

use std::any::Any;
use std::future::Future;
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value};
use crate::error::Error;
use crate::failpoint;
use crate::pace::Admission;
use crate::store::events::EventKind;
use crate::store::requests::Counters;
use crate::store::requests::checkpoint::{self, CommitEvent, Progress};
use crate::store::{Lease, Tx};

/// What a batch's write leaves for the runner to commit with it.
pub struct Committed {
    pub progress: Progress,
    /// The `batch_committed` event's detail (counts; never keys).
    pub detail: String,
}

/// One phase of the workflow, as the runner drives it.
pub trait PhaseRun: Sync {
    /// Where the phase stands between batches (stored as JSON).
    type Cursor: Serialize + DeserializeOwned + Default + Send + Sync;
    /// A batch's input, read before anything is done.
    type Work: Send + Sync + 'static;
    /// What the batch's work outside the database produced.
    type Effects: Send + 'static;

    /// The milestone the phase starts from.
    const FROM: State;
    /// Its name in events and progress.
    const PHASE: Phase;
    /// Whether the phase ends by advancing to the next milestone (the
    /// default [`PhaseRun::finish`]), so that its last batch may advance in
    /// its own transaction.
    const ENDS_BY_ADVANCING: bool = true;
    /// How much of the next batch is prepared while this one is done.
    const READ_AHEAD: ReadAhead = ReadAhead::Nothing;

    /// How many batches the phase has, counted when it starts with more
    /// than one page of input.
    fn total(
        &self,
        ctx: &Context,
        lease: &Lease,
    ) -> impl Future<Output = Result<i32, Error>> + Send;

    /// The phase's total when its input is `pages` pages, known without
    /// counting: none (the phase has no input), or one whose first page
    /// [`PhaseRun::is_final`] shows to be its last. By default one batch a
    /// page.
    fn total_of(&self, pages: i32) -> i32 {
        pages
    }

    /// The next batch's input after `cursor`; None when the phase is done.
    fn read(
        &self,
        ctx: &Context,
        lease: &Lease,
        cursor: &Self::Cursor,
    ) -> impl Future<Output = Result<Option<Self::Work>, Error>> + Send;

    /// Where the phase stands once this batch has committed.
    fn cursor_after(&self, work: &Self::Work) -> Self::Cursor;

    /// Where the phase stands once this batch has committed, when what its
    /// work found moves it elsewhere than [`PhaseRun::cursor_after`] said
    /// (verification: a row read back holding values again sends every row
    /// to be read afresh at the end). By default it does not; a next batch
    /// prepared ahead after the other cursor is then not used.
    fn cursor_found(
        &self,
        _after: &Self::Cursor,
        _effects: &Self::Effects,
    ) -> Option<Self::Cursor> {
        None
    }

    /// Whether this batch's input itself shows that nothing follows it (a
    /// page shorter than the one asked for), so that its end needs no read
    /// to see, and a phase whose first input is final needs no count. By
    /// default the runner asks.
    fn is_final(&self, _ctx: &Context, _work: &Self::Work) -> bool {
        false
    }

    /// Paid before the batch starts (load limits), so that a shutdown
    /// during the wait gives the batch up before anything is touched.
    fn pace(&self, _ctx: &Context, _work: &Self::Work) -> impl Future<Output = Admission> + Send {
        async { Admission::Go }
    }

    /// The batch's work outside lethe's transaction (S3 calls, reads of
    /// the service's tables).
    fn act(
        &self,
        ctx: &Context,
        lease: &Lease,
        batch: i32,
        work: &Self::Work,
    ) -> impl Future<Output = Result<Self::Effects, Error>> + Send;

    /// Writes the batch's outcome inside its transaction (already fenced).
    fn write(
        &self,
        tx: &mut Tx,
        ctx: &Context,
        lease: &Lease,
        batch: i32,
        work: Self::Work,
        effects: Self::Effects,
    ) -> impl Future<Output = Result<Committed, Error>> + Send;

    /// Begins the batch's transaction (masking sets statement limits).
    fn begin(&self, ctx: &Context) -> impl Future<Output = Result<Tx, Error>> + Send {
        ctx.store.begin()
    }

    /// When `read` finds no more work: by default the request advances to
    /// the next milestone.
    fn finish(
        &self,
        ctx: &Context,
        lease: &Lease,
        _checkpoint: &Checkpoint,
        _total: Option<i32>,
    ) -> impl Future<Output = Result<Step, Error>> + Send {
        advance(ctx, lease, Self::FROM)
    }
}

/// How much of its next batch a phase prepares while the current one is
/// worked and committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAhead {
    /// Nothing: the next batch is read when this one has committed.
    Nothing,
    /// Its input, read while this batch works and commits: for a phase
    /// whose input after a cursor is lethe's own manifest, which this
    /// batch's commit does not change (it writes only its own entries).
    Input,
    /// Its input and its work, while this batch commits: for a phase whose
    /// work only reads (nothing outside lethe's transaction changes).
    InputAndWork,
}

/// The next batch, read (and, for [`ReadAhead::InputAndWork`], worked
/// out) while the batch before it was done. The next step uses it without
/// doing that again; anything else first (an error, a shutdown, a lost
/// lease) drops it, and it is simply done again. It wrote nothing, so there
/// is nothing to undo.
pub struct Ahead {
    /// The cursor it was read after; the next step must start there.
    cursor: serde_json::Value,
    /// `Option<(P::Work, Option<P::Effects>)>`: None when nothing came
    /// after; the effects when its work was done too.
    prepared: Box<dyn Any + Send>,
}

/// A prepared next batch: its input, and its effects when its work was
/// done too; None when nothing came after.
type Prepared<P> = Option<(<P as PhaseRun>::Work, Option<<P as PhaseRun>::Effects>)>;

impl Ahead {
    /// The prepared batch, if it is this phase's and starts at `cursor`.
    fn take<P: PhaseRun>(self, cursor: &serde_json::Value) -> Option<Prepared<P>> {
        if &self.cursor != cursor {
            return None;
        }
        self.prepared
            .downcast::<Prepared<P>>()
            .ok()
            .map(|prepared| *prepared)
    }
}

/// Runs one step of a phase: one batch, or the phase's end. `ahead` holds
/// what the step before prepared, and what this one prepares for the next.
pub async fn run_batch<P: PhaseRun>(
    ctx: &Context,
    lease: &Lease,
    phase: &P,
    known: Option<Checkpoint>,
    ahead: &mut Option<Ahead>,
) -> Result<Step, Error> {
    let checkpoint = match known {
        Some(checkpoint) => checkpoint,
        None => Checkpoint::load(&ctx.store, lease.request_id).await?,
    };
    let starting = checkpoint.batch_total.is_none();
    let cursor: P::Cursor = checkpoint.cursor()?;
    let started = Instant::now();
    let prepared = ahead
        .take()
        .and_then(|ahead| ahead.take::<P>(&cursor_value(&cursor)));
    let (work, effects) = match prepared {
        Some(Some((work, effects))) => (Some(work), effects),
        Some(None) => (None, None),
        None => (phase.read(ctx, lease, &cursor).await?, None),
    };
    // A phase starting counts its batches only when its first page does
    // not show itself to be the last: a small erasure's phases count
    // nothing.
    let total = match (checkpoint.batch_total, &work) {
        (Some(total), _) => total,
        (None, None) => phase.total_of(0),
        (None, Some(work)) if phase.is_final(ctx, work) => phase.total_of(1),
        (None, Some(_)) => phase.total(ctx, lease).await?,
    };
    let Some(work) = work else {
        // Done, or never anything to do: a phase without work is not
        // started, it ends.
        return phase.finish(ctx, lease, &checkpoint, Some(total)).await;
    };
    if let Admission::Stop(reason) = phase.pace(ctx, &work).await {
        return Ok(Step::Stopped(reason));
    }
    let batch = checkpoint.next_batch();
    let span = tracing::debug_span!("batch", phase = %P::PHASE, batch);
    async {
        if starting {
            checkpoint::start_phase(&ctx.store, lease, P::FROM, P::PHASE, batch, total).await?;
        } else {
            batch_started(ctx, lease, P::PHASE, batch).await?;
        }
        let start_ms = started.elapsed().as_millis() as u64;
        let after = phase.cursor_after(&work);
        // The batch the phase's total said was the last: if nothing is left
        // after it (seen in its input, or asked once its work is done,
        // outside the transaction), it also advances.
        let may_be_last = P::ENDS_BY_ADVANCING && batch >= total;
        let is_final = phase.is_final(ctx, &work);
        let read_ahead = if may_be_last || is_final {
            ReadAhead::Nothing
        } else {
            P::READ_AHEAD
        };
        let this = async {
            let effects = match effects {
                Some(effects) => effects,
                None => phase.act(ctx, lease, batch, &work).await?,
            };
            let act_ms = started.elapsed().as_millis() as u64 - start_ms;
            let last = may_be_last && (is_final || phase.read(ctx, lease, &after).await?.is_none());
            let done = Done::<P> {
                batch,
                work,
                effects,
                last,
            };
            let commit = commit(ctx, lease, phase, done, &after);
            if read_ahead != ReadAhead::InputAndWork {
                return Ok::<_, Error>((commit.await?, act_ms, None));
            }
            // The next batch is read and worked out while this one commits
            // (on another connection): its work only reads, so it changes
            // nothing if this commit fails.
            let next = async {
                let Some(next) = phase.read(ctx, lease, &after).await? else {
                    return Ok(None);
                };
                let effects = phase.act(ctx, lease, batch + 1, &next).await?;
                Ok::<_, Error>(Some((next, Some(effects))))
            };
            let (committed, prepared) = tokio::join!(commit, next);
            Ok((committed?, act_ms, Some(prepared)))
        };
        let (committed, act_ms, prepared) = if read_ahead == ReadAhead::Input {
            // The next batch's input is read while this one works and
            // commits: it is manifest entries after this batch's, which
            // this batch does not write.
            let next = async {
                let next = phase.read(ctx, lease, &after).await?;
                Ok::<_, Error>(next.map(|next| (next, None)))
            };
            let (this, prepared) = tokio::join!(this, next);
            let (committed, act_ms, _) = this?;
            (committed, act_ms, Some(prepared))
        } else {
            this.await?
        };
        // A final input already said that nothing follows it: when the
        // phase goes on (it did not advance in this commit), its next step
        // ends it without reading that again (a phase that reads ahead,
        // whose input after the cursor this commit left as it was).
        let goes_on = committed.advanced.is_none();
        let prepared = match prepared {
            None if is_final && goes_on && P::READ_AHEAD != ReadAhead::Nothing => Some(Ok(None)),
            prepared => prepared,
        };
        match prepared {
            Some(Ok(prepared)) => {
                let prepared: Prepared<P> = prepared;
                *ahead = Some(Ahead {
                    cursor: cursor_value(&after),
                    prepared: Box::new(prepared),
                })
            }
            // Done again, in its own step, where its error counts.
            Some(Err(err)) => tracing::debug!("preparing the next batch ahead: {err}"),
            None => {}
        }
        let Commit {
            detail,
            advanced,
            counters,
            cursor: after,
            transaction_ms,
        } = committed;
        // The commit's wait includes the next batch prepared alongside it;
        // `transaction_ms` is the transaction alone.
        let commit_ms = started.elapsed().as_millis() as u64 - start_ms - act_ms;
        tracing::debug!(
            total,
            %detail,
            start_ms,
            act_ms,
            commit_ms,
            transaction_ms,
            ?read_ahead,
            "batch committed"
        );
        // The phase goes on from what this commit wrote: batch `batch` of
        // `total` done, at `after`.
        let checkpoint = advanced.is_none().then_some(Checkpoint {
            request_id: lease.request_id,
            batch_done: batch,
            batch_total: Some(total),
            cursor: Some(after),
        });
        Ok(Step::Batch {
            phase: P::PHASE,
            batch,
            total: Some(total),
            advanced,
            counters: Some(counters),
            checkpoint,
        })
    }
    .instrument(span)
    .await
}

/// A batch whose work is done, to commit.
struct Done<P: PhaseRun> {
    batch: i32,
    work: P::Work,
    effects: P::Effects,
    /// It was the phase's last: the request advances in the same commit.
    last: bool,
}

/// What a batch's commit left.
struct Commit {
    /// The `batch_committed` event's detail.
    detail: String,
    /// The milestone the request advanced to, when it was the phase's last.
    advanced: Option<State>,
    counters: Counters,
    /// The cursor it wrote.
    cursor: serde_json::Value,
    /// How long the transaction took.
    transaction_ms: u64,
}

/// A batch's one fenced transaction: its outcome, its checkpoint (`after`)
/// and its `batch_committed` event, and the advance when it was the
/// phase's last.
async fn commit<P: PhaseRun>(
    ctx: &Context,
    lease: &Lease,
    phase: &P,
    done: Done<P>,
    after: &P::Cursor,
) -> Result<Commit, Error> {
    let began = Instant::now();
    let Done {
        batch,
        work,
        effects,
        last,
    } = done;
    let after = match phase.cursor_found(after, &effects) {
        Some(found) => cursor_value(&found),
        None => cursor_value(after),
    };
    let mut tx = phase.begin(ctx).await?;
    lease.fence(&mut tx, P::FROM).await?;
    let Committed { progress, detail } = phase
        .write(&mut tx, ctx, lease, batch, work, effects)
        .await?;
    // After the batch's effects, before its checkpoint: where a crash
    // test kills the worker.
    failpoint::pause_if_armed(P::PHASE, batch).await;
    let event = CommitEvent {
        kind: EventKind::BatchCommitted,
        phase: P::PHASE,
        batch: Some(batch),
        detail: &detail,
    };
    let (counters, advanced) = if last {
        let (counters, to) =
            checkpoint::last_batch_done(&mut tx, lease, progress, event, P::FROM).await?;
        (counters, Some(to))
    } else {
        let counters = checkpoint::batch_done(&mut tx, lease, &after, progress, event).await?;
        (counters, None)
    };
    tx.commit().await?;
    Ok(Commit {
        detail,
        advanced,
        counters,
        cursor: after,
        transaction_ms: began.elapsed().as_millis() as u64,
    })
}
