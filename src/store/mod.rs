//! The store: lethe's own tables in the service's PostgreSQL database.
//!
//! The rules this module keeps: migrations are embedded and applied by
//! `lethe migrate` and by tests alike; a request's state changes only
//! through [`State::check_transition`]; and every write a worker makes to a
//! request it holds is fenced by its lease epoch ([`lease`]), so a worker
//! that lost its lease cannot overwrite the one that took it over.

pub mod events;
pub mod lease;
pub mod manifest;
pub mod record;
pub mod requests;

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use lease::Lease;
pub use requests::{RequestRecord, Submission};

use crate::error::Error;
use crate::workflow::state::State;

/// The embedded migrations (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle on lethe's tables.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to the database at `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, Error> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| {
                Error::Setup(format!("DATABASE_URL is not a valid PostgreSQL URL: {err}"))
            })?
            .application_name("lethe");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|err| Error::Setup(format!("connecting to the database: {err}")))?;
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies pending migrations, each in its own transaction.
    pub async fn migrate(&self) -> Result<(), Error> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Fails with a clear message when `lethe migrate` has not been run.
    pub async fn require_schema(&self) -> Result<(), Error> {
        let present: bool =
            sqlx::query_scalar("SELECT to_regclass('erasure_requests') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        if present {
            Ok(())
        } else {
            Err(Error::Setup(
                "lethe's tables are missing in this database: run `lethe migrate` first".into(),
            ))
        }
    }
}

/// The states an SQL filter should treat as active.
pub(crate) fn active_state_names() -> Vec<&'static str> {
    State::ACTIVE.iter().map(|state| state.as_str()).collect()
}
