//! A transaction on either backend: what a batch's writes and its checkpoint
//! commit in together. Begun by [`super::Store::begin`] (on SQLite, BEGIN
//! IMMEDIATE: the write lock from the first statement); dropped without
//! [`Tx::commit`], it rolls back.

use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection, Transaction};

use super::Backed;
use crate::error::Error;

/// An open transaction.
pub struct Tx(Backed<Transaction<'static, Postgres>, Transaction<'static, Sqlite>>);

/// The connection a transaction runs on, for the backend modules.
pub(crate) type Conn<'a> = Backed<&'a mut PgConnection, &'a mut SqliteConnection>;

impl Tx {
    pub(super) fn postgres(tx: Transaction<'static, Postgres>) -> Tx {
        Tx(Backed::Postgres(tx))
    }

    pub(super) fn sqlite(tx: Transaction<'static, Sqlite>) -> Tx {
        Tx(Backed::Sqlite(tx))
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            Backed::Postgres(tx) => Backed::Postgres(&mut **tx),
            Backed::Sqlite(tx) => Backed::Sqlite(&mut **tx),
        }
    }

    pub async fn commit(self) -> Result<(), Error> {
        match self.0 {
            Backed::Postgres(tx) => tx.commit().await?,
            Backed::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), Error> {
        match self.0 {
            Backed::Postgres(tx) => tx.rollback().await?,
            Backed::Sqlite(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Backed::Postgres(_) => "Tx(PostgreSQL)",
            Backed::Sqlite(_) => "Tx(SQLite)",
        })
    }
}
