//! Checks a catalog against the live database's schema and compiles it into
//! a [`Plan`]: the SQL statements the workflow runs, built once at start-up.
//! Pure: it reads a [`LiveSchema`] value the store read beforehand, and
//! writes SQL in that database's [`Dialect`].
//!
//! The rules this module keeps: every table and column a statement names
//! was seen in the live schema first; every identifier is quoted and every
//! value bound; rows are addressed by a key the database proves unique; a
//! link whose target the database does not prove unique is refused unless
//! the catalog says how duplicates are resolved; link columns of different
//! types need a declared cast. Every problem is reported (not just the
//! first), each naming the file, the entry and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod rules;
mod tables;

use super::dialect::Dialect;
use super::ident::{Ident, TableName};
use super::keys::{KeyColumn, RowKey, ValueKind};
use super::links::{self, ResolvedLink};
use super::live::{LiveSchema, LiveTable};
use super::model::Columns;
use super::ownership;
use super::plan::{
    ClientPlan, DataCheck, FeaturePlan, FeatureRows, FeatureTables, Finding, LinkColumn, Plan,
};
use super::policy::{ColumnType, RowErasure};
use super::{Catalog, CatalogError};

/// Where a problem is: the file and the entry in it.
#[derive(Clone)]
pub(super) struct Place {
    pub file: PathBuf,
    pub entry: String,
}

impl Place {
    fn new(file: &Path, entry: impl Into<String>) -> Self {
        Place {
            file: file.to_owned(),
            entry: entry.into(),
        }
    }

    pub(super) fn error(&self, problem: impl Into<String>) -> CatalogError {
        CatalogError::invalid(&self.file, &self.entry, problem)
    }

    fn finding(&self, message: impl Into<String>) -> Finding {
        Finding {
            file: self.file.clone(),
            entry: self.entry.clone(),
            message: message.into(),
        }
    }
}

pub(super) struct Compiler<'a> {
    pub live: &'a LiveSchema,
    pub dialect: Dialect,
    pub errors: Vec<CatalogError>,
    pub findings: Vec<Finding>,
    pub data_checks: Vec<DataCheck>,
    tables: BTreeMap<String, super::TablePlan>,
}

impl Plan {
    /// Checks every table, column, key, link and policy of `catalog`
    /// against the live schema, and writes its statements in that
    /// database's dialect. All problems are returned together.
    pub fn compile(catalog: Catalog, live: &LiveSchema) -> Result<Plan, CatalogError> {
        let dialect = Dialect::from(live.backend);
        let mut compiler = Compiler {
            live,
            dialect,
            errors: Vec::new(),
            findings: Vec::new(),
            data_checks: Vec::new(),
            tables: BTreeMap::new(),
        };
        let resolved = links::resolve_all(&catalog)?;
        let main_file = catalog.dir.join("catalog.toml");

        // The columns each client table's links read.
        let mut link_columns: Vec<Vec<Ident>> = vec![Vec::new(); catalog.client_tables.len()];
        for per_client in &resolved {
            for (index, link) in per_client.iter().enumerate() {
                if let Some(link) = link
                    && !link_columns[index].contains(&link.client_column)
                {
                    link_columns[index].push(link.client_column.clone());
                }
            }
        }
        let mut clients = Vec::new();
        for (index, client) in catalog.client_tables.iter().enumerate() {
            let place = Place::new(&main_file, format!("clients[{index}] ({})", client.table));
            if let Some(plan) = compiler.client(&place, client, &link_columns[index]) {
                clients.push(plan);
            }
        }
        let mut features = Vec::new();
        if clients.len() == catalog.client_tables.len() {
            for (feature, links) in catalog.features.iter().zip(&resolved) {
                if let Some(plan) = compiler.feature(&catalog, feature, links, &clients) {
                    features.push(plan);
                }
            }
        }
        if !compiler.errors.is_empty() {
            return Err(CatalogError::many(compiler.errors));
        }
        if !clients.iter().any(|c| c.erases_subject) {
            compiler.findings.push(Place::new(&main_file, "clients").finding(
                "no client table's erasure removes the member's key (every subject column is kept): \
                 verification cannot prove that no client row of the member was missed, and the \
                 destruction record will say so",
            ));
        }
        Ok(Plan {
            catalog,
            dialect,
            clients,
            features,
            tables: compiler.tables,
            findings: compiler.findings,
            data_checks: compiler.data_checks,
        })
    }
}

impl Compiler<'_> {
    /// The live table, or an error naming the entry.
    pub(super) fn table(&mut self, place: &Place, name: &TableName) -> Option<&LiveTable> {
        let found = self.live.table(&name.to_string());
        if found.is_none() {
            self.errors.push(place.error(format!(
                "table {name} does not exist in the database (is the catalog for this service, and the search_path right?)"
            )));
        }
        found
    }

    /// The type of each column, or an error naming the missing one.
    pub(super) fn column_types(
        &mut self,
        place: &Place,
        name: &TableName,
        columns: &[&Ident],
    ) -> Option<Vec<ColumnType>> {
        let table = self.table(place, name)?.clone();
        let mut types = Vec::new();
        for column in columns {
            match table.column(column.as_str()) {
                Some(live) => types.push(ColumnType {
                    sql_type: live.sql_type.clone(),
                    nullable: live.nullable,
                }),
                None => {
                    self.errors.push(place.error(format!(
                        "column {:?} does not exist in table {name}",
                        column.as_str()
                    )));
                    return None;
                }
            }
        }
        Some(types)
    }

    /// A table's key, checked to be unique.
    fn key(&mut self, place: &Place, name: &TableName, key: &Columns) -> Option<RowKey> {
        let columns: Vec<&Ident> = key.iter().collect();
        let types = self.column_types(place, name, &columns)?;
        let table = self.live.table(&name.to_string())?;
        let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
        if !table.proves_unique(&names) {
            let pk = if table.primary_key.is_empty() {
                "it has no primary key".to_owned()
            } else {
                format!("its primary key is ({})", table.primary_key.join(", "))
            };
            self.errors.push(place.error(format!(
                "key {key} is not unique in {name} by any primary key or unique index ({pk}): lethe \
                 addresses rows by their key and cannot prove that {key} names one row; set key to \
                 the primary key's columns"
            )));
            // Compiling goes on, so that every problem is reported at once.
        }
        Some(RowKey {
            columns: columns
                .into_iter()
                .zip(types)
                .map(|(name, ty)| KeyColumn {
                    name: name.clone(),
                    sql_type: ty.sql_type,
                })
                .collect(),
        })
    }

    pub(super) fn kind_of(&self, ty: &ColumnType) -> ValueKind {
        ValueKind::of(&ty.sql_type, self.dialect)
    }

    fn client(
        &mut self,
        place: &Place,
        client: &super::ClientTable,
        link_columns: &[Ident],
    ) -> Option<ClientPlan> {
        let key = self.key(place, &client.table, &client.key)?;
        // A key the schema declares NOT NULL throughout cannot be NULL:
        // there is nothing to count.
        let key_columns: Vec<&Ident> = key.columns.iter().map(|c| &c.name).collect();
        let key_may_be_null = self
            .column_types(place, &client.table, &key_columns)?
            .iter()
            .any(|ty| ty.nullable);
        let mut wanted = vec![&client.subject, &client.feature_type];
        wanted.extend(link_columns);
        let types = self.column_types(place, &client.table, &wanted)?;
        self.require_index(place, &client.table, &client.subject, "discovery");
        for column in key.columns.iter() {
            if super::masks(&client.mask, &column.name) {
                self.errors.push(place.error(format!(
                    "the key column {:?} cannot be masked: rows are addressed by it",
                    column.name.as_str()
                )));
            }
        }
        let mut keep: BTreeSet<&str> = key.columns.iter().map(|c| c.name.as_str()).collect();
        keep.extend(link_columns.iter().map(Ident::as_str));
        keep.insert(client.feature_type.as_str());
        self.add_table(
            place,
            &client.table,
            key.clone(),
            client.erase,
            &client.mask,
            &keep,
        );

        let dialect = self.dialect;
        let table = client.table.quoted();
        let subject = format!("{table}.{}", client.subject.quoted());
        let subject_match = format!("{subject} = {}", dialect.param_as(1, &types[0].sql_type));
        let mut select = key.select_text(&table, dialect);
        select.push(format!(
            "{} AS lethe_feature_type",
            dialect.text(&format!("{table}.{}", client.feature_type.quoted()))
        ));
        for (i, column) in link_columns.iter().enumerate() {
            select.push(format!(
                "{} AS lethe_link_{i}",
                dialect.text(&format!("{table}.{}", column.quoted()))
            ));
        }
        let erases_subject = client.erase == RowErasure::Delete
            || client
                .mask
                .get(&client.subject)
                .is_some_and(|policy| !policy.is_keep());
        if !erases_subject {
            self.findings.push(place.finding(format!(
                "the subject column {:?} is kept, so verification cannot prove that every row of \
                 this table carrying the member's key was found",
                client.subject.as_str()
            )));
        }
        let after = key.after_sql(&table, dialect, 2);
        let limit = 2 + key.after_params(dialect);
        let key_nulls: Vec<String> = key
            .columns
            .iter()
            .map(|c| format!("{table}.{} IS NULL", c.name.quoted()))
            .collect();
        Some(ClientPlan {
            table: client.table.to_string(),
            subject_kind: self.kind_of(&types[0]),
            count_sql: format!("SELECT count(*) FROM {table} WHERE {subject_match}"),
            null_key_sql: key_may_be_null.then(|| {
                format!(
                    "SELECT count(*) FROM {table} WHERE {subject_match} AND ({})",
                    key_nulls.join(" OR ")
                )
            }),
            page_sql: format!(
                "SELECT {} FROM {table} WHERE {subject_match} AND NOT ({}) AND {after} ORDER BY {} LIMIT ${limit}",
                select.join(", "),
                key_nulls.join(" OR "),
                key.order_by(&table)
            ),
            link_columns: link_columns
                .iter()
                .zip(&types[2..])
                .map(|(name, ty)| LinkColumn {
                    name: name.clone(),
                    kind: self.kind_of(ty),
                })
                .collect(),
            key,
            erases_subject,
        })
    }

    fn feature(
        &mut self,
        catalog: &Catalog,
        feature: &super::Feature,
        links: &[Option<ResolvedLink>],
        clients: &[ClientPlan],
    ) -> Option<FeaturePlan> {
        let spec = &feature.spec;
        let file = &feature.file;
        if spec.optional
            && let Some(missing) = self.first_missing_table(spec)
        {
            self.findings
                .push(Place::new(file, "optional").finding(format!(
                "table {missing} does not exist; the feature is optional, so each client row of \
                 type {:?} will be reported as a missing_table anomaly",
                spec.types
            )));
            return Some(FeaturePlan {
                types: spec.types.clone(),
                file: file.clone(),
                tables: FeatureTables::Missing { table: missing },
            });
        }
        let table = &spec.feature;
        let place = Place::new(file, format!("feature ({})", table.table));
        let key = self.key(&place, &table.table, &table.key)?;
        for column in &key.columns {
            if super::masks(&table.mask, &column.name) {
                self.errors.push(place.error(format!(
                    "the key column {:?} cannot be masked: rows are addressed by it",
                    column.name.as_str()
                )));
            }
        }
        // The feature's columns read besides its key: link values first,
        // then what tasks point at.
        let mut value_columns: Vec<Ident> = Vec::new();
        for link in links.iter().flatten() {
            if !value_columns.contains(&link.feature_column) {
                value_columns.push(link.feature_column.clone());
            }
        }
        let mut tasks_parent: Vec<Ident> = Vec::new();
        for task in &spec.tasks {
            let parent = task
                .feature_column
                .clone()
                .or_else(|| table.key.single().cloned());
            match parent {
                Some(parent) => tasks_parent.push(parent),
                None => {
                    self.errors.push(Place::new(file, format!("task ({})", task.table)).error(
                        "the feature's key has several columns: name the one this task points at with feature_column = \"...\"",
                    ));
                    return None;
                }
            }
        }
        for parent in &tasks_parent {
            if !value_columns.contains(parent) {
                value_columns.push(parent.clone());
            }
        }
        let mut wanted: Vec<&Ident> = value_columns.iter().collect();
        wanted.extend(table.references.iter().map(|r| &r.column));
        let types = self.column_types(&place, &table.table, &wanted)?;
        let value_types: Vec<ColumnType> = types[..value_columns.len()].to_vec();
        self.check_references(&place, &table.references, &types[value_columns.len()..]);

        let select = self.select_list(&table.table, &key, &value_columns, &table.references);
        let quoted = table.table.quoted();
        let mut link_plans = Vec::new();
        for (index, link) in links.iter().enumerate() {
            let plan = match link {
                None => None,
                Some(link) => {
                    let client = &catalog.client_tables[index];
                    let place = Place::new(
                        file,
                        format!("feature ({}) link from {}", table.table, client.table),
                    );
                    ownership::link_plan(
                        self,
                        &place,
                        link,
                        client,
                        &clients[index],
                        &table.table,
                        &select,
                        &key,
                    )
                }
            };
            link_plans.push(plan);
        }
        let namespaces = ownership::namespaces(
            self,
            &Place::new(file, format!("feature ({})", table.table)),
            catalog,
            links,
            clients,
            &value_columns,
        );
        let mut keep: BTreeSet<&str> = key.columns.iter().map(|c| c.name.as_str()).collect();
        keep.extend(value_columns.iter().map(Ident::as_str));
        self.add_table(
            &place,
            &table.table,
            key.clone(),
            table.erase,
            &table.mask,
            &keep,
        );

        let mut tasks = Vec::new();
        for (task, parent) in spec.tasks.iter().zip(&tasks_parent) {
            let parent_index = value_columns.iter().position(|c| c == parent)?;
            let parent_type = value_types[parent_index].clone();
            if let Some(child) =
                self.task(file, task, &table.table, parent, &parent_type, parent_index)
            {
                tasks.push(child);
            }
        }
        let by_key_sql = format!(
            "SELECT {} FROM {quoted} WHERE {}",
            select.join(", "),
            key.match_sql(&quoted, self.dialect, 1)
        );
        Some(FeaturePlan {
            types: spec.types.clone(),
            file: file.clone(),
            tables: FeatureTables::Present(Box::new(FeatureRows {
                table: table.table.to_string(),
                key,
                links: link_plans,
                value_columns,
                namespaces,
                references: table.references.clone(),
                tasks,
                by_key_sql,
            })),
        })
    }
}

#[cfg(test)]
mod tests;
