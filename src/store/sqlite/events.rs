//! Statements on leases and `erasure_events`, SQLite.

use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{id, now, now_plus_secs};
use crate::error::Error;
use crate::store::events::{Event, NewEvent};
use crate::store::lease::{Holder, Lease};

/// The lease columns. The caller's transaction holds the write lock, which
/// is the row lock PostgreSQL takes here: no other writer can change them
/// before it commits.
pub async fn lock_holder(
    conn: &mut SqliteConnection,
    request: Uuid,
) -> Result<Option<Holder>, Error> {
    let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT state, lease_epoch, lease_owner FROM erasure_requests WHERE id = $1",
    )
    .bind(id(request))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(state, epoch, owner)| Holder {
        state,
        epoch,
        owner,
    }))
}

pub async fn renew(pool: &SqlitePool, lease: &Lease) -> Result<bool, Error> {
    let renewed = sqlx::query(concat!(
        "UPDATE erasure_requests SET lease_expires_at = ",
        now_plus_secs!("$3"),
        " WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $4"
    ))
    .bind(id(lease.request_id))
    .bind(lease.epoch)
    .bind(lease.ttl.as_secs_f64())
    .bind(&lease.owner)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(renewed == 1)
}

pub async fn release(conn: &mut SqliteConnection, lease: &Lease) -> Result<bool, Error> {
    let released = sqlx::query(concat!(
        "UPDATE erasure_requests SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ",
        now!(),
        " WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $3"
    ))
    .bind(id(lease.request_id))
    .bind(lease.epoch)
    .bind(&lease.owner)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(released == 1)
}

pub async fn append(conn: &mut SqliteConnection, event: NewEvent<'_>) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO erasure_events (request_id, worker, lease_epoch, kind, phase, batch_no, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id(event.request_id))
    .bind(event.worker)
    .bind(event.lease_epoch)
    .bind(event.kind)
    .bind(event.phase)
    .bind(event.batch_no)
    .bind(event.detail)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn of_request(pool: &SqlitePool, request: Uuid) -> Result<Vec<Event>, Error> {
    type Row = (
        chrono::DateTime<chrono::Utc>,
        Option<String>,
        Option<i64>,
        String,
        Option<String>,
        Option<i32>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, worker, lease_epoch, kind, phase, batch_no, detail FROM erasure_events \
          WHERE request_id = $1 ORDER BY id",
    )
    .bind(id(request))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(at, worker, lease_epoch, kind, phase, batch_no, detail)| Event {
                at,
                worker,
                lease_epoch,
                kind,
                phase,
                batch_no,
                detail,
            },
        )
        .collect())
}
