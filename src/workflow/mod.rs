//! The erasure workflow: one step at a time, each step one batch of one
//! phase, each ending in a committed checkpoint.
//!
//! Order is the point. Objects are deleted (TargetsFound -> S3Cleared)
//! before any row is masked (S3Cleared -> DbMasked), because once a row is
//! masked nothing leads back to the objects it referenced; and nothing is
//! deleted before the manifest is complete (Requested -> TargetsFound), so
//! the record knows exactly what was meant to go. A crash anywhere resumes
//! at the last committed batch of the current phase: at most one batch is
//! repeated, and every phase is safe to repeat (deleting a missing object
//! succeeds; masking a masked row changes nothing; discovery commits
//! atomically).

mod batch;
mod column_refs;
pub mod completion;
pub mod deletion;
pub mod discovery;
pub mod dry_run;
pub mod findings;
pub mod masking;
pub mod s3_erasure;
mod side_by_side;
pub mod state;
mod sweep;
pub mod targets;
pub mod verification;

use std::sync::Arc;

use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::catalog::Plan;
use crate::config::WorkerSettings;
use crate::error::Error;
use crate::minimise::Minimiser;
use crate::objects::{Buckets, ObjectStore};
use crate::pace::Pace;
use crate::references::Resolver;
use crate::store::events::EventKind;
use crate::store::requests::{Counters, StoredCheckpoint};
use crate::store::{Lease, Store, events};
pub use batch::Ahead;
use batch::run_batch;
use deletion::Deletion;
use discovery::Discovery;
use masking::Masking;
use state::{Phase, State};
use verification::Verification;

/// Everything a step needs.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub plan: Arc<Plan>,
    pub resolver: Arc<Resolver>,
    pub objects: ObjectStore,
    /// How each bucket is erased (mode, versioning, replicas).
    pub buckets: Arc<Buckets>,
    /// Replaces the subject key by its keyed hash at Done, and prunes
    /// manifests. None only in the dry run's context, which never finishes a
    /// request.
    pub minimiser: Option<Arc<Minimiser>>,
    pub settings: WorkerSettings,
    /// The worker process's load limits, shared by its requests.
    pub pace: Pace,
}

/// What a step achieved.
#[derive(Debug, Clone)]
pub enum Step {
    /// A batch committed; the phase goes on, or, when it was the phase's
    /// last, the request advanced to this milestone in the same commit.
    Batch {
        phase: Phase,
        batch: i32,
        total: Option<i32>,
        advanced: Option<State>,
        /// The request's counters as the batch's commit left them, when
        /// the commit returned them (the worker reads them otherwise).
        counters: Option<Counters>,
        /// The checkpoint the batch's commit left when the phase goes on,
        /// for the next step to start from without reading it.
        checkpoint: Option<Checkpoint>,
    },
    /// The phase finished; the request reached this milestone.
    Advanced(State),
    /// The worker gave the next batch up before it started (shutdown, or
    /// the off-peak window's close): nothing of it happened.
    Stopped(crate::pace::StopReason),
}

/// The request's checkpoint for the phase in progress.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub request_id: Uuid,
    pub batch_done: i32,
    pub batch_total: Option<i32>,
    pub cursor: Option<serde_json::Value>,
}

impl Checkpoint {
    pub async fn load(store: &Store, request_id: Uuid) -> Result<Checkpoint, Error> {
        Ok(Checkpoint::stored(
            request_id,
            store.checkpoint(request_id).await?,
        ))
    }

    /// The checkpoint as read with the rest of the request.
    pub fn stored(request_id: Uuid, stored: StoredCheckpoint) -> Checkpoint {
        Checkpoint {
            request_id,
            batch_done: stored.batch_done,
            batch_total: stored.batch_total,
            cursor: stored.cursor,
        }
    }

    /// The checkpoint an advance leaves: a phase not started.
    pub fn fresh(request_id: Uuid) -> Checkpoint {
        Checkpoint::stored(request_id, StoredCheckpoint::default())
    }

    /// The phase-specific cursor, or its default at the phase's start.
    pub fn cursor<T: DeserializeOwned + Default>(&self) -> Result<T, Error> {
        match &self.cursor {
            None => Ok(T::default()),
            Some(value) => serde_json::from_value(value.clone()).map_err(|source| Error::Cursor {
                id: self.request_id,
                source,
            }),
        }
    }

    /// The 1-based number of the batch about to run.
    pub fn next_batch(&self) -> i32 {
        self.batch_done + 1
    }
}

/// Serialises a cursor for storage.
pub fn cursor_value<T: Serialize>(cursor: &T) -> serde_json::Value {
    serde_json::to_value(cursor).expect("cursors are plain data")
}

/// Runs one step of the request in `state`. `known` is its checkpoint when
/// the caller already has it (read with the claim, or left by an advance),
/// sparing a read; `None` reads it.
pub async fn step(
    ctx: &Context,
    lease: &Lease,
    state: State,
    subject: &str,
    known: Option<Checkpoint>,
    ahead: &mut Option<Ahead>,
) -> Result<Step, Error> {
    match state {
        State::Requested => run_batch(ctx, lease, &Discovery { subject }, known, ahead).await,
        State::TargetsFound => run_batch(ctx, lease, &Deletion, known, ahead).await,
        State::S3Cleared => run_batch(ctx, lease, &Masking, known, ahead).await,
        State::DbMasked => run_batch(ctx, lease, &Verification { subject }, known, ahead).await,
        other => Err(Error::Invariant(format!(
            "request {}: no work in state {other}",
            lease.request_id
        ))),
    }
}

/// Records, in its own committed transaction, that a batch is starting: a
/// batch repeated after a crash then shows as a second start.
pub async fn batch_started(
    ctx: &Context,
    lease: &Lease,
    phase: Phase,
    batch: i32,
) -> Result<(), Error> {
    events::record_now(
        &ctx.store,
        lease,
        EventKind::BatchStarted,
        Some(phase),
        Some(batch),
        None,
    )
    .await
}

/// Moves to the next milestone, fenced.
pub async fn advance(ctx: &Context, lease: &Lease, from: State) -> Result<Step, Error> {
    let mut tx = ctx.store.begin().await?;
    lease.fence(&mut tx, from).await?;
    let to = advance_in(&mut tx, lease, from).await?;
    tx.commit().await?;
    Ok(Step::Advanced(to))
}

/// Moves to the next milestone inside a fenced transaction; the milestone.
pub async fn advance_in(
    tx: &mut crate::store::Tx,
    lease: &Lease,
    from: State,
) -> Result<State, Error> {
    let to = from
        .next()
        .ok_or_else(|| Error::Invariant(format!("state {from} has no next milestone")))?;
    crate::store::requests::checkpoint::advance(tx, lease, from, to).await?;
    Ok(to)
}
