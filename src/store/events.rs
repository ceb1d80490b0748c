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

/// One event, as appended.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewEvent<'a> {
    pub request_id: Uuid,
    pub worker: Option<&'a str>,
    pub lease_epoch: Option<i64>,
    pub kind: &'a str,
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
    kind: &'a str,
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
        .bind(event.kind)
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
    kind: &str,
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
    kind: &str,
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
    kind: &str,
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
