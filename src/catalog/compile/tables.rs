//! The compiler's table-level work: a feature's task tables, the SELECT
//! lists that read keys, link values and reference columns as text, and each
//! table's erasure (its masks checked against the columns' types, the
//! columns the catalog does not mention named).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::super::CatalogError;
use super::super::ident::{Ident, TableName};
use super::super::keys::RowKey;
use super::super::model::ReferenceSource;
use super::super::plan::ChildPlan;
use super::super::policy::{ColumnMask, ColumnType, Policy, RowErasure};
use super::super::table_plan::compile_table;
use super::{Compiler, Place};

impl Compiler<'_> {
    pub(in crate::catalog) fn task(
        &mut self,
        file: &Path,
        task: &super::super::TaskTable,
        feature_table: &TableName,
        parent: &Ident,
        parent_type: &ColumnType,
        parent_column: usize,
    ) -> Option<ChildPlan> {
        let place = Place::new(file, format!("task ({})", task.table));
        let key = self.key(&place, &task.table, &task.key)?;
        for column in &key.columns {
            if super::super::masks(&task.mask, &column.name) {
                self.errors.push(place.error(format!(
                    "the key column {:?} cannot be masked: rows are addressed by it",
                    column.name.as_str()
                )));
            }
        }
        let mut wanted = vec![&task.feature_id];
        wanted.extend(task.references.iter().map(|r| &r.column));
        let types = self.column_types(&place, &task.table, &wanted)?;
        self.check_references(&place, &task.references, &types[1..]);
        // The task points at a feature column, which must name one row.
        let feature_live = self.live.table(&feature_table.to_string())?;
        if !feature_live.proves_unique(&[parent.as_str()]) {
            self.errors.push(place.error(format!(
                "the task points at {feature_table}.{parent}, which no primary key or unique index \
                 makes unique: a task row could belong to several feature rows; point it at the \
                 feature's key (feature_column)"
            )));
            return None;
        }
        let value_kind = self.compare_kinds(
            &place,
            &types[0],
            parent_type,
            task.cast.as_deref(),
            &format!("{}.{}", task.table, task.feature_id),
            &format!("{feature_table}.{parent}"),
        )?;
        self.require_index(
            &place,
            &task.table,
            &task.feature_id,
            "finding a feature's tasks",
        );
        let mut keep: BTreeSet<&str> = key.columns.iter().map(|c| c.name.as_str()).collect();
        keep.insert(task.feature_id.as_str());
        self.add_table(
            &place,
            &task.table,
            key.clone(),
            task.erase,
            &task.mask,
            &keep,
        );
        let quoted = task.table.quoted();
        let select = self.select_list(&task.table, &key, &[], &task.references);
        Some(ChildPlan {
            table: task.table.to_string(),
            select_sql: format!(
                "SELECT {} FROM {quoted} WHERE {} ORDER BY {}",
                select.join(", "),
                self.dialect.in_ids(
                    &format!("{quoted}.{}", task.feature_id.quoted()),
                    &types[0].sql_type,
                    1
                ),
                key.order_by(&quoted)
            ),
            by_key_sql: format!(
                "SELECT {} FROM {quoted} WHERE {}",
                select.join(", "),
                key.match_sql(&quoted, self.dialect, 1)
            ),
            key,
            parent_column,
            value_kind,
            references: task.references.clone(),
        })
    }

    /// The SELECT list of a feature or task read: key texts, value column
    /// texts, reference column texts.
    pub(in crate::catalog) fn select_list(
        &self,
        table: &TableName,
        key: &RowKey,
        values: &[Ident],
        references: &[ReferenceSource],
    ) -> Vec<String> {
        let quoted = table.quoted();
        let dialect = self.dialect;
        let mut select = key.select_text(&quoted, dialect);
        for (i, column) in values.iter().enumerate() {
            select.push(format!(
                "{} AS lethe_value_{i}",
                dialect.text(&format!("{quoted}.{}", column.quoted()))
            ));
        }
        for (i, source) in references.iter().enumerate() {
            select.push(format!(
                "{} AS lethe_ref_{i}",
                dialect.text(&format!("{quoted}.{}", source.column.quoted()))
            ));
        }
        select
    }

    pub(in crate::catalog) fn check_references(
        &mut self,
        place: &Place,
        references: &[ReferenceSource],
        types: &[ColumnType],
    ) {
        for (source, ty) in references.iter().zip(types) {
            if !(ty.is_json() || ty.is_text_like()) {
                self.errors.push(place.error(format!(
                    "references: column {:?} is {}, not json, jsonb or text: lethe reads file \
                     references from JSON or text only",
                    source.column.as_str(),
                    ty.sql_type
                )));
            }
        }
    }

    pub(in crate::catalog) fn first_missing_table(
        &self,
        spec: &super::super::FeatureFile,
    ) -> Option<String> {
        std::iter::once(&spec.feature.table)
            .chain(spec.tasks.iter().map(|t| &t.table))
            .find(|table| self.live.table(&table.to_string()).is_none())
            .map(ToString::to_string)
    }

    pub(in crate::catalog) fn add_table(
        &mut self,
        place: &Place,
        table: &TableName,
        key: RowKey,
        erase: RowErasure,
        mask: &BTreeMap<Ident, Policy>,
        keep: &BTreeSet<&str>,
    ) {
        let Some(live) = self.live.table(&table.to_string()).cloned() else {
            return;
        };
        let mut masks = Vec::new();
        for (column, policy) in mask {
            let Some(found) = live.column(column.as_str()) else {
                self.errors.push(CatalogError::invalid(
                    &place.file,
                    format!("{}: mask.{column}", place.entry),
                    format!(
                        "column {:?} does not exist in table {table}",
                        column.as_str()
                    ),
                ));
                continue;
            };
            let column_type = ColumnType {
                sql_type: found.sql_type.clone(),
                nullable: found.nullable,
            };
            if let Err(problem) = policy.check_type(&column_type) {
                self.errors.push(CatalogError::invalid(
                    &place.file,
                    format!("{}: mask.{column}", place.entry),
                    problem,
                ));
                continue;
            }
            masks.push(ColumnMask {
                column: column.clone(),
                policy: policy.clone(),
                column_type,
            });
        }
        let unlisted: Vec<&str> = live
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|c| !keep.contains(c) && !mask.keys().any(|m| m.as_str() == *c))
            .collect();
        if erase == RowErasure::Mask && !unlisted.is_empty() {
            self.findings.push(place.finding(format!(
                "columns {unlisted:?} are neither masked nor marked \"keep\": they are kept; list \
                 them so the catalog says whether they are personal"
            )));
        }
        let plan = compile_table(table, key, erase, masks, self.dialect);
        let name = table.to_string();
        match self.tables.get(&name) {
            Some(existing)
                if existing.erase_sql != plan.erase_sql
                    || existing.erase_params != plan.erase_params =>
            {
                self.errors.push(place.error(format!(
                    "table {name} is catalogued more than once with different erasure; give every \
                     entry for it the same key, erase and mask"
                )));
            }
            Some(_) => {}
            None => {
                self.tables.insert(name, plan);
            }
        }
    }
}
