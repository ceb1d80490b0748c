//! Statements on leases, SQLite.

use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{id, now, now_plus_secs};
use crate::error::Error;
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
