//! One table's erasure, compiled: the statement that masks (or deletes) a
//! batch of rows by key, and the statement that reads them back. Built once
//! at start-up by [`super::compile`], in the database's dialect; the rule it
//! keeps is the compiler's: identifiers quoted, values bound, keys cast to
//! the key columns' own types so that lookups use the service's indexes.

use super::dialect::Dialect;
use super::ident::TableName;
use super::keys::{Arg, RowKey};
use super::policy::{ColumnMask, RowErasure};

/// How to erase rows of one table by id, and check that it happened.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: TableName,
    pub key: RowKey,
    pub dialect: Dialect,
    pub erase: RowErasure,
    pub masks: Vec<ColumnMask>,
    /// Fixed values bound first, then the keys ([`RowKey::match_args`]).
    pub erase_sql: String,
    pub erase_params: Vec<String>,
    /// The keys of the rows among the keys that are NOT erased (same
    /// parameters as `verify_sql`); None with it.
    pub unerased_sql: Option<String>,
    /// Counts rows among the keys that are NOT erased; None when no column's
    /// outcome can be read back (all `keep` or `random`).
    pub verify_sql: Option<String>,
    pub verify_params: Vec<String>,
}

pub(super) fn compile_table(
    table: &TableName,
    key: RowKey,
    erase: RowErasure,
    masks: Vec<ColumnMask>,
    dialect: Dialect,
) -> TablePlan {
    let quoted = table.quoted();
    let ids_match = |n: usize| key.match_sql(&quoted, dialect, n);
    let (erase_sql, erase_params, verify_sql, verify_params) = match erase {
        RowErasure::Delete => (
            format!("DELETE FROM {} WHERE {}", table.quoted(), ids_match(1)),
            Vec::new(),
            Some(format!(
                "SELECT count(*) FROM {} WHERE {}",
                table.quoted(),
                ids_match(1)
            )),
            Vec::new(),
        ),
        RowErasure::Mask => {
            let mut params = Vec::new();
            let sets: Vec<String> = masks
                .iter()
                .filter_map(|m| m.assignment(&mut params, dialect))
                .collect();
            let erase_sql = if sets.is_empty() {
                // Nothing to change, but the statement still touches the
                // batch's rows so that an empty mask is visible, not skipped.
                format!(
                    "SELECT count(*) FROM {} WHERE {}",
                    table.quoted(),
                    ids_match(params.len() + 1)
                )
            } else {
                format!(
                    "UPDATE {} SET {} WHERE {}",
                    table.quoted(),
                    sets.join(", "),
                    ids_match(params.len() + 1)
                )
            };
            let mut verify_params = Vec::new();
            let predicates: Vec<String> = masks
                .iter()
                .filter_map(|m| m.masked_predicate(&mut verify_params, dialect))
                .collect();
            let verify_sql = (!predicates.is_empty()).then(|| {
                format!(
                    "SELECT count(*) FROM {} WHERE {} AND NOT ({})",
                    table.quoted(),
                    ids_match(verify_params.len() + 1),
                    predicates.join(" AND ")
                )
            });
            (erase_sql, params, verify_sql, verify_params)
        }
    };
    // The same predicate, returning the keys of the rows it counts.
    let unerased_sql = verify_sql.as_ref().map(|sql| {
        sql.replacen(
            "SELECT count(*)",
            &format!("SELECT {}", key.select_text(&quoted, dialect).join(", ")),
            1,
        )
    });
    TablePlan {
        name: table.clone(),
        unerased_sql,
        key,
        dialect,
        erase,
        masks,
        erase_sql,
        erase_params,
        verify_sql,
        verify_params,
    }
}

impl TablePlan {
    /// The arguments of [`TablePlan::erase_sql`] for these rows.
    pub fn erase_args(&self, keys: &[String]) -> Vec<Arg> {
        self.args(&self.erase_params, keys)
    }

    /// The arguments of [`TablePlan::verify_sql`] for these rows.
    pub fn verify_args(&self, keys: &[String]) -> Vec<Arg> {
        self.args(&self.verify_params, keys)
    }

    fn args(&self, params: &[String], keys: &[String]) -> Vec<Arg> {
        let mut args: Vec<Arg> = params.iter().map(|p| Arg::Text(p.clone())).collect();
        args.extend(self.key.match_args(keys, self.dialect));
        args
    }
}
