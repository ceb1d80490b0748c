//! Which link joins each client table to each feature: the catalog's
//! `link` settings (a client table's default, a feature's own, scoped with
//! `clients`, and the `client_id` shorthand) settled into one
//! [`ResolvedLink`] per pair, before any database is asked.
//!
//! The rule this module keeps: a link is only what the catalog states,
//! field by field — a feature's scoped link, else its unscoped one, else
//! the client table's — and a pair the catalog gives no link is `None`
//! (reported for each of its rows at run time, never followed by guess).

use super::ident::{Ident, TableName};
use super::model::{Duplicates, JoinTable, LinkKind, LinkSpec};
use super::{Catalog, CatalogError, ClientTable, Feature};

/// A link between one client table and one feature table, settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLink {
    pub kind: LinkKind,
    pub client_column: Ident,
    pub feature_column: Ident,
    pub join: Option<JoinTable>,
    pub cast: Option<String>,
    pub duplicates: Option<Duplicates>,
}

impl ResolvedLink {
    /// The link in words, for `catalog check` and messages.
    pub fn describe(&self, client: &TableName, feature: &TableName) -> String {
        match (&self.kind, &self.join) {
            (LinkKind::FeatureToClient, _) => format!(
                "{feature}.{} points at {client}.{} (feature row -> client row)",
                self.feature_column, self.client_column
            ),
            (LinkKind::ClientToFeature, _) => format!(
                "{client}.{} points at {feature}.{} (client row -> feature row, chosen by its type)",
                self.client_column, self.feature_column
            ),
            (LinkKind::Join, Some(join)) => format!(
                "{client}.{} = {}.{} and {}.{} = {feature}.{} (join table)",
                self.client_column,
                join.table,
                join.client,
                join.table,
                join.feature,
                self.feature_column
            ),
            (LinkKind::Join, None) => "join without a join table".to_owned(),
        }
    }
}

/// For every feature (outer, catalog order) and client table (inner), the
/// link between them, or None when the catalog gives none.
pub fn resolve_all(catalog: &Catalog) -> Result<Vec<Vec<Option<ResolvedLink>>>, CatalogError> {
    let main_file = catalog.dir.join("catalog.toml");
    for (index, client) in catalog.client_tables.iter().enumerate() {
        if let Some(link) = &client.link
            && !link.clients.is_empty()
        {
            return Err(CatalogError::invalid(
                &main_file,
                format!("clients[{index}] ({}).link", client.table),
                "`clients` scopes a feature's link; a client table's link applies to its own rows only",
            ));
        }
    }
    catalog
        .features
        .iter()
        .map(|feature| {
            catalog
                .client_tables
                .iter()
                .map(|client| resolve(catalog, feature, client))
                .collect()
        })
        .collect()
}

fn resolve(
    catalog: &Catalog,
    feature: &Feature,
    client: &ClientTable,
) -> Result<Option<ResolvedLink>, CatalogError> {
    let spec = &feature.spec.feature;
    let file = &feature.file;
    let entry = format!("feature ({}) link", spec.table);
    let declared: Vec<&LinkSpec> = spec.link.iter().chain(&spec.links).collect();
    for link in &declared {
        for scoped in &link.clients {
            if !catalog.client_tables.iter().any(|c| &c.table == scoped) {
                return Err(CatalogError::invalid(
                    file,
                    &entry,
                    format!(
                        "`clients` names {scoped}, which is not a client table in catalog.toml"
                    ),
                ));
            }
        }
    }
    let scoped: Vec<&&LinkSpec> = declared
        .iter()
        .filter(|link| link.clients.contains(&client.table))
        .collect();
    let unscoped: Vec<&&LinkSpec> = declared
        .iter()
        .filter(|link| link.clients.is_empty())
        .collect();
    if scoped.len() > 1 || unscoped.len() > 1 {
        return Err(CatalogError::invalid(
            file,
            &entry,
            format!(
                "more than one link applies to client table {}; scope each with `clients = [...]`",
                client.table
            ),
        ));
    }
    let own = scoped.first().or(unscoped.first()).map(|link| **link);
    let default = client.link.as_ref();
    let pick = |get: fn(&LinkSpec) -> Option<&Ident>| {
        own.and_then(get).or_else(|| default.and_then(get)).cloned()
    };
    let kind = own
        .and_then(|l| l.kind)
        .or_else(|| default.and_then(|l| l.kind))
        .or_else(|| spec.client_id.as_ref().map(|_| LinkKind::FeatureToClient));
    let Some(kind) = kind else {
        if own.is_none() && default.is_none() {
            return Ok(None);
        }
        return Err(CatalogError::invalid(
            file,
            &entry,
            "the link has no kind: say kind = \"feature_to_client\", \"client_to_feature\" or \"join\"",
        ));
    };
    let feature_column = match kind {
        LinkKind::FeatureToClient => own
            .and_then(|l| l.feature_column.as_ref())
            .or(spec.client_id.as_ref())
            .or_else(|| default.and_then(|l| l.feature_column.as_ref()))
            .cloned(),
        LinkKind::ClientToFeature | LinkKind::Join => {
            pick(|l| l.feature_column.as_ref()).or_else(|| spec.key.single().cloned())
        }
    };
    let Some(feature_column) = feature_column else {
        return Err(CatalogError::invalid(
            file,
            &entry,
            match kind {
                LinkKind::FeatureToClient => {
                    "name the feature's column that points at the client row: client_id = \"...\""
                }
                _ => {
                    "the feature's key has several columns: name the one the link uses with feature_column = \"...\""
                }
            },
        ));
    };
    let client_column = match kind {
        LinkKind::ClientToFeature => pick(|l| l.client_column.as_ref()),
        LinkKind::FeatureToClient | LinkKind::Join => {
            pick(|l| l.client_column.as_ref()).or_else(|| client.key.single().cloned())
        }
    };
    let Some(client_column) = client_column else {
        return Err(CatalogError::invalid(
            file,
            &entry,
            format!(
                "name client table {}'s column in the link with client_column = \"...\" (its key has several columns{})",
                client.table,
                if kind == LinkKind::ClientToFeature {
                    ", or it is the column holding the feature row's id"
                } else {
                    ""
                }
            ),
        ));
    };
    let join = own
        .and_then(|l| l.join.clone())
        .or_else(|| default.and_then(|l| l.join.clone()));
    match (kind, &join) {
        (LinkKind::Join, None) => {
            return Err(CatalogError::invalid(
                file,
                &entry,
                "kind = \"join\" needs join = { table = \"...\", client = \"...\", feature = \"...\" }",
            ));
        }
        (LinkKind::FeatureToClient | LinkKind::ClientToFeature, Some(_)) => {
            return Err(CatalogError::invalid(
                file,
                &entry,
                "`join` is only for kind = \"join\"",
            ));
        }
        _ => {}
    }
    Ok(Some(ResolvedLink {
        kind,
        client_column,
        feature_column,
        join,
        cast: own
            .and_then(|l| l.cast.clone())
            .or_else(|| default.and_then(|l| l.cast.clone())),
        duplicates: own
            .and_then(|l| l.duplicates)
            .or_else(|| default.and_then(|l| l.duplicates)),
    }))
}
