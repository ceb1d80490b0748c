//! Leases: who may work on a request, and until when.
//!
//! A claim bumps the request's `lease_epoch`; the epoch is the fencing token.
//! Every write a worker makes names the epoch it holds, and the transaction
//! that commits a batch first locks the request row and checks it
//! ([`Lease::fence`]). A worker that paused past its lease (GC, a frozen VM,
//! a partition) and wakes up after another took over finds a newer epoch and
//! writes nothing. Lease expiry uses the database's clock only, so hosts'
//! clocks need not agree.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;
use crate::workflow::state::State;

/// A worker's hold on one request.
#[derive(Debug, Clone)]
pub struct Lease {
    pub request_id: Uuid,
    pub epoch: i64,
    pub owner: String,
    pub ttl: Duration,
}

impl Lease {
    /// Locks the request row for the rest of the transaction and checks that
    /// this lease still holds it and that it is still in `expected` state.
    /// Returns the fresh row's state on success.
    pub async fn fence(&self, conn: &mut PgConnection, expected: State) -> Result<(), Error> {
        let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT state, lease_epoch, lease_owner FROM erasure_requests WHERE id = $1 FOR UPDATE",
        )
        .bind(self.request_id)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((state, epoch, owner)) = row else {
            return Err(Error::NotFound(self.request_id));
        };
        if epoch != self.epoch || owner.as_deref() != Some(self.owner.as_str()) {
            return Err(Error::Fenced(self.request_id));
        }
        if state != expected.as_str() {
            return Err(Error::StateChanged {
                id: self.request_id,
                expected,
                found: state,
            });
        }
        Ok(())
    }

    /// Extends the lease by its TTL. False when the lease is lost (another
    /// worker holds a newer epoch, or the request was cancelled or finished).
    pub async fn renew(&self, pool: &PgPool) -> Result<bool, Error> {
        let renewed = sqlx::query(
            "UPDATE erasure_requests \
                SET lease_expires_at = now() + make_interval(secs => $3) \
              WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $4",
        )
        .bind(self.request_id)
        .bind(self.epoch)
        .bind(self.ttl.as_secs_f64())
        .bind(&self.owner)
        .execute(pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives the request back so any worker can claim it at once.
    pub async fn release(&self, pool: &PgPool) -> Result<(), Error> {
        let mut tx = pool.begin().await?;
        let released = sqlx::query(
            "UPDATE erasure_requests \
                SET lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
              WHERE id = $1 AND lease_epoch = $2 AND lease_owner = $3",
        )
        .bind(self.request_id)
        .bind(self.epoch)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if released == 1 {
            super::events::record(&mut tx, self, "released", None, None, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
