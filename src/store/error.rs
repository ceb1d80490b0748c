//! The store's errors: a database statement that failed, a migration, or
//! a database that could not be reached or opened — each keeping its cause
//! — and the one place that says which database errors are transient
//! (back off and try again) and which need an operator.

use crate::backend::Backend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "DATABASE_URL must start with postgres:// (PostgreSQL) or sqlite:// (a SQLite file, e.g. sqlite://lethe.sqlite3)"
    )]
    UnknownScheme,
    #[error("DATABASE_URL is not a valid {backend} URL: {source}")]
    InvalidUrl {
        backend: Backend,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "connecting to the database at {host}:{port}: no answer within 10 s; check DATABASE_URL and that the server is reachable"
    )]
    NoAnswer { host: String, port: u16 },
    #[error(
        "connecting to the database at {target}: {source}; check DATABASE_URL and that the server is up"
    )]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "creating the SQLite database {file}: {source}; check that its directory exists and is writable"
    )]
    CreateFile {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "opening the SQLite database {file}: {source}; check that its directory exists and is writable"
    )]
    OpenFile {
        file: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("lethe's tables are missing in this database: run `lethe migrate` first")]
    NotMigrated,
}

impl StoreError {
    /// Whether trying again later may succeed without anyone acting.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(err) => database_error_is_transient(err),
            _ => false,
        }
    }

    /// The database's own error, when a statement failed.
    pub fn database(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Database(err) => Some(err),
            _ => None,
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
