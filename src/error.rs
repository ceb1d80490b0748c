//! The library's error type, and the one place that says which errors are
//! transient (back off and try again) and which are permanent (park the
//! request in Failed for an operator). Messages name request ids, tables and
//! buckets, never subject keys or object keys.

use uuid::Uuid;

use crate::catalog::CatalogError;
use crate::config::ConfigError;
use crate::objects::ObjectError;
use crate::workflow::state::{IllegalTransition, State, UnknownState};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    #[error("stored state is unreadable: {0}")]
    UnknownState(#[from] UnknownState),
    #[error("no erasure request with id {0}")]
    NotFound(Uuid),
    #[error("request {id}: {reason}")]
    Refused { id: Uuid, reason: String },
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Setup(String),
    /// The lease was taken over: this worker must stop touching the request.
    #[error("request {0}: lost the lease to another worker; stopping without writing")]
    Fenced(Uuid),
    /// The request changed state under the worker (cancelled, retried).
    #[error("request {id}: expected state {expected}, found {found}; stopping")]
    StateChanged {
        id: Uuid,
        expected: State,
        found: String,
    },
    /// Something in the data or the service stops the erasure until an
    /// operator acts; the message says what.
    #[error("request {id}: {message}")]
    Permanent { id: Uuid, message: String },
}

impl Error {
    /// Whether trying again later may succeed without anyone acting.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(err) => database_error_is_transient(err),
            Error::Objects(err) => err.is_transient(),
            _ => false,
        }
    }

    /// What an operator should do before `lethe retry`, when the message
    /// does not say it already.
    pub fn advice(&self) -> Option<&'static str> {
        match self {
            Error::Objects(err) => err.advice(),
            Error::Permanent { message, .. } if message.contains("lethe retry") => None,
            _ => Some("fix the cause"),
        }
    }
}

/// Connection trouble, pool exhaustion, serialization failures, deadlocks,
/// lock and statement timeouts and server shutdowns are transient; so is
/// SQLite's "busy"/"locked" (another writer held the write lock past the
/// busy timeout). Anything else (a missing column, a constraint) needs an
/// operator.
fn database_error_is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db)
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
        {
            // Extended result codes: the primary code is the low byte.
            const SQLITE_BUSY: i64 = 5;
            const SQLITE_LOCKED: i64 = 6;
            db.code()
                .and_then(|code| code.parse::<i64>().ok())
                .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
        }
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            let code = code.as_ref();
            code.starts_with("08") // connection exception
                || code.starts_with("57P") // admin/crash shutdown, cannot connect now
                || matches!(
                    code,
                    "40001" // serialization_failure
                        | "40P01" // deadlock_detected
                        | "55P03" // lock_not_available
                        | "57014" // query_canceled (statement_timeout)
                        | "53300" // too_many_connections
                        | "53400" // configuration_limit_exceeded
                )
        }),
        _ => false,
    }
}
