//! One table's erasure, compiled: the statement that masks (or deletes) a
//! batch of rows by id, and the statement that reads them back. Built once
//! at start-up by [`super::schema`], in the database's dialect; the rule it
//! keeps is the schema module's: identifiers quoted, values bound, ids cast
//! to the key column's own type so that lookups use the service's indexes.

use super::dialect::Dialect;
use super::ident::{Ident, TableName};
use super::policy::{ColumnMask, RowErasure};
use crate::error::Error;
use crate::store::dynamic::{self, Arg};
use crate::store::{Store, Tx};

/// How to erase rows of one table by id, and check that it happened.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: TableName,
    pub erase: RowErasure,
    pub masks: Vec<ColumnMask>,
    /// Fixed values bound first, then the ids as the last parameter.
    pub erase_sql: String,
    pub erase_params: Vec<String>,
    /// Counts rows among the ids that are NOT erased; None when no column's
    /// outcome can be read back (all `keep` or `random`).
    pub verify_sql: Option<String>,
    pub verify_params: Vec<String>,
}

pub(super) fn compile_table(
    table: &TableName,
    id: &Ident,
    id_type: &str,
    erase: RowErasure,
    masks: Vec<ColumnMask>,
    dialect: Dialect,
) -> TablePlan {
    let ids_match = |n: usize| dialect.in_ids(&id.quoted(), id_type, n);
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
    TablePlan {
        name: table.clone(),
        erase,
        masks,
        erase_sql,
        erase_params,
        verify_sql,
        verify_params,
    }
}

impl TablePlan {
    /// Erases the rows with these ids, in the batch's transaction; returns
    /// how many rows it touched.
    pub async fn erase(&self, tx: &mut Tx, ids: &[String]) -> Result<u64, Error> {
        let args = self.args(&self.erase_params, ids);
        dynamic::execute(tx, &self.erase_sql, &args).await
    }

    /// How many of these rows still hold unerased values.
    pub async fn count_unerased(&self, store: &Store, ids: &[String]) -> Result<i64, Error> {
        let Some(sql) = &self.verify_sql else {
            return Ok(0);
        };
        let args = self.args(&self.verify_params, ids);
        dynamic::fetch_count(store, sql, &args).await
    }

    fn args<'a>(&self, params: &'a [String], ids: &'a [String]) -> Vec<Arg<'a>> {
        let mut args: Vec<Arg<'a>> = params.iter().map(|p| Arg::Text(p)).collect();
        args.push(Arg::Ids(ids));
        args
    }
}
