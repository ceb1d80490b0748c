//! The store: lethe's own tables, in the service's database, on PostgreSQL
//! or on SQLite (the embedded backend). This module is the seam between the
//! two: everything above it (the workflow, workers, the engine, reports)
//! speaks to [`Store`] and [`Tx`] and never names a backend.
//!
//! The rules this module keeps:
//! - migrations are embedded, one set per backend (`migrations/postgres/`,
//!   `migrations/sqlite/`), and applied by `lethe migrate` and by tests alike;
//! - a request's state changes only through [`State::check_transition`];
//! - every write a worker makes to a request it holds is fenced by its lease
//!   epoch ([`lease`]), so a worker that lost its lease cannot overwrite the
//!   one that took it over;
//! - what decides (leases, retries, coalescing, transitions) is written once,
//!   in the backend-neutral modules here, and so is every statement both
//!   backends accept word for word ([`on_either_backend!`]); only the
//!   statements that differ are in [`postgres`] and [`sqlite`];
//! - on SQLite every transaction that writes begins with `BEGIN IMMEDIATE`
//!   ([`Store::begin`]): it takes SQLite's single write lock at its first
//!   statement, which is what `FOR UPDATE`, `SKIP LOCKED` and advisory locks
//!   give on PostgreSQL (one writer at a time, and a transaction never
//!   fails half-way because another wrote first).

pub mod dynamic;
mod error;
pub mod events;
pub mod introspect;
pub mod lease;
mod list_filter;
pub mod manifest;
mod postgres;
pub mod probe;
pub mod record;
pub mod requests;
pub mod service;
mod sqlite;
pub mod stats;
mod submission;
pub mod sweep;
mod tx;
pub mod wake;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::watch;

pub use error::StoreError;
pub use lease::Lease;
pub use requests::{RequestRecord, Submission};
pub use tx::Tx;
pub use wake::Wakeups;

use crate::error::Error;
use crate::workflow::state::State;

/// lethe's migrations for PostgreSQL (`migrations/postgres/`). The files were
/// in `migrations/` before SQLite came; moving them kept their versions and
/// checksums, so a database migrated from there sees them as applied.
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// lethe's migrations for SQLite (`migrations/sqlite/`): the same versions,
/// tables and rules, in SQLite's terms.
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a SQLite connection waits for the write lock before giving up
/// with SQLITE_BUSY (a transient error: the batch is retried). Writers hold
/// the lock for one batch's statements, milliseconds; this is far more.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::backend::Backend;

impl Backend {
    /// The backend a database URL names: `postgres://` (or `postgresql://`)
    /// or `sqlite://path`.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "sqlite" => Ok(Backend::Sqlite),
            _ => Err(StoreError::UnknownScheme),
        }
    }
}

/// One value per backend: a pool, a connection, a transaction.
#[derive(Debug, Clone)]
pub enum Backed<P, S> {
    Postgres(P),
    Sqlite(S),
}

/// The database behind a store: a pool of either kind.
pub type Db = Backed<PgPool, SqlitePool>;

/// Runs the expression for whichever backend `$on` holds, binding its
/// payload to `$c`. The two arms are type-checked separately, so the same
/// text may call two different backend modules.
macro_rules! on_backend {
    ($on:expr, $c:ident => $pg:expr, $lite:expr) => {
        match $on {
            $crate::store::Backed::Postgres($c) => $pg,
            $crate::store::Backed::Sqlite($c) => $lite,
        }
    };
}
pub(crate) use on_backend;

/// Runs one statement that both backends accept word for word: `$body` is
/// written once and compiled for each, with `$c` the backend's pool or
/// connection and `$id` the request id as that backend stores it (a UUID on
/// PostgreSQL, hyphenated text on SQLite).
macro_rules! on_either_backend {
    ($on:expr, $request:expr, |$c:ident, $id:ident| $body:expr) => {
        match $on {
            $crate::store::Backed::Postgres($c) => {
                let $id = $request;
                $body
            }
            $crate::store::Backed::Sqlite($c) => {
                let $id = $crate::store::sqlite::id($request);
                $body
            }
        }
    };
}
pub(crate) use on_either_backend;

/// Shrinks a connection's I/O buffers as it goes back to the pool. A
/// statement that sends or reads a lot (a discovery page's manifest rows in
/// one `INSERT`, a deletion batch's objects) grows them, and a pooled
/// connection would otherwise keep that memory for the rest of the process:
/// one grown buffer per connection, so a member with more pages left more of
/// them behind (issue 12's peak-memory benchmark). Shrinking only reallocates
/// a buffer larger than its default size. (SQLite connections have no such
/// buffers.)
fn give_back_grown_buffers(conn: &mut sqlx::PgConnection) {
    sqlx::Connection::shrink_buffers(conn);
}

/// A handle on lethe's tables.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    /// Bumped after every submission and retry made through this store, so
    /// idle workers in the same process wake at once. (PostgreSQL also
    /// NOTIFYs other processes; SQLite has no such thing, and workers in
    /// other processes poll.)
    submitted: Arc<watch::Sender<u64>>,
}

impl Store {
    /// Connects to the database at `url`: PostgreSQL, or a SQLite file (created
    /// if missing, in WAL mode so that readers never wait for the writer).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, Error> {
        let db = match Backend::of_url(url)? {
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|source| StoreError::InvalidUrl {
                        backend: Backend::Postgres,
                        source,
                    })?
                    .application_name("lethe");
                let target = format!("{}:{}", options.get_host(), options.get_port());
                // One connection first, on its own: the pool would retry until
                // its timeout and then say only "pool timed out", hiding the
                // cause ("connection refused", a bad password, no such
                // database).
                let probe = tokio::time::timeout(
                    Duration::from_secs(10),
                    <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
                )
                .await
                .map_err(|_| StoreError::NoAnswer {
                    host: options.get_host().to_owned(),
                    port: options.get_port(),
                })?
                .map_err(|source| StoreError::Connect {
                    target: target.clone(),
                    source,
                })?;
                let _ = sqlx::Connection::close(probe).await;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            give_back_grown_buffers(conn);
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::Connect { target, source })?;
                Backed::Postgres(pool)
            }
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|source| StoreError::InvalidUrl {
                        backend: Backend::Sqlite,
                        source,
                    })?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let file = options.get_filename().display().to_string();
                create_private(options.get_filename()).map_err(|source| {
                    StoreError::CreateFile {
                        file: file.clone(),
                        source,
                    }
                })?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::OpenFile { file, source })?;
                Backed::Sqlite(pool)
            }
        };
        Ok(Store::new(db))
    }

    /// Wraps an existing PostgreSQL pool.
    pub fn from_pool(pool: PgPool) -> Store {
        Store::new(Backed::Postgres(pool))
    }

    /// Wraps an existing SQLite pool. Its connections should wait for the
    /// write lock ([`SQLITE_BUSY_TIMEOUT`]) and use WAL, as
    /// [`Store::connect`]'s do.
    pub fn from_sqlite_pool(pool: SqlitePool) -> Store {
        Store::new(Backed::Sqlite(pool))
    }

    fn new(db: Db) -> Store {
        Store {
            db,
            submitted: Arc::new(watch::channel(0).0),
        }
    }

    /// The pool, for tools that work on the service's own tables (the
    /// example service, tests). The workflow never needs it.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Backed::Postgres(_) => Backend::Postgres,
            Backed::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Begins a transaction. On SQLite it begins IMMEDIATE: it holds the
    /// write lock from the start (waiting up to [`SQLITE_BUSY_TIMEOUT`]), so
    /// it is serialised with every other writer, in this process or another.
    pub async fn begin(&self) -> Result<Tx, Error> {
        Ok(on_backend!(&self.db, pool =>
            Tx::postgres(pool.begin().await?),
            Tx::sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)))
    }

    /// Begins a transaction ([`Store::begin`]) whose statements wait for
    /// locks and run no longer than `limits` say: on PostgreSQL,
    /// `lock_timeout` and `statement_timeout` set for this transaction only
    /// (`set_config(.., true)`, i.e. `SET LOCAL`), before its first
    /// statement. A statement past a limit fails with a transient error, so
    /// the batch is given up and retried later. On SQLite the write lock
    /// taken at BEGIN is the only lock, bounded by [`SQLITE_BUSY_TIMEOUT`].
    pub async fn begin_limited(&self, limits: StatementLimits) -> Result<Tx, Error> {
        let mut tx = self.begin().await?;
        if let Backed::Postgres(conn) = tx.conn() {
            sqlx::query(
                "SELECT set_config('lock_timeout', $1, true), \
                        set_config('statement_timeout', $2, true)",
            )
            .bind(format!("{}ms", limits.lock_timeout.as_millis()))
            .bind(format!("{}ms", limits.statement_timeout.as_millis()))
            .execute(conn)
            .await?;
        }
        Ok(tx)
    }

    /// Applies pending migrations, each in its own transaction.
    pub async fn migrate(&self) -> Result<(), Error> {
        on_backend!(&self.db, pool =>
            POSTGRES_MIGRATOR.run(pool).await?,
            SQLITE_MIGRATOR.run(pool).await?);
        Ok(())
    }

    /// Fails with a clear message when `lethe migrate` has not been run.
    pub async fn require_schema(&self) -> Result<(), Error> {
        let present = introspect::table_exists(self, "erasure_requests", None).await?;
        if present {
            Ok(())
        } else {
            Err(StoreError::NotMigrated.into())
        }
    }

    /// Closes the pool: waits for connections in use to come back, and on
    /// SQLite folds the write-ahead log into the database file.
    pub async fn close(&self) {
        on_backend!(&self.db, pool => pool.close().await, pool.close().await)
    }

    /// Wakes idle workers of this process (after a submission or retry).
    pub(crate) fn wake_workers(&self) {
        self.submitted.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// What wakes an idle worker: NOTIFY on PostgreSQL, and submissions
    /// through this store on either backend.
    pub async fn wakeups(&self) -> Wakeups {
        Wakeups::new(self, self.submitted.subscribe()).await
    }
}

/// How long a transaction's statements may wait for a lock, and run; zero
/// is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementLimits {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
}

/// Creates a SQLite database file that does not exist yet readable by its
/// owner only: it holds the service's personal data and lethe's. (SQLite
/// gives its -wal and -shm files the database file's permissions.) An
/// existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path == std::path::Path::new(":memory:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// The states an SQL filter should treat as active.
pub(crate) fn active_state_names() -> Vec<&'static str> {
    State::ACTIVE.iter().map(|state| state.as_str()).collect()
}

/// `'a', 'b', 'c'`: an SQL list of lethe's own constant names (states),
/// for SQLite, which has no arrays to bind. Never for values from outside.
pub(crate) fn constant_list(names: &[&'static str]) -> String {
    names
        .iter()
        .map(|name| {
            debug_assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
            format!("'{name}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("sqlite://lethe.sqlite3").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::of_url("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        let err = Backend::of_url("mysql://h/db").unwrap_err().to_string();
        assert!(err.contains("sqlite://"), "{err}");
    }

    /// Regression: the PostgreSQL migrations moved from `migrations/` to
    /// `migrations/postgres/`. sqlx matches applied migrations by version and
    /// checksum (SHA-384 of the file), so these must not change, or `lethe
    /// migrate` on an existing database would refuse to run.
    #[test]
    fn moved_postgres_migrations_keep_their_versions_and_checksums() {
        let expected = [
            (
                20261126000001,
                "0cf9c7b041174a996668666f9bb17d8ad9c237a7e1477523be79a6d4ab852c25021307bb63ec9c266ec41e2322fc3c68",
            ),
            (
                20261126000002,
                "34d12b8a1200e2bbf1e4e8d8efe51af0623835f0e287e83953509ee223083cf78b5ac5641eef89929ba6a8922a24d4fb",
            ),
            (
                20261203000001,
                "86f3992217fd644d1804fcf120c6d63de4c097bd7e8617e0626068be8128a94898fe357c62dd2ddb5f79806d9aabdc7b",
            ),
            // Added after the move; pinned all the same (applied migrations
            // are never edited: a change is a new file).
            (
                20261211000001,
                "fbc2f667d23fd2d7993d3a39f08b6ce12fd9bce8e07df0cd8f1fcbd2753f4c5794fc85b9b0d3874a7bc6b2978328f038",
            ),
        ];
        let found: Vec<(i64, String)> = POSTGRES_MIGRATOR
            .iter()
            .map(|m| {
                let hex: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
                (m.version, hex)
            })
            .collect();
        let expected: Vec<(i64, String)> = expected
            .iter()
            .map(|(v, c)| (*v, (*c).to_owned()))
            .collect();
        // The moved ones keep theirs; later migrations are appended.
        assert_eq!(found[..expected.len()], expected[..]);
        let sqlite: Vec<i64> = SQLITE_MIGRATOR.iter().map(|m| m.version).collect();
        let postgres: Vec<i64> = POSTGRES_MIGRATOR.iter().map(|m| m.version).collect();
        assert_eq!(sqlite, postgres, "both backends have the same versions");
    }
}
