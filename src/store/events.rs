//! The event log: what happened to a request, when, by which worker under
//! which lease epoch. A batch start is written (and committed) before the
//! batch's work, and a batch commit inside the batch's own transaction, so a
//! batch that was repeated after a crash shows as two starts; claims and
//! releases give each holder's interval.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::lease::Lease;
use super::tx::Conn;
use super::{Backed, Store, Tx, on_either_backend};
use crate::error::Error;
use crate::workflow::state::Phase;

/// What happened. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A worker leased the request.
    Claimed,
    /// A worker took over a lease that had expired (its holder died).
    TakenOver,
    /// The worker gave the lease back.
    Released,
    /// A batch is starting (committed before its work).
    BatchStarted,
    /// A batch's work and checkpoint committed.
    BatchCommitted,
    /// The request reached its next milestone.
    Advanced,
    /// A failed attempt, to be retried after a backoff.
    RetryScheduled,
    /// The request stopped in Failed.
    Failed,
    /// An operator resumed a failed request.
    Retried,
    /// An operator cancelled the request.
    Cancelled,
    /// Verification found objects still there, and erased them again.
    SurvivorsFound,
    /// What was written after discovery was swept.
    SecondSweep,
    /// At Done: the member's raw key replaced by its keyed hash.
    SubjectMinimised,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Claimed => "claimed",
            EventKind::TakenOver => "taken_over",
            EventKind::Released => "released",
            EventKind::BatchStarted => "batch_started",
            EventKind::BatchCommitted => "batch_committed",
            EventKind::Advanced => "advanced",
            EventKind::RetryScheduled => "retry_scheduled",
            EventKind::Failed => "failed",
            EventKind::Retried => "retried",
            EventKind::Cancelled => "cancelled",
            EventKind::SurvivorsFound => "survivors_found",
            EventKind::SecondSweep => "second_sweep",
            EventKind::SubjectMinimised => "subject_minimised",
        }
    }
}

impl PartialEq<EventKind> for String {
    fn eq(&self, other: &EventKind) -> bool {
        self == other.as_str()
    }
}

/// One event, as appended.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewEvent<'a> {
    pub request_id: Uuid,
    pub worker: Option<&'a str>,
    pub lease_epoch: Option<i64>,
    pub kind: EventKind,
    pub phase: Option<&'static str>,
    pub batch_no: Option<i32>,
    pub detail: Option<&'a str>,
}

/// One event, as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub worker: Option<String>,
    pub lease_epoch: Option<i64>,
    pub kind: String,
    pub phase: Option<String>,
    pub batch_no: Option<i32>,
    pub detail: Option<String>,
}

fn leased<'a>(
    lease: &'a Lease,
    kind: EventKind,
    phase: Option<Phase>,
    batch_no: Option<i32>,
    detail: Option<&'a str>,
) -> NewEvent<'a> {
    NewEvent {
        request_id: lease.request_id,
        worker: Some(&lease.owner),
        lease_epoch: Some(lease.epoch),
        kind,
        phase: phase.map(Phase::as_str),
        batch_no,
        detail,
    }
}

/// Appends one event on `conn`.
async fn append(conn: Conn<'_>, event: NewEvent<'_>) -> Result<(), Error> {
    on_either_backend!(conn, event.request_id, |conn, id| {
        sqlx::query(
            "INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, batch_no, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(event.worker)
        .bind(event.lease_epoch)
        .bind(event.kind.as_str())
        .bind(event.phase)
        .bind(event.batch_no)
        .bind(event.detail)
        .execute(conn)
        .await?;
    });
    Ok(())
}

/// Appends one event for a leased request, in the caller's transaction.
pub async fn record(
    tx: &mut Tx,
    lease: &Lease,
    kind: EventKind,
    phase: Option<Phase>,
    batch_no: Option<i32>,
    detail: Option<&str>,
) -> Result<(), Error> {
    append(tx.conn(), leased(lease, kind, phase, batch_no, detail)).await
}

/// Appends one event for a leased request, committed at once (a batch
/// start, written before the batch's work).
pub async fn record_now(
    store: &Store,
    lease: &Lease,
    kind: EventKind,
    phase: Option<Phase>,
    batch_no: Option<i32>,
    detail: Option<&str>,
) -> Result<(), Error> {
    let event = leased(lease, kind, phase, batch_no, detail);
    match store.db() {
        Backed::Postgres(pool) => {
            append(Backed::Postgres(&mut *pool.acquire().await?), event).await
        }
        Backed::Sqlite(pool) => append(Backed::Sqlite(&mut *pool.acquire().await?), event).await,
    }
}

/// Appends one event that no lease is behind (an operator's command).
pub async fn record_operator(
    tx: &mut Tx,
    request_id: Uuid,
    kind: EventKind,
    detail: Option<&str>,
) -> Result<(), Error> {
    let event = NewEvent {
        request_id,
        worker: None,
        lease_epoch: None,
        kind,
        phase: None,
        batch_no: None,
        detail,
    };
    append(tx.conn(), event).await
}

/// A request's events, in the order they were written.
pub async fn of_request(store: &Store, request_id: Uuid) -> Result<Vec<Event>, Error> {
    Ok(on_either_backend!(store.db(), request_id, |pool, id| {
        sqlx::query_as(
            "SELECT at, worker, lease_epoch, kind, phase, batch_no, detail FROM erasure_events \
              WHERE request_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
    }))
}
