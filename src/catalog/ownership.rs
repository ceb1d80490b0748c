//! Links, compiled: how a client table's rows reach a feature's rows
//! ([`LinkPlan`]), and how lethe proves a feature row it reached is the
//! member's ([`Namespace`]).
//!
//! The rule this module keeps: a feature row is the member's only if every
//! client row that claims it is the member's. Client rows claim a feature
//! row through a feature column (the row points at them, or they point at
//! it) or a join table; every client table that claims through the same
//! column or join table shares one namespace, whose ids may collide (two
//! client tables fed by different sequences) or repeat (a request copied
//! from a legacy table into a newer one). For each batch of feature rows,
//! one statement per namespace returns the values some other client row
//! claims: a client row of another member, of no member (NULL), or, through
//! a join table, a join row whose client row cannot be found. Those feature
//! rows are reported, never erased.

use std::collections::BTreeMap;

use super::Catalog;
use super::compile::{Compiler, Place};
use super::ident::{Ident, TableName};
use super::keys::{RowKey, ValueKind};
use super::links::ResolvedLink;
use super::model::{ClientTable, JoinTable, LinkKind};
use super::plan::{Branch, ClientPlan, LinkPlan, Namespace};
use super::policy::ColumnType;

/// The compiled link from one client table to a feature table.
#[allow(clippy::too_many_arguments)]
pub(super) fn link_plan(
    compiler: &mut Compiler<'_>,
    place: &Place,
    link: &ResolvedLink,
    client: &ClientTable,
    client_plan: &ClientPlan,
    feature_table: &TableName,
    select: &[String],
    key: &RowKey,
) -> Option<LinkPlan> {
    let client_column = client_plan
        .link_columns
        .iter()
        .position(|c| c.name == link.client_column)?;
    let client_type = compiler
        .column_types(place, &client.table, &[&link.client_column])?
        .remove(0);
    let feature_type = compiler
        .column_types(place, feature_table, &[&link.feature_column])?
        .remove(0);
    let dialect = compiler.dialect;
    let quoted = feature_table.quoted();
    let feature_column = format!("{quoted}.{}", link.feature_column.quoted());
    let (value_kind, filter) = match &link.join {
        None => {
            let kind = compiler.compare_kinds(
                place,
                &client_type,
                &feature_type,
                link.cast.as_deref(),
                &format!("{}.{}", client.table, link.client_column),
                &format!("{feature_table}.{}", link.feature_column),
            )?;
            // A text side compared under a typed cast must hold canonical text.
            for (table, column, ty) in [
                (&client.table, &link.client_column, &client_type),
                (feature_table, &link.feature_column, &feature_type),
            ] {
                if compiler.kind_of(ty) == ValueKind::Text && kind != ValueKind::Text {
                    compiler.require_canonical(place, table, column, kind);
                }
            }
            compiler.require_index(
                place,
                feature_table,
                &link.feature_column,
                "finding feature rows",
            );
            (
                kind,
                dialect.in_ids(&feature_column, &feature_type.sql_type, 1),
            )
        }
        Some(join) => {
            let join_types =
                compiler.column_types(place, &join.table, &[&join.client, &join.feature])?;
            same_family(
                compiler,
                place,
                &client_type,
                &join_types[0],
                &client.table,
                &link.client_column,
                join,
                &join.client,
            )?;
            same_family(
                compiler,
                place,
                &feature_type,
                &join_types[1],
                feature_table,
                &link.feature_column,
                join,
                &join.feature,
            )?;
            compiler.require_index(place, &join.table, &join.client, "finding feature rows");
            compiler.require_index(
                place,
                feature_table,
                &link.feature_column,
                "finding feature rows",
            );
            let join_client = format!("lethe_j.{}", join.client.quoted());
            (
                compiler.kind_of(&join_types[0]),
                format!(
                    "{feature_column} IN (SELECT lethe_j.{} FROM {} lethe_j WHERE {})",
                    join.feature.quoted(),
                    join.table.quoted(),
                    dialect.in_ids(&join_client, &join_types[0].sql_type, 1)
                ),
            )
        }
    };
    match link.kind {
        LinkKind::FeatureToClient => {
            compiler.require_unique_target(place, link, &client.table, &link.client_column)
        }
        LinkKind::ClientToFeature => {
            compiler.require_unique_target(place, link, feature_table, &link.feature_column)
        }
        LinkKind::Join => {
            compiler.require_unique_target(place, link, &client.table, &link.client_column);
            compiler.require_unique_target(place, link, feature_table, &link.feature_column);
        }
    }
    Some(LinkPlan {
        kind: link.kind,
        client_column,
        value_kind,
        select_sql: format!(
            "SELECT {} FROM {quoted} WHERE {filter} ORDER BY {}",
            select.join(", "),
            key.order_by(&quoted)
        ),
        describe: link.describe(&client.table, feature_table),
    })
}

#[allow(clippy::too_many_arguments)]
fn same_family(
    compiler: &mut Compiler<'_>,
    place: &Place,
    side: &ColumnType,
    join_side: &ColumnType,
    table: &TableName,
    column: &Ident,
    join: &JoinTable,
    join_column: &Ident,
) -> Option<()> {
    if compiler
        .kind_of(side)
        .same_family(compiler.kind_of(join_side))
    {
        return Some(());
    }
    compiler.errors.push(place.error(format!(
        "{table}.{column} ({}) and {}.{join_column} ({}) differ in type; a join table's columns \
         must have the types of the columns they hold",
        side.sql_type, join.table, join_side.sql_type
    )));
    None
}

/// The client tables (by index) claiming through one namespace, with their links.
type Members<'a> = Vec<(usize, &'a ResolvedLink)>;

/// Every namespace through which the catalog's client tables claim this
/// feature's rows.
pub(super) fn namespaces(
    compiler: &mut Compiler<'_>,
    place: &Place,
    catalog: &Catalog,
    links: &[Option<ResolvedLink>],
    clients: &[ClientPlan],
    value_columns: &[Ident],
) -> Vec<Namespace> {
    // Grouped by the feature column and the join table claimed through.
    let mut groups: BTreeMap<(String, Option<String>), Members<'_>> = BTreeMap::new();
    for (index, link) in links.iter().enumerate() {
        if let Some(link) = link {
            let join = link
                .join
                .as_ref()
                .map(|j| format!("{}.{}.{}", j.table, j.client, j.feature));
            groups
                .entry((link.feature_column.to_string(), join))
                .or_default()
                .push((index, link));
        }
    }
    let mut namespaces = Vec::new();
    for ((feature_column, _), members) in groups {
        let Some(value_column) = value_columns
            .iter()
            .position(|c| c.as_str() == feature_column)
        else {
            continue;
        };
        let namespace = match &members[0].1.join {
            None => direct(compiler, place, catalog, clients, &members),
            Some(join) => joined(compiler, place, catalog, clients, &members, join),
        };
        if let Some(mut namespace) = namespace {
            namespace.value_column = value_column;
            namespaces.push(namespace);
        }
    }
    namespaces
}

/// A client table's part of a claim: its column compared with a value,
/// the type filter (when its type chooses the table), and whether its
/// subject is (`IS TRUE`) or is not (`IS NOT TRUE`) the member.
struct ClaimSql<'a> {
    client: &'a ClientTable,
    column: &'a Ident,
    kind: LinkKind,
}

impl ClaimSql<'_> {
    fn exists(
        &self,
        compiler: &Compiler<'_>,
        compared: &str,
        subject_param: usize,
        member: bool,
        subject_type: &str,
    ) -> String {
        let dialect = compiler.dialect;
        let table = self.client.table.quoted();
        let type_filter = match self.kind {
            // The feature row points at the client row: whatever its type.
            LinkKind::FeatureToClient => String::new(),
            // The client's type chooses the table its value points into; a
            // row of unknown (NULL) type may point anywhere.
            LinkKind::ClientToFeature | LinkKind::Join => format!(
                " AND ({}) IS NOT FALSE",
                dialect.text_in_list(
                    &dialect.text(&format!("{table}.{}", self.client.feature_type.quoted())),
                    1
                )
            ),
        };
        format!(
            "EXISTS (SELECT 1 FROM {table} WHERE {table}.{} = {compared}{type_filter} AND ({table}.{} = {}) IS {}TRUE)",
            self.column.quoted(),
            self.client.subject.quoted(),
            dialect.param_as(subject_param, subject_type),
            if member { "" } else { "NOT " }
        )
    }
}

fn subject_type(
    compiler: &mut Compiler<'_>,
    place: &Place,
    client: &ClientTable,
) -> Option<ColumnType> {
    Some(
        compiler
            .column_types(place, &client.table, &[&client.subject])?
            .remove(0),
    )
}

fn direct(
    compiler: &mut Compiler<'_>,
    place: &Place,
    catalog: &Catalog,
    clients: &[ClientPlan],
    members: &[(usize, &ResolvedLink)],
) -> Option<Namespace> {
    let dialect = compiler.dialect;
    let mut branches = Vec::new();
    let mut selects = Vec::new();
    let mut described = Vec::new();
    for (position, (index, link)) in members.iter().enumerate() {
        let client = &catalog.client_tables[*index];
        let column_type = compiler
            .column_types(place, &client.table, &[&link.client_column])?
            .remove(0);
        let subject = subject_type(compiler, place, client)?;
        compiler.require_index(
            place,
            &client.table,
            &link.client_column,
            "proving a feature row is the member's",
        );
        let values_param = 2 + 2 * position;
        let claim = ClaimSql {
            client,
            column: &link.client_column,
            kind: link.kind,
        };
        selects.push(format!(
            "SELECT lethe_v.v FROM {} WHERE {}",
            dialect.text_list_table(values_param),
            claim.exists(
                compiler,
                &dialect.cast_value("lethe_v.v", &column_type.sql_type),
                values_param + 1,
                false,
                &subject.sql_type
            )
        ));
        branches.push(Branch {
            client: *index,
            value_kind: compiler.kind_of(&column_type),
            subject_kind: clients[*index].subject_kind,
        });
        described.push(format!("{}.{}", client.table, link.client_column));
    }
    Some(Namespace {
        value_column: 0,
        branches,
        sql: selects.join(" UNION "),
        join: false,
        describe: format!("claimed by {}", described.join(", ")),
    })
}

fn joined(
    compiler: &mut Compiler<'_>,
    place: &Place,
    catalog: &Catalog,
    clients: &[ClientPlan],
    members: &[(usize, &ResolvedLink)],
    join: &JoinTable,
) -> Option<Namespace> {
    let dialect = compiler.dialect;
    let join_types = compiler.column_types(place, &join.table, &[&join.client, &join.feature])?;
    compiler.require_index(
        place,
        &join.table,
        &join.feature,
        "proving a feature row is the member's",
    );
    let mut branches = Vec::new();
    let mut others = Vec::new();
    let mut members_sql = Vec::new();
    let mut described = Vec::new();
    let join_client = format!("lethe_j.{}", join.client.quoted());
    for (position, (index, link)) in members.iter().enumerate() {
        let client = &catalog.client_tables[*index];
        let subject = subject_type(compiler, place, client)?;
        compiler.require_index(
            place,
            &client.table,
            &link.client_column,
            "proving a feature row is the member's",
        );
        let subject_param = 3 + position;
        let claim = ClaimSql {
            client,
            column: &link.client_column,
            kind: link.kind,
        };
        others.push(claim.exists(
            compiler,
            &join_client,
            subject_param,
            false,
            &subject.sql_type,
        ));
        members_sql.push(claim.exists(
            compiler,
            &join_client,
            subject_param,
            true,
            &subject.sql_type,
        ));
        branches.push(Branch {
            client: *index,
            value_kind: compiler.kind_of(&join_types[1]),
            subject_kind: clients[*index].subject_kind,
        });
        described.push(format!("{}.{}", client.table, link.client_column));
    }
    let sql = format!(
        "SELECT lethe_v.v FROM {} WHERE EXISTS (SELECT 1 FROM {} lethe_j WHERE lethe_j.{} = {} AND ({} OR NOT ({})))",
        dialect.text_list_table(2),
        join.table.quoted(),
        join.feature.quoted(),
        dialect.cast_value("lethe_v.v", &join_types[1].sql_type),
        others.join(" OR "),
        members_sql.join(" OR "),
    );
    Some(Namespace {
        value_column: 0,
        branches,
        sql,
        join: true,
        describe: format!("claimed through {} by {}", join.table, described.join(", ")),
    })
}
