//! The compiler's rules for links and lookups: the type values are compared
//! as (a declared cast, or one family on both sides), canonical text behind
//! a cast (a data check), a unique target unless duplicates are resolved,
//! and an index behind every lookup (a warning, with the table's size).

use super::super::ident::{Ident, TableName};
use super::super::keys::ValueKind;
use super::super::links::ResolvedLink;
use super::super::model::{Duplicates, LinkKind};
use super::super::plan::DataCheck;
use super::super::policy::ColumnType;
use super::{Compiler, Place};

impl Compiler<'_> {
    /// Warns when a lookup by `column` of `table` would scan the table.
    pub(in crate::catalog) fn require_index(
        &mut self,
        place: &Place,
        name: &TableName,
        column: &Ident,
        lookup: &str,
    ) {
        let Some(table) = self.live.table(&name.to_string()) else {
            return;
        };
        if table.leads_an_index(column.as_str()) {
            return;
        }
        let size = match table.estimated_rows {
            Some(rows) if rows > 0 => format!(" (about {rows} rows)"),
            _ => String::new(),
        };
        self.findings.push(place.finding(format!(
            "{name}.{column} has no index starting with it, and {lookup} looks rows up by it: every \
             batch would scan the table{size}, which on a large production table is an incident; \
             CREATE INDEX CONCURRENTLY ON {} ({})",
            name.quoted(),
            column.quoted()
        )));
    }

    /// The kind values are checked against when `source` values are looked
    /// up in `target`: the declared cast's, else the target's when both are
    /// of one family; None (an error) when they differ and no cast is given.
    pub(in crate::catalog) fn compare_kinds(
        &mut self,
        place: &Place,
        source: &ColumnType,
        target: &ColumnType,
        cast: Option<&str>,
        source_name: &str,
        target_name: &str,
    ) -> Option<ValueKind> {
        let (source_kind, target_kind) = (self.kind_of(source), self.kind_of(target));
        match cast {
            Some(cast) => match ValueKind::of_cast(cast) {
                Some(kind) => Some(kind),
                None => {
                    self.errors.push(place.error(format!(
                        "cast = {cast:?} is not a type lethe compares by value; use \"bigint\", \
                         \"integer\", \"numeric\", \"uuid\" or \"text\""
                    )));
                    None
                }
            },
            None if source_kind.same_family(target_kind) => Some(target_kind),
            None => {
                self.errors.push(place.error(format!(
                    "{source_name} ({}) and {target_name} ({}) differ in type: declare the type \
                     both are compared as, e.g. cast = \"{}\"; values that are not of it are \
                     reported as unlinkable_value anomalies, never guessed at",
                    source.sql_type,
                    target.sql_type,
                    cast_suggestion(source_kind, target_kind)
                )));
                None
            }
        }
    }

    /// Records that `column` of `table`, holding text compared as `kind`,
    /// must hold only canonical values of that kind (checked by `lethe
    /// catalog check`, which scans it once).
    pub(in crate::catalog) fn require_canonical(
        &mut self,
        place: &Place,
        table: &TableName,
        column: &Ident,
        kind: ValueKind,
    ) {
        let quoted = format!("{}.{}", table.quoted(), column.quoted());
        let Some(not_canonical) = self.dialect.not_canonical(&quoted, kind) else {
            return;
        };
        self.data_checks.push(DataCheck {
            file: place.file.clone(),
            entry: place.entry.clone(),
            problem: format!(
                "{{n}} value(s) of {table}.{column} are not {} in canonical spelling (e.g. a \
                 leading zero or capital letters): lethe compares them as text and could not \
                 prove which rows they link; rewrite them, or link through a column of the \
                 right type",
                kind.describe()
            ),
            sql: format!(
                "SELECT count(*) FROM {} WHERE {quoted} IS NOT NULL AND {not_canonical}",
                table.quoted()
            ),
        });
    }

    /// Refuses a link whose target the database does not prove unique,
    /// unless the catalog says how duplicates are resolved.
    pub(in crate::catalog) fn require_unique_target(
        &mut self,
        place: &Place,
        link: &ResolvedLink,
        table: &TableName,
        column: &Ident,
    ) {
        let Some(live) = self.live.table(&table.to_string()) else {
            return;
        };
        if live.proves_unique(&[column.as_str()]) || link.duplicates == Some(Duplicates::MemberOnly)
        {
            return;
        }
        let why = match link.kind {
            LinkKind::FeatureToClient => {
                "a feature row pointing at it could belong to any client row carrying the value"
            }
            LinkKind::ClientToFeature => {
                "a client row pointing at it could mean any feature row carrying the value"
            }
            LinkKind::Join => "a join row could name several rows",
        };
        self.errors.push(place.error(format!(
            "the link's target {table}.{column} is not unique (no primary key or unique index on \
             it alone): {why}; add a unique index, or declare duplicates = \"member_only\" on the \
             link so that a row reached through a repeated value is erased only when every client \
             row carrying that value is the member's"
        )));
    }
}

fn cast_suggestion(source: ValueKind, target: ValueKind) -> &'static str {
    match (source, target) {
        (_, ValueKind::Uuid) | (ValueKind::Uuid, _) => "uuid",
        (_, ValueKind::Integer { .. }) | (ValueKind::Integer { .. }, _) => "bigint",
        (_, ValueKind::Numeric) | (ValueKind::Numeric, _) => "numeric",
        _ => "text",
    }
}
