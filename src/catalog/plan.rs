//! A catalog compiled against the database it will erase from: the SQL
//! statements discovery, masking and verification run, written once at
//! start-up by [`super::compile`], and the argument lists each takes. Plain
//! values: the store runs them ([`crate::store::service`]).
//!
//! The rules this module keeps: every statement addresses rows by their
//! table's key; every value is bound, and only after its column's
//! [`ValueKind`] accepted it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::Catalog;
use super::dialect::Dialect;
use super::ident::Ident;
use super::keys::{Arg, RowKey, ValueKind};
use super::model::{LinkKind, ReferenceSource};
pub use super::table_plan::TablePlan;

/// A catalog compiled against the database it will erase from.
#[derive(Debug, Clone)]
pub struct Plan {
    pub catalog: Catalog,
    pub dialect: Dialect,
    /// Client tables, in union order (the order of `catalog.toml`).
    pub clients: Vec<ClientPlan>,
    /// One per catalog feature, same order.
    pub features: Vec<FeaturePlan>,
    /// Every table rows are erased from, by its catalog name.
    pub tables: BTreeMap<String, TablePlan>,
    /// What works but deserves an operator's look (missing indexes,
    /// columns the catalog does not mention, checks that cannot be made).
    pub findings: Vec<Finding>,
    /// Checks of the data itself that `lethe catalog check` runs (each
    /// scans a column once): a count of rows that would make a link
    /// unprovable.
    pub data_checks: Vec<DataCheck>,
}

/// Something the compiler wants an operator to know.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub file: PathBuf,
    pub entry: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.entry,
            self.message
        )
    }
}

/// A count query whose answer must be 0 for the catalog to be safe.
#[derive(Debug, Clone, Serialize)]
pub struct DataCheck {
    pub file: PathBuf,
    pub entry: String,
    /// What a non-zero count means, with `{n}` for the count.
    pub problem: String,
    pub sql: String,
}

/// How to page through one client table for a member.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    pub table: String,
    pub key: RowKey,
    /// Whether the member's key can be a value of the subject column.
    pub subject_kind: ValueKind,
    /// `$1` subject -> count.
    pub count_sql: String,
    /// `$1` subject -> how many of the member's rows have a NULL key column
    /// (possible in SQLite, whose non-integer primary keys allow NULL):
    /// rows lethe cannot name, left out of paging and reported. None when
    /// the schema declares every key column NOT NULL.
    pub null_key_sql: Option<String>,
    /// `$1` subject, the cursor ([`RowKey::after_args`]), the limit ->
    /// (key texts..., feature type, link column texts...).
    pub page_sql: String,
    /// The columns links read from this table's rows, in page order.
    pub link_columns: Vec<LinkColumn>,
    /// Whether erasure removes the member's key from this table's rows (the
    /// subject column is masked, or rows are deleted), so that afterwards
    /// `count_sql` must find none: the check that discovery missed nothing.
    pub erases_subject: bool,
}

/// A client column a link reads.
#[derive(Debug, Clone)]
pub struct LinkColumn {
    pub name: Ident,
    pub kind: ValueKind,
}

impl ClientPlan {
    /// Whether this table can hold rows of a member with this key at all
    /// (a uuid column cannot hold `member-1`).
    pub fn can_hold(&self, subject: &str) -> bool {
        self.subject_kind.can_hold(subject)
    }

    pub fn page_args(
        &self,
        subject: &str,
        after: Option<&str>,
        limit: i64,
        dialect: Dialect,
    ) -> Vec<Arg> {
        let mut args = vec![Arg::Text(subject.to_owned())];
        args.extend(self.key.after_args(after, dialect));
        args.push(Arg::Int(limit));
        args
    }
}

/// One feature type's tables.
#[derive(Debug, Clone)]
pub struct FeaturePlan {
    pub types: Vec<String>,
    pub file: PathBuf,
    pub tables: FeatureTables,
}

/// A feature's tables, or which one this database lacks (optional features).
#[derive(Debug, Clone)]
pub enum FeatureTables {
    Present(Box<FeatureRows>),
    Missing { table: String },
}

/// How to reach, prove and read one feature's rows.
#[derive(Debug, Clone)]
pub struct FeatureRows {
    pub table: String,
    pub key: RowKey,
    /// One per client table (same order as [`Plan::clients`]): how that
    /// table's rows reach this feature's rows, or None when the catalog
    /// gives no link.
    pub links: Vec<Option<LinkPlan>>,
    /// The feature row's columns read besides its key (link values that
    /// ownership is checked on, columns tasks point at), in select order.
    pub value_columns: Vec<Ident>,
    /// Every way client rows claim this feature's rows: a row is the
    /// member's only if no claim in any of them is someone else's.
    pub namespaces: Vec<Namespace>,
    pub references: Vec<ReferenceSource>,
    pub tasks: Vec<ChildPlan>,
    /// The keys ([`RowKey::match_args`]) -> the same columns as a link's
    /// `select_sql`: rows read again by key (the second sweep).
    pub by_key_sql: String,
}

/// How one client table's rows reach a feature's rows.
#[derive(Debug, Clone)]
pub struct LinkPlan {
    pub kind: LinkKind,
    /// Index into the client's [`ClientPlan::link_columns`].
    pub client_column: usize,
    /// What the client's values must be before they are bound.
    pub value_kind: ValueKind,
    /// `$1` the client rows' link values -> feature rows: key texts...,
    /// value column texts..., reference column texts...
    pub select_sql: String,
    pub describe: String,
}

/// One way client rows claim feature rows (a feature column, or a join
/// table), with every client table that claims through it.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Index into [`FeatureRows::value_columns`]: the feature's column
    /// whose value is claimed.
    pub value_column: usize,
    /// The claiming client tables, each with the kind of value its column
    /// compares with and of its subject column.
    pub branches: Vec<Branch>,
    /// `$1` feature types, then per branch its parameters ->
    /// the values (as bound) that a client row not the member's claims.
    pub sql: String,
    /// A join namespace takes the values once (not per branch).
    pub join: bool,
    pub describe: String,
}

#[derive(Debug, Clone)]
pub struct Branch {
    pub client: usize,
    pub value_kind: ValueKind,
    pub subject_kind: ValueKind,
}

impl Namespace {
    /// The arguments for [`Namespace::sql`]: each branch gets the values
    /// its column can hold and the member's key (NULL where its subject
    /// column cannot hold it: then every claim there is someone else's).
    pub fn args(&self, types: &[String], values: &[String], subject: &str) -> Vec<Arg> {
        let mut args = vec![Arg::TextList(types.to_vec())];
        let fits = |kind: ValueKind| -> Vec<String> {
            values.iter().filter(|v| kind.accepts(v)).cloned().collect()
        };
        if self.join {
            let kind = self
                .branches
                .first()
                .map(|b| b.value_kind)
                .unwrap_or(ValueKind::Text);
            args.push(Arg::TextList(fits(kind)));
        }
        for branch in &self.branches {
            if !self.join {
                args.push(Arg::TextList(fits(branch.value_kind)));
            }
            args.push(Arg::OptText(
                branch
                    .subject_kind
                    .can_hold(subject)
                    .then(|| subject.to_owned()),
            ));
        }
        args
    }
}

/// How to fetch a task table's rows below proven feature rows.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    pub table: String,
    pub key: RowKey,
    /// Index into the feature's [`FeatureRows::value_columns`].
    pub parent_column: usize,
    pub value_kind: ValueKind,
    /// `$1` parent values -> key texts..., reference column texts...
    pub select_sql: String,
    pub references: Vec<ReferenceSource>,
    /// The keys -> the same columns: rows read again by key.
    pub by_key_sql: String,
}

impl Plan {
    /// The feature a client row's type names.
    pub fn feature_index(&self, feature_type: &str) -> Option<usize> {
        self.features
            .iter()
            .position(|feature| feature.types.iter().any(|ty| ty == feature_type))
    }

    /// Every table the plan erases from, tasks first and client tables last,
    /// so that the rows leading to a member are the last to go.
    pub fn erase_order(&self) -> Vec<&TablePlan> {
        let mut names: Vec<&str> = Vec::new();
        for feature in &self.features {
            if let FeatureTables::Present(rows) = &feature.tables {
                names.extend(rows.tasks.iter().map(|task| task.table.as_str()));
            }
        }
        for feature in &self.features {
            if let FeatureTables::Present(rows) = &feature.tables {
                names.push(&rows.table);
            }
        }
        names.extend(self.clients.iter().map(|client| client.table.as_str()));
        let mut seen = BTreeSet::new();
        names
            .into_iter()
            .filter(|name| seen.insert(*name))
            .filter_map(|name| self.tables.get(name))
            .collect()
    }

    /// Whether some client table's erasure removes the member's key, so
    /// that verification can prove no client row of theirs was missed.
    pub fn can_prove_no_client_row_left(&self) -> bool {
        self.clients.iter().any(|client| client.erases_subject)
    }
}
