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

use crate::backend::Backend;

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

    /// `expr` (text) as a value of a column of `sql_type`.
    pub fn cast_value(self, expr: &str, sql_type: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST({expr} AS {sql_type})"),
            Dialect::Sqlite => sqlite_affinity_cast(expr, sql_type),
        }
    }

    /// `text = ANY(list)`: whether a text expression is one of a list of
    /// texts bound at `$n`.
    pub fn text_in_list(self, expr: &str, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("{expr} = ANY(CAST(${n} AS text[]))"),
            Dialect::Sqlite => format!("{expr} IN (SELECT value FROM json_each(${n}))"),
        }
    }

    /// A one-column table `lethe_v(v)` of the texts bound at `$n`, for a
    /// FROM clause.
    pub fn text_list_table(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("unnest(CAST(${n} AS text[])) AS lethe_v(v)"),
            Dialect::Sqlite => format!("(SELECT value AS v FROM json_each(${n})) AS lethe_v"),
        }
    }

    /// A predicate true when the text `expr` is not a canonical spelling of
    /// a value of `kind` (see [`super::keys::ValueKind::accepts`]); None
    /// when any text is.
    pub fn not_canonical(self, expr: &str, kind: super::keys::ValueKind) -> Option<String> {
        use super::keys::ValueKind;
        const HEX: &str = "[0-9a-f]";
        match (self, kind) {
            (Dialect::Postgres, ValueKind::Integer { .. }) => {
                Some(format!("{expr} !~ '^-?(0|[1-9][0-9]*)$'"))
            }
            (Dialect::Postgres, ValueKind::Numeric) => {
                Some(format!("{expr} !~ '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$'"))
            }
            (Dialect::Postgres, ValueKind::Uuid) => Some(format!(
                "{expr} !~ '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'"
            )),
            (Dialect::Sqlite, ValueKind::Integer { .. }) => Some(format!(
                "({expr} = '' OR {expr} = '-' OR {expr} GLOB '*[^0-9-]*' OR {expr} GLOB '?*-*' \
                 OR {expr} GLOB '0?*' OR {expr} GLOB '-0*')"
            )),
            (Dialect::Sqlite, ValueKind::Uuid) => {
                let group = |n: usize| HEX.repeat(n);
                Some(format!(
                    "{expr} NOT GLOB '{}-{}-{}-{}-{}'",
                    group(8),
                    group(4),
                    group(4),
                    group(4),
                    group(12)
                ))
            }
            _ => None,
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

/// The cast that gives a text value the affinity of a SQLite column of this
/// declared type, so that the comparison with the column uses its index:
/// INTEGER for integer columns, REAL for floating ones. Text, blob and
/// NUMERIC-affinity columns (`uuid`, `date`, `decimal`) need none: SQLite
/// applies the column's affinity to an untyped value when comparing, and a
/// cast to NUMERIC would turn a uuid's text into a number.
fn sqlite_affinity_cast(expr: &str, declared: &str) -> String {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        format!("CAST({expr} AS INTEGER)")
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        format!("CAST({expr} AS REAL)")
    } else {
        expr.to_owned()
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
        assert_eq!(Dialect::Sqlite.param_as(3, "decimal(10,2)"), "$3");
        assert_eq!(Dialect::Sqlite.param_as(3, "uuid"), "$3");
        assert_eq!(
            Dialect::Postgres.in_ids("\"id\"", "bigint", 1),
            "\"id\" = ANY(CAST($1 AS bigint[]))"
        );
    }
}
