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
//! the request in its own commit. A phase whose work only reads
//! (discovery) reads and works out its next batch while this one commits
//! ([`Ahead`]): the database writes one batch while lethe and S3 prepare
//! the next, and a crash still repeats one batch, since the one prepared
//! wrote nothing.

use std::any::Any;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, advance_in, batch_started, cursor_value};
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
    /// Whether [`PhaseRun::act`] only reads (nothing outside lethe's
    /// transaction changes), so that the next batch may be read and worked
    /// out while this one commits ([`Ahead`]).
    const ACT_ONLY_READS: bool = false;

    /// How many batches the phase has, counted when it starts.
    fn total(
        &self,
        ctx: &Context,
        lease: &Lease,
    ) -> impl Future<Output = Result<i32, Error>> + Send;

    /// The next batch's input after `cursor`; None when the phase is done.
    fn read(
        &self,
        ctx: &Context,
        lease: &Lease,
        cursor: &Self::Cursor,
    ) -> impl Future<Output = Result<Option<Self::Work>, Error>> + Send;

    /// Where the phase stands once this batch has committed.
    fn cursor_after(&self, work: &Self::Work) -> Self::Cursor;

    /// Whether this batch's input itself shows that nothing follows it (a
    /// page shorter than the one asked for), so that its end needs no read
    /// to see. By default the runner asks.
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

/// The next batch's input and work, done while the batch before it
/// committed, in a phase whose work only reads
/// ([`PhaseRun::ACT_ONLY_READS`]: discovery). The next step commits it
/// without reading it or working it out again; anything else first (an
/// error, a shutdown, a lost lease) drops it, and it is simply done again.
/// It wrote nothing, so there is nothing to undo.
pub struct Ahead {
    /// The cursor it was read after; the next step must start there.
    cursor: serde_json::Value,
    /// `Option<(P::Work, P::Effects)>`: None when nothing came after.
    prepared: Box<dyn Any + Send>,
}

impl Ahead {
    /// The prepared batch, if it is this phase's and starts at `cursor`.
    fn take<P: PhaseRun>(
        self,
        cursor: &serde_json::Value,
    ) -> Option<Option<(P::Work, P::Effects)>> {
        if &self.cursor != cursor {
            return None;
        }
        self.prepared
            .downcast::<Option<(P::Work, P::Effects)>>()
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
    let total = match checkpoint.batch_total {
        Some(total) => total,
        None => phase.total(ctx, lease).await?,
    };
    let cursor: P::Cursor = checkpoint.cursor()?;
    let prepared = ahead
        .take()
        .and_then(|ahead| ahead.take::<P>(&cursor_value(&cursor)));
    let (work, effects) = match prepared {
        Some(Some((work, effects))) => (Some(work), Some(effects)),
        Some(None) => (None, None),
        None => (phase.read(ctx, lease, &cursor).await?, None),
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
        let effects = match effects {
            Some(effects) => effects,
            None => phase.act(ctx, lease, batch, &work).await?,
        };
        let after = phase.cursor_after(&work);
        // The batch the phase's total said was the last: if nothing is left
        // after it (seen in its input, or asked now, outside the
        // transaction), it also advances.
        let may_be_last = P::ENDS_BY_ADVANCING && batch >= total;
        let last = may_be_last
            && (phase.is_final(ctx, &work) || phase.read(ctx, lease, &after).await?.is_none());
        let read_ahead = P::ACT_ONLY_READS && !may_be_last && !phase.is_final(ctx, &work);
        let done = Done::<P> {
            batch,
            work,
            effects,
            last,
        };
        let commit = commit(ctx, lease, phase, done, &after);
        let (detail, advanced, counters) = if read_ahead {
            // The next batch is read and worked out while this one commits
            // (on another connection): its work only reads, so it changes
            // nothing if this commit fails.
            let next = async {
                let Some(next) = phase.read(ctx, lease, &after).await? else {
                    return Ok(None);
                };
                let effects = phase.act(ctx, lease, batch + 1, &next).await?;
                Ok::<_, Error>(Some((next, effects)))
            };
            let (committed, prepared) = tokio::join!(commit, next);
            let committed = committed?;
            match prepared {
                Ok(prepared) => {
                    *ahead = Some(Ahead {
                        cursor: cursor_value(&after),
                        prepared: Box::new(prepared),
                    })
                }
                // Done again, in its own step, where its error counts.
                Err(err) => tracing::debug!("reading the next batch ahead: {err}"),
            }
            committed
        } else {
            commit.await?
        };
        tracing::debug!(total, %detail, "batch committed");
        Ok(Step::Batch {
            phase: P::PHASE,
            batch,
            total: Some(total),
            advanced,
            counters: Some(counters),
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

/// A batch's one fenced transaction: its outcome, its checkpoint (`after`)
/// and its `batch_committed` event, and the advance when it was the
/// phase's last. Returns the event's detail, the milestone advanced to and
/// the counters the commit left.
async fn commit<P: PhaseRun>(
    ctx: &Context,
    lease: &Lease,
    phase: &P,
    done: Done<P>,
    after: &P::Cursor,
) -> Result<(String, Option<State>, Counters), Error> {
    let Done {
        batch,
        work,
        effects,
        last,
    } = done;
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
    let counters =
        checkpoint::batch_done(&mut tx, lease, &cursor_value(after), progress, event).await?;
    let advanced = if last {
        Some(advance_in(&mut tx, lease, P::FROM).await?)
    } else {
        None
    };
    tx.commit().await?;
    Ok((detail, advanced, counters))
}
