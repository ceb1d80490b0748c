//! `lethe catalog init`: a draft catalog read off a live database, the way
//! privacy platforms generate dataset descriptions, plus what they do not
//! do: the file references hidden inside JSON and text columns.
//!
//! The steps, each pure but for the probes the engine runs between them:
//! [`survey`] guesses client tables (a member-key column and a type column)
//! and candidate links (foreign keys first, then names); the engine samples
//! rows to confirm each link and learn the feature types behind it
//! ([`LinkEvidence`]); [`task_guesses`] does the same one level down;
//! the engine samples JSON and text columns and asks S3 which buckets hold
//! what they name; [`draft`] writes the files ([`write`]).
//!
//! The rule this module keeps: every guess carries a comment saying what it
//! rests on, and what only the service's team can know is a `TODO(lethe)`
//! that `lethe catalog check` refuses until it is settled.

mod columns;
mod names;
pub mod shapes;
mod write;

use std::collections::{BTreeMap, BTreeSet};

use super::live::{LiveSchema, LiveTable};
use super::model::LinkKind;

pub use write::{Draft, TODO as TODO_MARKER};

/// A table that looks like a client (request-log) table.
#[derive(Debug, Clone)]
pub struct ClientGuess {
    pub table: String,
    pub subject: String,
    pub feature_type: String,
}

/// A candidate link from a client table to a feature table.
#[derive(Debug, Clone)]
pub struct LinkGuess {
    pub client: usize,
    pub feature: String,
    pub kind: LinkKind,
    pub client_column: String,
    pub feature_column: String,
    /// For a join: the join table and its client and feature columns.
    pub join: Option<(String, String, String)>,
    /// What the guess rests on, for the comment.
    pub because: String,
}

/// What sampled rows said about a candidate link.
#[derive(Debug, Clone, Default)]
pub struct LinkEvidence {
    /// Sampled feature rows some client row reaches through the link.
    pub matched: i64,
    /// The client rows' types seen through it.
    pub types: BTreeSet<String>,
}

/// A candidate task table of a feature.
#[derive(Debug, Clone)]
pub struct TaskGuess {
    pub table: String,
    pub feature: String,
    pub column: String,
    pub target: String,
    pub because: String,
}

/// The client tables and candidate links a schema suggests.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub clients: Vec<ClientGuess>,
    pub links: Vec<LinkGuess>,
}

/// Everything the engine learnt from the data.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Per survey link (same order).
    pub links: Vec<LinkEvidence>,
    /// Confirmed task tables, with how many sampled rows matched.
    pub tasks: Vec<(TaskGuess, i64)>,
    /// Sampled values of (table, column), as text.
    pub samples: BTreeMap<(String, String), Vec<String>>,
    /// Buckets S3 says it has (ListBuckets), if the credentials may list.
    pub buckets: Vec<String>,
    /// For a CDN host: the buckets holding the key its URLs' paths name.
    pub host_buckets: BTreeMap<String, Vec<String>>,
    /// For a bare key seen in a column: the (bucket, prefix) pairs holding
    /// it (prefix empty when found as written).
    pub key_buckets: BTreeMap<String, Vec<(String, String)>>,
    /// For a (table, column, path) naming JSON documents: where in one of
    /// them a list of keys or URLs was found (`pages[*]`).
    pub document_lists: BTreeMap<(String, String, String), String>,
}

/// Client tables, and every candidate link from them.
pub fn survey(live: &LiveSchema) -> Survey {
    let clients: Vec<ClientGuess> = names::client_tables(live)
        .into_iter()
        .map(|(table, subject, feature_type)| ClientGuess {
            table,
            subject,
            feature_type,
        })
        .collect();
    let client_names: BTreeSet<&str> = clients.iter().map(|c| c.table.as_str()).collect();
    let mut links = Vec::new();
    for (index, client) in clients.iter().enumerate() {
        let ctable = &live.tables[&client.table];
        for (name, table) in &live.tables {
            if client_names.contains(name.as_str()) {
                continue;
            }
            links.extend(feature_to_client(index, client, ctable, name, table));
            links.extend(client_to_feature(index, client, ctable, name, table));
        }
        links.extend(joins(index, client, ctable, live, &client_names));
    }
    Survey { clients, links }
}

fn feature_to_client(
    index: usize,
    client: &ClientGuess,
    ctable: &LiveTable,
    name: &str,
    table: &LiveTable,
) -> Vec<LinkGuess> {
    // A foreign key says it outright.
    let by_key: Vec<LinkGuess> = table
        .foreign_keys
        .iter()
        .filter(|fk| fk.ref_table == client.table && fk.columns.len() == 1)
        .map(|fk| LinkGuess {
            client: index,
            feature: name.to_owned(),
            kind: LinkKind::FeatureToClient,
            client_column: fk
                .ref_columns
                .first()
                .cloned()
                .unwrap_or_else(|| "id".into()),
            feature_column: fk.columns[0].clone(),
            join: None,
            because: format!("foreign key {name}.{} -> {}", fk.columns[0], client.table),
        })
        .collect();
    if !by_key.is_empty() {
        return by_key;
    }
    let mut best: Vec<(u8, LinkGuess)> = Vec::new();
    for target in names::pointed_at(ctable) {
        for column in &table.columns {
            if table.primary_key.contains(&column.name) {
                continue;
            }
            let score = names::points_at_client(&column.name, &client.table, &target);
            if score > 0 {
                best.push((
                    score,
                    LinkGuess {
                        client: index,
                        feature: name.to_owned(),
                        kind: LinkKind::FeatureToClient,
                        client_column: target.clone(),
                        feature_column: column.name.clone(),
                        join: None,
                        because: format!(
                            "the name {name}.{} reads as a pointer to {}.{target}",
                            column.name, client.table
                        ),
                    },
                ));
            }
        }
    }
    let top = best.iter().map(|(score, _)| *score).max().unwrap_or(0);
    best.into_iter()
        .filter(|(score, _)| *score == top)
        .map(|(_, guess)| guess)
        .collect()
}

fn client_to_feature(
    index: usize,
    client: &ClientGuess,
    ctable: &LiveTable,
    name: &str,
    table: &LiveTable,
) -> Vec<LinkGuess> {
    let [target] = table.primary_key.as_slice() else {
        return Vec::new();
    };
    let mut guesses = Vec::new();
    for column in &ctable.columns {
        if ctable.primary_key.contains(&column.name)
            || column.name == client.subject
            || column.name == client.feature_type
        {
            continue;
        }
        let by_key = ctable
            .foreign_keys
            .iter()
            .any(|fk| fk.columns == [column.name.clone()] && fk.ref_table == name);
        if by_key || names::points_at_table(&column.name, name, target) {
            guesses.push(LinkGuess {
                client: index,
                feature: name.to_owned(),
                kind: LinkKind::ClientToFeature,
                client_column: column.name.clone(),
                feature_column: target.clone(),
                join: None,
                because: if by_key {
                    format!("foreign key {}.{} -> {name}", client.table, column.name)
                } else {
                    format!(
                        "the name {}.{} reads as a pointer to {name}.{target}",
                        client.table, column.name
                    )
                },
            });
        }
    }
    guesses
}

fn joins(
    index: usize,
    client: &ClientGuess,
    ctable: &LiveTable,
    live: &LiveSchema,
    client_names: &BTreeSet<&str>,
) -> Vec<LinkGuess> {
    let mut guesses = Vec::new();
    for (join_name, join) in &live.tables {
        if client_names.contains(join_name.as_str()) || join.columns.len() > 4 {
            continue;
        }
        for target in names::pointed_at(ctable) {
            // Only a name that says which client table (a generic
            // `request_no` could mean any log whose ids collide).
            let Some(join_client) = join.columns.iter().find(|c| {
                c.name == target || names::points_at_client(&c.name, &client.table, &target) > 1
            }) else {
                continue;
            };
            for (name, table) in &live.tables {
                if name == join_name || client_names.contains(name.as_str()) {
                    continue;
                }
                let [feature_key] = table.primary_key.as_slice() else {
                    continue;
                };
                if feature_key == "id" {
                    continue;
                }
                if let Some(join_feature) = join
                    .columns
                    .iter()
                    .find(|c| c.name != join_client.name && &c.name == feature_key)
                {
                    guesses.push(LinkGuess {
                        client: index,
                        feature: name.clone(),
                        kind: LinkKind::Join,
                        client_column: target.clone(),
                        feature_column: feature_key.clone(),
                        join: Some((
                            join_name.clone(),
                            join_client.name.clone(),
                            join_feature.name.clone(),
                        )),
                        because: format!(
                            "{join_name} holds {}.{target} and {name}.{feature_key} side by side",
                            client.table
                        ),
                    });
                }
            }
        }
    }
    guesses
}

/// Candidate task tables of the confirmed features: tables (neither client
/// nor feature nor join tables) with a column naming a feature's key.
pub fn task_guesses(
    live: &LiveSchema,
    survey: &Survey,
    features: &BTreeSet<String>,
) -> Vec<TaskGuess> {
    let mut taken: BTreeSet<&str> = survey.clients.iter().map(|c| c.table.as_str()).collect();
    taken.extend(features.iter().map(String::as_str));
    for link in &survey.links {
        if let Some((join, _, _)) = &link.join {
            taken.insert(join);
        }
    }
    let mut guesses = Vec::new();
    for (name, table) in &live.tables {
        if taken.contains(name.as_str()) {
            continue;
        }
        // The best-scoring (feature, column) for this table.
        let mut best: Option<(usize, TaskGuess)> = None;
        for feature in features {
            let ftable = &live.tables[feature];
            let [target] = ftable.primary_key.as_slice() else {
                continue;
            };
            for column in &table.columns {
                let by_key = table
                    .foreign_keys
                    .iter()
                    .any(|fk| fk.columns == [column.name.clone()] && &fk.ref_table == feature);
                let score = if by_key {
                    1000
                } else {
                    names::points_at_feature(&column.name, name, feature, target)
                };
                if score > 0 && best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((
                        score,
                        TaskGuess {
                            table: name.clone(),
                            feature: feature.clone(),
                            column: column.name.clone(),
                            target: target.clone(),
                            because: if by_key {
                                format!("foreign key {name}.{} -> {feature}", column.name)
                            } else {
                                format!(
                                    "the name {name}.{} reads as a pointer to {feature}.{target}",
                                    column.name
                                )
                            },
                        },
                    ));
                }
            }
        }
        guesses.extend(best.map(|(_, guess)| guess));
    }
    guesses
}

/// The columns worth sampling for file references: text and JSON columns
/// of these tables that are not keys.
pub fn columns_to_sample(live: &LiveSchema, tables: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut columns = Vec::new();
    for name in tables {
        let Some(table) = live.tables.get(name) else {
            continue;
        };
        for column in &table.columns {
            let ty = column.sql_type.to_ascii_lowercase();
            let texty = ty.contains("json")
                || ty.contains("text")
                || ty.contains("char")
                || ty.contains("clob");
            if texty && !table.primary_key.contains(&column.name) {
                columns.push((name.clone(), column.name.clone()));
            }
        }
    }
    columns
}

/// Builds the draft from the survey and the evidence.
pub fn draft(live: &LiveSchema, survey: &Survey, evidence: &Evidence) -> Draft {
    write::draft(live, survey, evidence)
}
