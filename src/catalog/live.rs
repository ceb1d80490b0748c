//! The live database's schema as a plain value: the tables a catalog names,
//! their columns and types, primary keys, unique and other indexes, foreign
//! keys and size estimates. The store reads it once
//! ([`crate::store::introspect`]); the catalog compiler and `lethe catalog
//! init` only read this value, so both are testable without a database.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::Backend;

/// What the database says about some of its tables.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSchema {
    pub backend: Backend,
    /// By name as the catalog writes it (`table` or `schema.table`).
    pub tables: BTreeMap<String, LiveTable>,
}

/// One table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveTable {
    /// In the table's order.
    pub columns: Vec<LiveColumn>,
    /// The primary key's columns; empty when it has none.
    pub primary_key: Vec<String>,
    /// Every index: its columns in order (an expression index has no
    /// entry), whether it is unique, and whether it is partial.
    pub indexes: Vec<LiveIndex>,
    pub foreign_keys: Vec<ForeignKey>,
    /// The planner's row estimate, when the database keeps one.
    pub estimated_rows: Option<i64>,
}

/// One column as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveColumn {
    pub name: String,
    /// PostgreSQL: `format_type()` (e.g. `jsonb`, `character varying(64)`).
    /// SQLite: the declared type, lowercased (e.g. `integer`, `text`).
    pub sql_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveIndex {
    pub columns: Vec<String>,
    pub unique: bool,
    pub partial: bool,
}

/// `columns` of this table reference `ref_columns` of `ref_table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
}

impl LiveSchema {
    pub fn table(&self, name: &str) -> Option<&LiveTable> {
        self.tables.get(name)
    }
}

impl LiveTable {
    pub fn column(&self, name: &str) -> Option<&LiveColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether the database guarantees that no two rows share these
    /// columns' values: the primary key, or a unique, non-partial index, is
    /// made of some of them.
    pub fn proves_unique(&self, columns: &[&str]) -> bool {
        let covered = |index: &[String]| {
            !index.is_empty() && index.iter().all(|c| columns.contains(&c.as_str()))
        };
        covered(&self.primary_key)
            || self
                .indexes
                .iter()
                .any(|index| index.unique && !index.partial && covered(&index.columns))
    }

    /// Whether some index starts with `column` (a lookup by it is an index
    /// scan, not a scan of the table).
    pub fn leads_an_index(&self, column: &str) -> bool {
        self.primary_key.first().is_some_and(|c| c == column)
            || self
                .indexes
                .iter()
                .any(|index| index.columns.first().is_some_and(|c| c == column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniqueness_needs_a_key_or_full_unique_index_within_the_columns() {
        let table = LiveTable {
            primary_key: vec!["id".into(), "created_at".into()],
            indexes: vec![
                LiveIndex {
                    columns: vec!["token".into()],
                    unique: true,
                    partial: true,
                },
                LiveIndex {
                    columns: vec!["ref".into()],
                    unique: false,
                    partial: false,
                },
            ],
            ..LiveTable::default()
        };
        assert!(!table.proves_unique(&["id"]));
        assert!(table.proves_unique(&["id", "created_at"]));
        assert!(
            !table.proves_unique(&["token"]),
            "a partial index proves nothing"
        );
        assert!(!table.proves_unique(&["ref"]));
        assert!(table.leads_an_index("id") && table.leads_an_index("ref"));
        assert!(!table.leads_an_index("created_at"));
    }
}
