//! Statements on leases, PostgreSQL.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;
use crate::store::events::EventKind;
use crate::store::lease::{Holder, Lease};

/// The lease columns, with the row locked for the rest of the transaction.
pub async fn lock_holder(conn: &mut PgConnection, id: Uuid) -> Result<Option<Holder>, Error> {
    let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT state, lease_epoch, lease_owner FROM erasure_requests WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(state, epoch, owner)| Holder {
        state,
        epoch,
        owner,
    }))
}

pub async fn renew(pool: &PgPool, lease: &Lease) -> Result<bool, Error> {
    let renewed = sqlx::query(
        "UPDATE erasure_requests \
            SET lease_expires_at = now() + make_interval(secs => $3) \
          WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $4",
    )
    .bind(lease.request_id)
    .bind(lease.epoch)
    .bind(lease.ttl.as_secs_f64())
    .bind(&lease.owner)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(renewed == 1)
}

/// Releases the lease and, when it still held the request, appends the
/// `released` event, in one statement.
pub async fn release(pool: &PgPool, lease: &Lease) -> Result<bool, Error> {
    let released = sqlx::query(
        "WITH released AS ( \
             UPDATE erasure_requests \
                SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
              WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $3 \
             RETURNING id) \
         INSERT INTO erasure_events (request_id, worker, lease_epoch, kind) \
         SELECT id, $3, $2, $4 FROM released",
    )
    .bind(lease.request_id)
    .bind(lease.epoch)
    .bind(&lease.owner)
    .bind(EventKind::Released.as_str())
    .execute(pool)
    .await?
    .rows_affected();
    Ok(released == 1)
}
