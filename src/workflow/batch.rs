//! One shape for every phase's step, written once: load the checkpoint,
//! start the phase (its batch total, once), read the next batch's input,
//! pay the load limit, record the batch's start, do the batch's work, then
//! in ONE fenced transaction write its outcome, its checkpoint and its
//! `batch_committed` event, and commit. A phase ([`PhaseRun`]) supplies only
//! what it reads, what it does (its S3 or SQL work) and what it writes, the
//! way underway's steps return a transition and its runner does the rest.
//!
//! The rule this module keeps: a batch's effects on lethe's tables and its
//! checkpoint commit together or not at all, under a lease fence, so a crash
//! anywhere repeats at most the one batch in flight.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value, start_phase};
use crate::error::Error;
use crate::failpoint;
use crate::pace::Admission;
use crate::store::events::EventKind;
use crate::store::requests::checkpoint::{self, Progress};
use crate::store::{Lease, Tx, events};

/// What a batch's write leaves for the runner to commit with it.
pub struct Committed<C> {
    /// Where the phase stands after this batch.
    pub cursor: C,
    pub progress: Progress,
    /// The `batch_committed` event's detail (counts; never keys).
    pub detail: String,
}

/// One phase of the workflow, as the runner drives it.
pub trait PhaseRun: Sync {
    /// Where the phase stands between batches (stored as JSON).
    type Cursor: Serialize + DeserializeOwned + Default + Send + Sync;
    /// A batch's input, read before anything is done.
    type Work: Send + Sync;
    /// What the batch's work outside the database produced.
    type Effects: Send;

    /// The milestone the phase starts from.
    const FROM: State;
    /// Its name in events and progress.
    const PHASE: Phase;

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
    ) -> impl Future<Output = Result<Committed<Self::Cursor>, Error>> + Send;

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

/// Runs one step of a phase: one batch, or the phase's end.
pub async fn run_batch<P: PhaseRun>(
    ctx: &Context,
    lease: &Lease,
    phase: &P,
) -> Result<Step, Error> {
    let checkpoint = Checkpoint::load(&ctx.store, lease.request_id).await?;
    let mut total = checkpoint.batch_total;
    if total.is_none() {
        let batches = phase.total(ctx, lease).await?;
        start_phase(ctx, lease, P::FROM, batches).await?;
        total = Some(batches);
    }
    let cursor: P::Cursor = checkpoint.cursor()?;
    let Some(work) = phase.read(ctx, lease, &cursor).await? else {
        return phase.finish(ctx, lease, &checkpoint, total).await;
    };
    if let Admission::Stop(reason) = phase.pace(ctx, &work).await {
        return Ok(Step::Stopped(reason));
    }
    let batch = checkpoint.next_batch();
    let span = tracing::debug_span!("batch", phase = %P::PHASE, batch);
    async {
        batch_started(ctx, lease, P::PHASE, batch).await?;
        let effects = phase.act(ctx, lease, batch, &work).await?;

        let mut tx = phase.begin(ctx).await?;
        lease.fence(&mut tx, P::FROM).await?;
        let committed = phase
            .write(&mut tx, ctx, lease, batch, work, effects)
            .await?;
        // After the batch's effects, before its checkpoint: where a crash
        // test kills the worker.
        failpoint::pause_if_armed(P::PHASE, batch).await;
        checkpoint::batch_done(
            &mut tx,
            lease,
            &cursor_value(&committed.cursor),
            committed.progress,
        )
        .await?;
        events::record(
            &mut tx,
            lease,
            EventKind::BatchCommitted,
            Some(P::PHASE),
            Some(batch),
            Some(&committed.detail),
        )
        .await?;
        tx.commit().await?;
        tracing::debug!(total = ?total, detail = %committed.detail, "batch committed");
        Ok(Step::Batch {
            phase: P::PHASE,
            batch,
            total,
        })
    }
    .instrument(span)
    .await
}
