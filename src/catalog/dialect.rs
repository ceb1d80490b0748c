//! The SQL the catalog compiler writes, in the dialect of the database it
//! checked the catalog against: PostgreSQL or SQLite. Every fragment here is
//! built from quoted identifiers, constants, parameter numbers and the
//! column types the database itself reported; values are always bound.
//!
//! Where the two differ: PostgreSQL casts to the key column's own type (so
//! lookups use the service's indexes) and takes a list of ids as one
//! `text[]` parameter; SQLite has no arrays and types by affinity, so a list
//! of ids is one JSON array parameter read with `json_each`, each value cast
//! to the column's affinity (an INTEGER key compared as an integer, again so
//! its index is used).

use crate::store::Backend;

/// Which SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl From<Backend> for Dialect {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => Dialect::Postgres,
            Backend::Sqlite => Dialect::Sqlite,
        }
    }
}

impl Dialect {
    /// `expr` as text, for values lethe reads as strings (ids, JSON columns).
    pub fn text(self, expr: &str) -> String {
        match self {
            Dialect::Postgres => format!("{expr}::text"),
            Dialect::Sqlite => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// Parameter `$n`, bound as text, as a value of a column of `sql_type`.
    pub fn param_as(self, n: usize, sql_type: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST(${n} AS {sql_type})"),
            Dialect::Sqlite => sqlite_affinity_cast(&format!("${n}"), sql_type),
        }
    }

    /// `column` is one of the ids in parameter `$n` (a list of ids as text;
    /// see [`crate::store::dynamic::Arg::Ids`]).
    pub fn in_ids(self, column: &str, sql_type: &str, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("{column} = ANY(CAST(${n} AS {sql_type}[]))"),
            Dialect::Sqlite => format!(
                "{column} IN (SELECT {} FROM json_each(${n}))",
                sqlite_affinity_cast("value", sql_type)
            ),
        }
    }

    /// Parameter `$n` is NULL (typed, for PostgreSQL's planner).
    pub fn param_is_null(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}::text IS NULL"),
            Dialect::Sqlite => format!("${n} IS NULL"),
        }
    }
}

/// SQLite's type affinity of a declared type (its documented rules, in
/// order), as the cast that gives a text value that affinity. TEXT and BLOB
/// (or no declared type) need none.
fn sqlite_affinity_cast(expr: &str, declared: &str) -> String {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        format!("CAST({expr} AS INTEGER)")
    } else if t.contains("CHAR")
        || t.contains("CLOB")
        || t.contains("TEXT")
        || t.contains("BLOB")
        || t.is_empty()
    {
        expr.to_owned()
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        format!("CAST({expr} AS REAL)")
    } else {
        format!("CAST({expr} AS NUMERIC)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_casts_follow_affinity() {
        assert_eq!(
            Dialect::Sqlite.in_ids("\"id\"", "integer", 1),
            "\"id\" IN (SELECT CAST(value AS INTEGER) FROM json_each($1))"
        );
        assert_eq!(
            Dialect::Sqlite.in_ids("\"k\"", "varchar(64)", 2),
            "\"k\" IN (SELECT value FROM json_each($2))"
        );
        assert_eq!(Dialect::Sqlite.param_as(3, "bigint"), "CAST($3 AS INTEGER)");
        assert_eq!(
            Dialect::Sqlite.param_as(3, "decimal(10,2)"),
            "CAST($3 AS NUMERIC)"
        );
        assert_eq!(
            Dialect::Postgres.in_ids("\"id\"", "bigint", 1),
            "\"id\" = ANY(CAST($1 AS bigint[]))"
        );
    }
}
