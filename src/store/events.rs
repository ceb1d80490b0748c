//! The event log: what happened to a request, when, by which worker under
//! which lease epoch. A batch start is written (and committed) before the
//! batch's work, and a batch commit inside the batch's own transaction, so a
//! batch that was repeated after a crash shows as two starts; claims and
//! releases give each holder's interval.

use sqlx::PgConnection;

use super::lease::Lease;
use crate::error::Error;
use crate::workflow::state::Phase;

/// Appends one event for a leased request.
pub async fn record(
    conn: &mut PgConnection,
    lease: &Lease,
    kind: &str,
    phase: Option<Phase>,
    batch_no: Option<i32>,
    detail: Option<&str>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, batch_no, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(lease.request_id)
    .bind(&lease.owner)
    .bind(lease.epoch)
    .bind(kind)
    .bind(phase.map(Phase::as_str))
    .bind(batch_no)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends one event that no lease is behind (an operator's command).
pub async fn record_operator(
    conn: &mut PgConnection,
    request_id: uuid::Uuid,
    kind: &str,
    detail: Option<&str>,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO erasure_events (request_id, kind, detail) VALUES ($1, $2, $3)")
        .bind(request_id)
        .bind(kind)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}
