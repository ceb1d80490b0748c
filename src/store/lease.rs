//! Leases: who may work on a request, and until when.
//!
//! A claim bumps the request's `lease_epoch`; the epoch is the fencing token.
//! Every write a worker makes names the epoch it holds, and the transaction
//! that commits a batch first locks the request row (on SQLite, the whole
//! database, from BEGIN IMMEDIATE) and checks it ([`Lease::fence`]). A worker
//! that paused past its lease (GC, a frozen VM, a partition) and wakes up
//! after another took over finds a newer epoch and writes nothing. Lease
//! expiry uses the database's clock only, so hosts' clocks need not agree.
//!
//! The fence locks the request row. A transaction that also needs the
//! member's advisory lock takes that first
//! ([`super::requests::lock_subject`]): one lock order everywhere.

use std::time::Duration;

use uuid::Uuid;

use super::{Backed, Store, Tx, on_backend, on_either_backend, postgres, sqlite};
use crate::error::Error;
use crate::store::events::EventKind;
use crate::workflow::state::State;

/// A worker's hold on one request.
#[derive(Debug, Clone)]
pub struct Lease {
    pub request_id: Uuid,
    pub epoch: i64,
    pub owner: String,
    pub ttl: Duration,
}

/// The lease columns of a request, read under lock by [`Lease::fence`].
#[derive(Debug, Clone)]
pub(super) struct Holder {
    pub state: String,
    pub epoch: i64,
    pub owner: Option<String>,
}

impl Lease {
    /// Locks the request row for the rest of the transaction and checks that
    /// this lease still holds it and that it is still in `expected` state.
    pub async fn fence(&self, tx: &mut Tx, expected: State) -> Result<(), Error> {
        let id = self.request_id;
        let holder = on_backend!(tx.conn(), conn =>
            postgres::lease::lock_holder(conn, id).await?,
            sqlite::lease::lock_holder(conn, id).await?);
        self.check(id, holder, expected)
    }

    /// Whether `holder` shows this lease holding the request in `expected`.
    fn check(&self, id: Uuid, holder: Option<Holder>, expected: State) -> Result<(), Error> {
        let Some(holder) = holder else {
            return Err(Error::NotFound(id));
        };
        if holder.epoch != self.epoch || holder.owner.as_deref() != Some(self.owner.as_str()) {
            return Err(Error::Fenced(id));
        }
        if holder.state != expected.as_str() {
            return Err(Error::StateChanged {
                id,
                expected,
                found: holder.state,
            });
        }
        Ok(())
    }

    /// Why a write fenced in its own `WHERE` wrote nothing: the request is
    /// gone, another lease holds it, or it left `expected`. Read after the
    /// write, without a lock: nothing was written, so nothing is undone.
    pub async fn why_fenced(&self, store: &Store, expected: State) -> Error {
        let id = self.request_id;
        match self.read_holder(store).await {
            Err(err) => err,
            Ok(holder) => match self.check(id, holder, expected) {
                Err(err) => err,
                // It holds now, so it changed and changed back in between:
                // a lease taken over and returned is still not this one's.
                Ok(()) => Error::Fenced(id),
            },
        }
    }

    /// Whether this lease took the request to Done, which released it in
    /// its own commit: a renewal that finds the lease gone then lost
    /// nothing. False on any error (the caller then treats the lease as
    /// lost).
    pub async fn finished(&self, store: &Store) -> bool {
        matches!(self.read_holder(store).await, Ok(Some(Holder { state, epoch, owner: None }))
            if state == State::Done.as_str() && epoch == self.epoch)
    }

    /// The request's lease columns, read without a lock.
    async fn read_holder(&self, store: &Store) -> Result<Option<Holder>, Error> {
        let id = self.request_id;
        let holder: Option<(String, i64, Option<String>)> =
            on_either_backend!(store.db(), id, |pool, stored_id| {
                sqlx::query_as(
                    "SELECT state, lease_epoch, lease_owner FROM erasure_requests WHERE id = $1",
                )
                .bind(stored_id)
                .fetch_optional(pool)
                .await?
            });
        Ok(holder.map(|(state, epoch, owner)| Holder {
            state,
            epoch,
            owner,
        }))
    }

    /// Extends the lease by its TTL. False when the lease is lost (another
    /// worker holds a newer epoch, or the request was cancelled or finished).
    pub async fn renew(&self, store: &Store) -> Result<bool, Error> {
        Ok(on_backend!(store.db(), pool =>
            postgres::lease::renew(pool, self).await?,
            sqlite::lease::renew(pool, self).await?))
    }

    /// Gives the request back so any worker can claim it at once, with a
    /// `released` event when this lease still held it (on PostgreSQL one
    /// statement, on SQLite a transaction of two).
    pub async fn release(&self, store: &Store) -> Result<(), Error> {
        if let Backed::Postgres(pool) = store.db() {
            postgres::lease::release(pool, self).await?;
            return Ok(());
        }
        let mut tx = store.begin().await?;
        let released = match tx.conn() {
            Backed::Sqlite(conn) => sqlite::lease::release(conn, self).await?,
            Backed::Postgres(_) => {
                return Err(Error::Invariant(
                    "a PostgreSQL release is one statement (postgres::lease::release)".into(),
                ));
            }
        };
        if released {
            super::events::record(&mut tx, self, EventKind::Released, None, None, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
