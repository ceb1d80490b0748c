//! lethe's statements for SQLite, the embedded backend, where they differ
//! from PostgreSQL's. Called only from the backend-neutral modules of
//! [`crate::store`], which hold the logic; inside a transaction they run
//! under SQLite's single write lock, taken at BEGIN IMMEDIATE
//! ([`crate::store::Store::begin`]), so where the PostgreSQL statements lock
//! rows (`FOR UPDATE`, `SKIP LOCKED`, advisory locks), these need not: no
//! other writer, in this process or another, runs meanwhile.
//!
//! Representation (see `migrations/sqlite/`): ids are UUID text; times are
//! UTC text with milliseconds, written by [`now!`] in SQL and by [`time`]
//! when bound, in one format, so that comparing them as text compares them
//! as times; JSON is text; sets of values are bound as one JSON array and
//! read with `json_each`.

pub mod lease;
pub mod manifest;
pub mod record;
pub mod requests;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

/// The current time as SQLite rows store it (an SQL expression).
macro_rules! now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
    };
}
pub(crate) use now;

/// The current time plus `$param` seconds (a bound number), as stored.
macro_rules! now_plus_secs {
    ($param:literal) => {
        concat!(
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('%+.3f seconds', ",
            $param,
            "))"
        )
    };
}
pub(crate) use now_plus_secs;

/// A time as SQLite rows store it (what [`now!`] writes).
pub fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A request id as SQLite rows store it: hyphenated text.
pub fn id(id: Uuid) -> Hyphenated {
    id.hyphenated()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_times_sort_like_the_ones_sqlite_writes() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T09:05:03.04567Z")
            .unwrap()
            .with_timezone(&Utc);
        // strftime('%Y-%m-%dT%H:%M:%fZ') writes milliseconds, zero-padded.
        assert_eq!(time(at), "2026-11-26T09:05:03.045Z");
        let later = at + chrono::Duration::milliseconds(960);
        assert!(time(at) < time(later));
    }
}
