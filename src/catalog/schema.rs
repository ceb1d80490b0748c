//! Checks a catalog against the live database and compiles it into a
//! [`Plan`]: the SQL statements the workflow runs, built once at start-up.
//!
//! The rule this module keeps: every table and column a statement names was
//! seen in the database's own catalog first (`pg_attribute` on PostgreSQL,
//! `pragma_table_info` on SQLite), every identifier is quoted, and every
//! value (subject key, row ids, fixed masks) is a bound parameter. Row ids
//! travel as text and are cast to the key column's own type, so lookups use
//! the service's indexes. The SQL is written in the dialect of the database
//! checked ([`super::dialect`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::dialect::Dialect;
use super::ident::{Ident, TableName};
use super::model::ReferenceSource;
use super::policy::{ColumnMask, ColumnType, Policy, RowErasure};
pub use super::table_plan::TablePlan;
use super::table_plan::compile_table;
use super::{Catalog, CatalogError};
use crate::store::{Store, introspect};

/// A catalog compiled against the database it will erase from.
#[derive(Debug, Clone)]
pub struct Plan {
    pub catalog: Catalog,
    /// Client tables, in union order (the order of `catalog.toml`).
    pub clients: Vec<ClientLookup>,
    /// One per catalog feature, same order.
    pub features: Vec<FeatureLookup>,
    /// Every table rows are erased from, by its catalog name.
    pub tables: BTreeMap<String, TablePlan>,
    /// Things that work but deserve an operator's look (missing indexes,
    /// columns the catalog does not mention).
    pub warnings: Vec<String>,
}

/// How to page through one client table for a subject.
#[derive(Debug, Clone)]
pub struct ClientLookup {
    pub table: String,
    /// `$1` subject -> count.
    pub count_sql: String,
    /// `$1` subject, `$2` last id seen (text or NULL), `$3` limit -> (id, type).
    pub page_sql: String,
    /// Whether erasure removes the subject key from this table's rows (the
    /// subject column is masked, or rows are deleted), so that afterwards
    /// `count_sql` must find none: the check that discovery missed nothing.
    pub erases_subject: bool,
}

#[derive(Debug, Clone)]
pub struct FeatureLookup {
    pub types: Vec<String>,
    pub tables: FeatureTables,
}

/// A feature's tables, or which one this database lacks (optional features).
#[derive(Debug, Clone)]
pub enum FeatureTables {
    Present {
        feature: ChildLookup,
        task: Option<ChildLookup>,
    },
    Missing {
        table: String,
    },
}

/// How to fetch the rows below a set of parent ids.
#[derive(Debug, Clone)]
pub struct ChildLookup {
    pub table: String,
    /// `$1` parent ids (a list of ids) -> (id, reference columns as text...).
    pub select_sql: String,
    pub references: Vec<ReferenceSource>,
}

/// The columns of one table, as the database reports them.
struct TableColumns(BTreeMap<String, ColumnType>);

impl TableColumns {
    fn get(&self, column: &Ident) -> Option<&ColumnType> {
        self.0.get(column.as_str())
    }
}

struct Compiler<'a> {
    store: &'a Store,
    dialect: Dialect,
    columns: BTreeMap<String, TableColumns>,
    tables: BTreeMap<String, TablePlan>,
    warnings: Vec<String>,
}

impl Plan {
    /// Checks every table, column and policy of `catalog` against the
    /// database behind `store`, and writes its statements in that
    /// database's dialect.
    pub async fn compile(catalog: Catalog, store: &Store) -> Result<Plan, CatalogError> {
        let dialect = Dialect::from(store.backend());
        let mut compiler = Compiler {
            store,
            dialect,
            columns: BTreeMap::new(),
            tables: BTreeMap::new(),
            warnings: Vec::new(),
        };
        let main_file = catalog.dir.join("catalog.toml");

        let mut clients = Vec::new();
        for (index, client) in catalog.client_tables.iter().enumerate() {
            let entry = format!("clients[{index}] ({})", client.table);
            let id_type = compiler
                .require_columns(
                    &main_file,
                    &entry,
                    &client.table,
                    &[&client.id, &client.subject, &client.feature_type],
                )
                .await?
                .remove(0);
            compiler
                .warn_unindexed(&client.table, &client.subject)
                .await?;
            let keys = BTreeSet::from([client.id.as_str(), client.feature_type.as_str()]);
            compiler
                .add_table(
                    &main_file,
                    &entry,
                    &client.table,
                    &client.id,
                    client.erase,
                    &client.mask,
                    &keys,
                )
                .await?;
            let table = client.table.quoted();
            let (id, subject, ty) = (
                client.id.quoted(),
                client.subject.quoted(),
                client.feature_type.quoted(),
            );
            let erases_subject = client.erase == RowErasure::Delete
                || client
                    .mask
                    .get(&client.subject)
                    .is_some_and(|policy| !policy.is_keep());
            if !erases_subject {
                compiler.warnings.push(format!(
                    "{}: {entry}: the subject column {:?} is kept, so verification cannot prove \
                     that every client row of the member was found",
                    main_file.display(),
                    client.subject.as_str()
                ));
            }
            clients.push(ClientLookup {
                table: client.table.to_string(),
                erases_subject,
                count_sql: format!("SELECT count(*) FROM {table} WHERE {subject} = $1"),
                page_sql: format!(
                    // Output columns get aliases of lethe's own: ORDER BY a name
                    // that matches an output column sorts by that column, and
                    // `id::text` would sort "100" before "91".
                    "SELECT {id_text} AS lethe_row_id, {ty_text} AS lethe_feature_type FROM {table} \
                     WHERE {subject} = $1 AND ({no_cursor} OR {id} > {cursor}) \
                     ORDER BY {table}.{id} LIMIT $3",
                    id_text = dialect.text(&id),
                    ty_text = dialect.text(&ty),
                    no_cursor = dialect.param_is_null(2),
                    cursor = dialect.param_as(2, &id_type.sql_type),
                ),
            });
        }

        let mut features = Vec::new();
        for feature in &catalog.features {
            let file = &feature.file;
            let spec = &feature.spec.feature;
            let entry = format!("feature ({})", spec.table);
            if feature.spec.optional
                && let Some(missing) = compiler.first_missing_table(&feature.spec).await?
            {
                compiler.warnings.push(format!(
                    "{}: table {missing} does not exist; the feature is optional, so each client row \
                     of type {:?} will be reported as a missing_table anomaly",
                    file.display(),
                    feature.spec.types
                ));
                features.push(FeatureLookup {
                    types: feature.spec.types.clone(),
                    tables: FeatureTables::Missing { table: missing },
                });
                continue;
            }
            let lookup = compiler
                .child_lookup(
                    file,
                    &entry,
                    &spec.table,
                    &spec.id,
                    &spec.client_id,
                    &spec.references,
                )
                .await?;
            let keys = BTreeSet::from([spec.id.as_str(), spec.client_id.as_str()]);
            compiler
                .add_table(
                    file,
                    &entry,
                    &spec.table,
                    &spec.id,
                    spec.erase,
                    &spec.mask,
                    &keys,
                )
                .await?;
            let task = match &feature.spec.task {
                None => None,
                Some(task) => {
                    let entry = format!("task ({})", task.table);
                    let lookup = compiler
                        .child_lookup(
                            file,
                            &entry,
                            &task.table,
                            &task.id,
                            &task.feature_id,
                            &task.references,
                        )
                        .await?;
                    let keys = BTreeSet::from([task.id.as_str(), task.feature_id.as_str()]);
                    compiler
                        .add_table(
                            file,
                            &entry,
                            &task.table,
                            &task.id,
                            task.erase,
                            &task.mask,
                            &keys,
                        )
                        .await?;
                    Some(lookup)
                }
            };
            features.push(FeatureLookup {
                types: feature.spec.types.clone(),
                tables: FeatureTables::Present {
                    feature: lookup,
                    task,
                },
            });
        }

        for warning in &compiler.warnings {
            tracing::warn!(catalog = %catalog.name, "{warning}");
        }
        Ok(Plan {
            catalog,
            clients,
            features,
            tables: compiler.tables,
            warnings: compiler.warnings,
        })
    }

    /// The lookup for a client row's feature type.
    pub fn feature_for_type(&self, feature_type: &str) -> Option<&FeatureLookup> {
        self.features
            .iter()
            .find(|feature| feature.types.iter().any(|ty| ty == feature_type))
    }

    /// Every table the plan erases from, tasks first and client tables last,
    /// so that the rows leading to a member are the last to go.
    pub fn erase_order(&self) -> Vec<&TablePlan> {
        let client_tables: BTreeSet<&str> = self.clients.iter().map(|c| c.table.as_str()).collect();
        let mut order: Vec<&TablePlan> = Vec::new();
        let mut push = |name: &str| {
            if let Some(plan) = self.tables.get(name)
                && !order.iter().any(|seen| seen.name == plan.name)
            {
                order.push(plan);
            }
        };
        for feature in &self.features {
            if let FeatureTables::Present {
                task: Some(task), ..
            } = &feature.tables
            {
                push(&task.table);
            }
        }
        for feature in &self.features {
            if let FeatureTables::Present { feature, .. } = &feature.tables {
                push(&feature.table);
            }
        }
        for name in &client_tables {
            push(name);
        }
        order
    }
}

impl Compiler<'_> {
    /// The first of a feature's tables that this database lacks.
    async fn first_missing_table(
        &self,
        spec: &super::FeatureFile,
    ) -> Result<Option<String>, CatalogError> {
        let mut tables = vec![&spec.feature.table];
        if let Some(task) = &spec.task {
            tables.push(&task.table);
        }
        for table in tables {
            let exists = introspect::table_exists(
                self.store,
                table.table.as_str(),
                table.schema.as_ref().map(Ident::as_str),
            )
            .await?;
            if !exists {
                return Ok(Some(table.to_string()));
            }
        }
        Ok(None)
    }

    /// Reads a table's columns once; a missing table is an error naming the
    /// catalog entry.
    async fn columns_of(
        &mut self,
        file: &Path,
        entry: &str,
        table: &TableName,
    ) -> Result<&TableColumns, CatalogError> {
        let name = table.to_string();
        if !self.columns.contains_key(&name) {
            let rows = introspect::columns(
                self.store,
                table.table.as_str(),
                table.schema.as_ref().map(Ident::as_str),
            )
            .await?;
            if rows.is_empty() {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    format!(
                        "table {name:?} does not exist in the database (is the catalog for this service, and the search_path right?)"
                    ),
                ));
            }
            let columns = rows
                .into_iter()
                .map(|c| {
                    let column_type = ColumnType {
                        sql_type: c.sql_type,
                        nullable: c.nullable,
                    };
                    (c.name, column_type)
                })
                .collect();
            self.columns.insert(name.clone(), TableColumns(columns));
        }
        Ok(&self.columns[&name])
    }

    /// The types of the named columns, or an error naming the missing one.
    async fn require_columns(
        &mut self,
        file: &Path,
        entry: &str,
        table: &TableName,
        wanted: &[&Ident],
    ) -> Result<Vec<ColumnType>, CatalogError> {
        let columns = self.columns_of(file, entry, table).await?;
        wanted
            .iter()
            .map(|column| {
                columns.get(column).cloned().ok_or_else(|| {
                    CatalogError::invalid(
                        file,
                        entry,
                        format!(
                            "column {:?} does not exist in table {table}",
                            column.as_str()
                        ),
                    )
                })
            })
            .collect()
    }

    async fn warn_unindexed(
        &mut self,
        table: &TableName,
        column: &Ident,
    ) -> Result<(), CatalogError> {
        let indexed = introspect::leads_an_index(
            self.store,
            table.table.as_str(),
            table.schema.as_ref().map(Ident::as_str),
            column.as_str(),
        )
        .await?;
        if !indexed {
            self.warnings.push(format!(
                "{table}.{column} has no index starting with it: every batch will scan the table; \
                 CREATE INDEX ON {} ({})",
                table.quoted(),
                column.quoted()
            ));
        }
        Ok(())
    }

    async fn child_lookup(
        &mut self,
        file: &Path,
        entry: &str,
        table: &TableName,
        id: &Ident,
        parent: &Ident,
        references: &[ReferenceSource],
    ) -> Result<ChildLookup, CatalogError> {
        let mut wanted = vec![id, parent];
        wanted.extend(references.iter().map(|source| &source.column));
        let types = self.require_columns(file, entry, table, &wanted).await?;
        self.warn_unindexed(table, parent).await?;
        // Aliased so that ORDER BY names the table's column, not an output
        // column of the same name (which would sort ids as text).
        let dialect = self.dialect;
        let mut select = vec![format!("{} AS lethe_row_id", dialect.text(&id.quoted()))];
        for (index, source) in references.iter().enumerate() {
            select.push(format!(
                "{} AS lethe_ref_{index}",
                dialect.text(&source.column.quoted())
            ));
        }
        let quoted = table.quoted();
        Ok(ChildLookup {
            table: table.to_string(),
            select_sql: format!(
                "SELECT {} FROM {quoted} WHERE {} ORDER BY {quoted}.{}",
                select.join(", "),
                dialect.in_ids(
                    &format!("{quoted}.{}", parent.quoted()),
                    &types[1].sql_type,
                    1
                ),
                id.quoted(),
            ),
            references: references.to_vec(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn add_table(
        &mut self,
        file: &Path,
        entry: &str,
        table: &TableName,
        id: &Ident,
        erase: RowErasure,
        mask: &BTreeMap<Ident, Policy>,
        keys: &BTreeSet<&str>,
    ) -> Result<(), CatalogError> {
        let columns = TableColumns(self.columns_of(file, entry, table).await?.0.clone());
        let id_type = columns
            .get(id)
            .ok_or_else(|| {
                CatalogError::invalid(
                    file,
                    entry,
                    format!("column {:?} does not exist in table {table}", id.as_str()),
                )
            })?
            .sql_type
            .clone();
        let mut masks = Vec::new();
        for (column, policy) in mask {
            let column_type = columns.get(column).cloned().ok_or_else(|| {
                CatalogError::invalid(
                    file,
                    format!("{entry}: mask.{column}"),
                    format!(
                        "column {:?} does not exist in table {table}",
                        column.as_str()
                    ),
                )
            })?;
            policy.check_type(&column_type).map_err(|problem| {
                CatalogError::invalid(file, format!("{entry}: mask.{column}"), problem)
            })?;
            masks.push(ColumnMask {
                column: column.clone(),
                policy: policy.clone(),
                column_type,
            });
        }
        let unlisted: Vec<&str> = columns
            .0
            .keys()
            .map(String::as_str)
            .filter(|column| !keys.contains(column) && !mask.keys().any(|m| m.as_str() == *column))
            .collect();
        if erase == RowErasure::Mask && !unlisted.is_empty() {
            self.warnings.push(format!(
                "{}: {entry}: columns {unlisted:?} are neither masked nor marked \"keep\": \
                 they are kept; list them so the catalog says whether they are personal",
                file.display()
            ));
        }

        let plan = compile_table(table, id, &id_type, erase, masks, self.dialect);
        let name = table.to_string();
        if let Some(existing) = self.tables.get(&name) {
            if existing.erase_sql != plan.erase_sql || existing.erase_params != plan.erase_params {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    format!(
                        "table {name} is catalogued more than once with different erasure; give every entry for it the same id, erase and mask"
                    ),
                ));
            }
            return Ok(());
        }
        self.tables.insert(name, plan);
        Ok(())
    }
}
