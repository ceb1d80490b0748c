//! The event log: what happened to a request, when, by which worker under
//! which lease epoch. A batch start is written (and committed) before the
//! batch's work, and a batch commit inside the batch's own transaction, so a
//! batch that was repeated after a crash shows as two starts; claims and
//! releases give each holder's interval.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::lease::Lease;
use super::{Store, Tx, on_backend, postgres, sqlite};
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// Appends one event for a leased request, in the caller's transaction.
pub async fn record(
    tx: &mut Tx,
    lease: &Lease,
    kind: &str,
    phase: Option<Phase>,
    batch_no: Option<i32>,
    detail: Option<&str>,
) -> Result<(), Error> {
    let event = leased(lease, kind, phase, batch_no, detail);
    on_backend!(tx.conn(), conn =>
        postgres::events::append(&mut *conn, event).await?,
        sqlite::events::append(&mut *conn, event).await?);
    Ok(())
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
    on_backend!(store.db(), pool =>
        postgres::events::append(&mut *pool.acquire().await?, event).await?,
        sqlite::events::append(&mut *pool.acquire().await?, event).await?);
    Ok(())
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
    on_backend!(tx.conn(), conn =>
        postgres::events::append(&mut *conn, event).await?,
        sqlite::events::append(&mut *conn, event).await?);
    Ok(())
}

/// A request's events, in the order they were written.
pub async fn of_request(store: &Store, request_id: Uuid) -> Result<Vec<Event>, Error> {
    Ok(on_backend!(store.db(), pool =>
        postgres::events::of_request(pool, request_id).await?,
        sqlite::events::of_request(pool, request_id).await?))
}
