//! The library's error type, and the one place that says which errors are
//! transient (back off and try again) and which are permanent (park the
//! request in Failed for an operator). Messages name request ids, tables and
//! buckets, never subject keys or object keys.

use uuid::Uuid;

use crate::catalog::CatalogError;
use crate::config::ConfigError;
use crate::objects::ObjectError;
pub use crate::store::StoreError;
use crate::workflow::state::{IllegalTransition, State, UnknownState};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// lethe's tables or the service's, or connecting to them.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// Something an operator must set up before lethe can run (the message
    /// says what).
    #[error("{0}")]
    Misconfigured(String),
    /// A file lethe reads or writes (the demo's folder, a catalog draft).
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
    /// A request's stored phase cursor does not read back: lethe's own data
    /// is damaged, or was written by an incompatible version.
    #[error("request {id}: unreadable phase cursor; was it written by another version of lethe?")]
    Cursor {
        id: Uuid,
        #[source]
        source: serde_json::Error,
    },
    /// A rule lethe keeps was broken: a bug, reported with what was found.
    #[error("internal error: {0}; please report it")]
    Invariant(String),
    /// `lethe demo` could not run its walkthrough.
    #[error("demo: {0}")]
    Demo(String),
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
            Error::Store(err) => err.is_transient(),
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

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::Store(StoreError::Database(err))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Error::Store(StoreError::Migrate(err))
    }
}
