//! Which database lethe's tables (and the service's) live in: PostgreSQL or
//! SQLite. A leaf: the catalog compiler writes SQL for a backend and the
//! store connects to one, and neither needs the other to name it.

use std::fmt;

/// Which database lethe's tables (and the service's) live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Production: any number of workers on any number of hosts.
    Postgres,
    /// Embedded: one file, workers on one host.
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        })
    }
}
