//! Writing the draft: `catalog.toml` and one `features/<table>.toml` per
//! feature table, in the catalog's own format, with a comment on every
//! guess and `TODO(lethe)` where a value is needed that only the service's
//! team knows (such a draft does not pass `lethe catalog check` until it is
//! settled).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::columns::{write_mask, write_references};
use super::shapes::{self, ColumnShape};
use super::{Evidence, LinkGuess, Survey};
use crate::catalog::CloudFrontOrigin;
use crate::catalog::dialect::Dialect;
use crate::catalog::keys::ValueKind;
use crate::catalog::live::{LiveSchema, LiveTable};
use crate::catalog::model::LinkKind;
use crate::references::Resolver;

/// The marker of a value the team must supply.
pub const TODO: &str = "TODO(lethe)";

/// A drafted catalog, ready to write.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Path (relative to the catalog directory) -> contents.
    pub files: BTreeMap<PathBuf, String>,
    pub clients: usize,
    pub features: Vec<String>,
    /// How many `TODO(lethe)` markers the draft holds.
    pub todos: usize,
}

impl Draft {
    /// Writes the files under `dir`, which must not exist unless `force`.
    pub fn write(&self, dir: &Path, force: bool) -> std::io::Result<()> {
        if dir.exists() && !force {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the directory exists; choose another --out, or --force to overwrite its files",
            ));
        }
        for (path, text) in &self.files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, text)?;
        }
        Ok(())
    }
}

/// A TOML string.
pub(super) fn q(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", quoted.join(", "))
}

fn key_value(columns: &[String]) -> String {
    match columns {
        [one] => q(one),
        many => list(many),
    }
}

pub(super) fn draft(live: &LiveSchema, survey: &Survey, evidence: &Evidence) -> Draft {
    let dialect = Dialect::from(live.backend);
    // Links the data confirmed, by feature table; then the same link
    // assumed for client tables that have its column but whose sampled
    // rows happened not to reach the feature (evidence index None).
    let mut by_feature: BTreeMap<&str, Vec<(Option<usize>, LinkGuess)>> = BTreeMap::new();
    for (index, link) in survey.links.iter().enumerate() {
        if evidence.links.get(index).is_some_and(|e| e.matched > 0) {
            by_feature
                .entry(link.feature.as_str())
                .or_default()
                .push((Some(index), link.clone()));
        }
    }
    for links in by_feature.values_mut() {
        let mut assumed = Vec::new();
        for (client_index, client) in survey.clients.iter().enumerate() {
            if links.iter().any(|(_, l)| l.client == client_index) {
                continue;
            }
            let table = &live.tables[&client.table];
            let Some((_, model)) = links.iter().find(|(_, l)| {
                l.kind != LinkKind::ClientToFeature && table.column(&l.client_column).is_some()
            }) else {
                continue;
            };
            let mut link = model.clone();
            link.because = format!(
                "{} has the column {} too, like {} (no sampled row reached the feature through it)",
                client.table, link.client_column, survey.clients[model.client].table
            );
            link.client = client_index;
            assumed.push((None, link));
        }
        links.extend(assumed);
    }
    // Each type goes to the feature the most sampled rows reached it in.
    let mut type_owner: BTreeMap<&str, (&str, i64)> = BTreeMap::new();
    for (feature, links) in &by_feature {
        for (index, _) in links {
            let Some(index) = index else { continue };
            let found = &evidence.links[*index];
            for ty in &found.types {
                let entry = type_owner.entry(ty).or_insert((feature, found.matched));
                if found.matched > entry.1 {
                    *entry = (feature, found.matched);
                }
            }
        }
    }

    // CDN hosts S3 located; then every sampled column, read through them.
    let cloudfront: Vec<CloudFrontOrigin> = evidence
        .host_buckets
        .iter()
        .filter_map(|(host, buckets)| match buckets.as_slice() {
            [bucket] => Some(CloudFrontOrigin {
                domain: host.clone(),
                bucket: bucket.clone(),
                origin_path: String::new(),
            }),
            _ => None,
        })
        .collect();
    let resolver = Resolver::accepting_any_bucket(cloudfront.clone());
    let shapes: BTreeMap<(String, String), ColumnShape> = evidence
        .samples
        .iter()
        .map(|(column, samples)| (column.clone(), shapes::analyse(samples, &resolver)))
        .collect();
    let mut buckets: BTreeSet<String> = cloudfront.iter().map(|o| o.bucket.clone()).collect();
    for shape in shapes.values() {
        buckets.extend(shape.buckets.iter().cloned());
        for keys in shape.keys.values() {
            for key in keys {
                if let Some([(bucket, _)]) = evidence.key_buckets.get(key).map(Vec::as_slice) {
                    buckets.insert(bucket.clone());
                }
            }
        }
    }

    let mut files = BTreeMap::new();
    let mut features = Vec::new();
    for (feature, links) in &by_feature {
        let types: Vec<String> = type_owner
            .iter()
            .filter(|(_, (owner, _))| owner == feature)
            .map(|(ty, _)| (*ty).to_owned())
            .collect();
        let text = feature_file(
            live, dialect, survey, evidence, &shapes, feature, links, &types,
        );
        files.insert(
            PathBuf::from(format!("features/{}.toml", file_stem(feature))),
            text,
        );
        features.push((*feature).to_owned());
    }
    let main = catalog_file(live, survey, &buckets, &cloudfront, &shapes, evidence);
    files.insert(PathBuf::from("catalog.toml"), main);
    let todos = files.values().map(|text| text.matches(TODO).count()).sum();
    Draft {
        files,
        clients: survey.clients.len(),
        features,
        todos,
    }
}

fn file_stem(table: &str) -> String {
    table.replace('.', "_")
}

fn catalog_file(
    live: &LiveSchema,
    survey: &Survey,
    buckets: &BTreeSet<String>,
    cloudfront: &[CloudFrontOrigin],
    shapes: &BTreeMap<(String, String), ColumnShape>,
    evidence: &Evidence,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# A draft catalog, read off a live {} database by `lethe catalog init`.\n\
         # Every guess says what it rests on; settle each TODO, review each\n\
         # CHECK, then run `lethe catalog check`, which refuses anything unsafe.\n\
         name = \"draft\"\n",
        live.backend
    );
    let _ = writeln!(out, "[storage]");
    let all: Vec<String> = buckets.iter().cloned().collect();
    if all.is_empty() {
        let _ = writeln!(
            out,
            "# {TODO}: no bucket was seen in the sampled rows; list the buckets holding the service's files.\n\
             buckets = [\"{TODO}\"]"
        );
    } else {
        let _ = writeln!(
            out,
            "# Buckets the sampled rows name. A reference to any other bucket is\n\
             # reported as foreign and never deleted.\nbuckets = {}",
            list(&all)
        );
    }
    if !evidence.buckets.is_empty() {
        let unseen: Vec<&String> = evidence
            .buckets
            .iter()
            .filter(|b| !buckets.contains(*b))
            .collect();
        if !unseen.is_empty() {
            let names: Vec<&str> = unseen.iter().map(|b| b.as_str()).collect();
            let _ = writeln!(
                out,
                "# CHECK: S3 also has {}; no sampled row named them.",
                names.join(", ")
            );
        }
    }
    for origin in cloudfront {
        let _ = writeln!(
            out,
            "\n# Guess: URLs on {} name keys that exist in {} (S3 was asked).\n\
             [[storage.cloudfront]]\ndomain = {}\nbucket = {}",
            origin.domain,
            origin.bucket,
            q(&origin.domain),
            q(&origin.bucket)
        );
    }
    // Objects several sampled rows reference: likely shared, never the member's alone.
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for shape in shapes.values() {
        for object in &shape.referenced {
            *counts.entry(object.clone()).or_default() += 1;
        }
    }
    let shared: Vec<(String, String)> = counts
        .into_iter()
        .filter(|(_, n)| *n >= 3)
        .map(|(object, _)| object)
        .take(10)
        .collect();
    if !shared.is_empty() {
        let _ = writeln!(
            out,
            "\n# CHECK: these objects are referenced by several sampled rows, so\n\
             # they may be shared by every member (samples, presets): list such\n\
             # keys or prefixes as protected, and lethe never deletes them."
        );
        for (bucket, key) in &shared {
            let _ = writeln!(out, "#   s3://{bucket}/{key}");
        }
        let _ = writeln!(
            out,
            "# [[storage.protected]]\n# bucket = \"...\"\n# prefixes = [\"...\"]"
        );
    }
    for client in &survey.clients {
        let table = &live.tables[&client.table];
        let _ = writeln!(
            out,
            "\n# Guess: a client (request-log) table: {} looks like the member's key,\n\
             # {} like the request's feature type.\n[[clients]]\ntable = {}",
            client.subject,
            client.feature_type,
            q(&client.table)
        );
        write_key(&mut out, table);
        let _ = writeln!(
            out,
            "subject = {}\nfeature_type = {}\n[clients.mask]",
            q(&client.subject),
            q(&client.feature_type)
        );
        let mut linked: BTreeSet<&str> = BTreeSet::new();
        for link in survey
            .links
            .iter()
            .filter(|l| survey.clients[l.client].table == client.table)
        {
            linked.insert(&link.client_column);
        }
        for column in &table.columns {
            if table.primary_key.contains(&column.name)
                || column.name == client.feature_type
                || linked.contains(column.name.as_str())
            {
                continue;
            }
            let policy = if column.name == client.subject {
                null_or_fixed(column.nullable, "the member's key")
            } else {
                plain_policy(&column.sql_type, column.nullable)
            };
            let _ = writeln!(out, "{} = {}", column.name, policy);
        }
    }
    out
}

/// `"null"`, or a fixed value for a NOT NULL column, with a comment.
fn null_or_fixed(nullable: bool, what: &str) -> String {
    if nullable {
        format!("\"null\"   # {what}")
    } else {
        format!("{{ fixed = \"(erased)\" }}   # {what}; NOT NULL")
    }
}

/// A column no reference was found in: text may be personal, the rest not.
pub(super) fn plain_policy(sql_type: &str, nullable: bool) -> String {
    let ty = sql_type.to_ascii_lowercase();
    let texty = ty.contains("text")
        || ty.contains("char")
        || ty.contains("clob")
        || ty == "inet"
        || ty.contains("json");
    if texty {
        null_or_fixed(nullable, "guess: free text may be personal")
    } else {
        "\"keep\"   # guess: not personal (CHECK)".to_owned()
    }
}

fn write_key(out: &mut String, table: &LiveTable) {
    if !table.primary_key.is_empty() {
        let _ = writeln!(out, "key = {}", key_value(&table.primary_key));
        return;
    }
    match table.indexes.iter().find(|i| i.unique && !i.partial) {
        Some(index) => {
            let _ = writeln!(
                out,
                "# No primary key: a unique index names the rows.\nkey = {}",
                key_value(&index.columns)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "# {TODO}: no primary key or unique index: lethe names rows by their\n\
                 # key and cannot erase this table's rows until it has one.\nkey = \"{TODO}\""
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn feature_file(
    live: &LiveSchema,
    dialect: Dialect,
    survey: &Survey,
    evidence: &Evidence,
    shapes: &BTreeMap<(String, String), ColumnShape>,
    feature: &str,
    links: &[(Option<usize>, LinkGuess)],
    types: &[String],
) -> String {
    let table = &live.tables[feature];
    let mut out = String::new();
    let _ = writeln!(out, "# {feature}: drafted by `lethe catalog init`.");
    if types.is_empty() {
        let _ = writeln!(
            out,
            "# {TODO}: no sampled client row reached this table; list the values of\n\
             # the client tables' type column that mean it.\ntypes = [\"{TODO}\"]"
        );
    } else {
        let _ = writeln!(
            out,
            "# The client rows that reach it in the sampled rows have these types.\ntypes = {}",
            list(types)
        );
    }
    let _ = writeln!(out, "\n[feature]\ntable = {}", q(feature));
    write_key(&mut out, table);
    let mut link_columns: BTreeSet<String> = BTreeSet::new();
    for (index, link) in links {
        let client = &survey.clients[link.client];
        let ctable = &live.tables[&client.table];
        link_columns.insert(link.feature_column.clone());
        let matched = match index {
            Some(index) => format!("{} sampled row(s) matched", evidence.links[*index].matched),
            None => "assumed".to_owned(),
        };
        let _ = writeln!(
            out,
            "\n# Guess: {}; {matched}.\n[[feature.links]]\nclients = [{}]\nkind = {}",
            link.because,
            q(&client.table),
            q(match link.kind {
                LinkKind::FeatureToClient => "feature_to_client",
                LinkKind::ClientToFeature => "client_to_feature",
                LinkKind::Join => "join",
            })
        );
        let _ = writeln!(
            out,
            "client_column = {}\nfeature_column = {}",
            q(&link.client_column),
            q(&link.feature_column)
        );
        if let Some((join, join_client, join_feature)) = &link.join {
            let _ = writeln!(
                out,
                "join = {{ table = {}, client = {}, feature = {} }}",
                q(join),
                q(join_client),
                q(join_feature)
            );
        }
        let client_type = ctable
            .column(&link.client_column)
            .map(|c| c.sql_type.clone());
        let feature_type = table
            .column(&link.feature_column)
            .map(|c| c.sql_type.clone());
        if let (Some(ct), Some(ft), None) = (&client_type, &feature_type, &link.join) {
            let (ck, fk) = (ValueKind::of(ct, dialect), ValueKind::of(ft, dialect));
            if !ck.same_family(fk) {
                let cast = if ck == ValueKind::Text { ft } else { ct };
                let _ = writeln!(
                    out,
                    "# {}.{} is {ct} and {feature}.{} is {ft}: compared as {cast}.\ncast = {}",
                    client.table,
                    link.client_column,
                    link.feature_column,
                    q(cast)
                );
            }
        }
        let (target_table, target_column) = match link.kind {
            LinkKind::ClientToFeature => (table, &link.feature_column),
            _ => (ctable, &link.client_column),
        };
        if !target_table.proves_unique(&[target_column.as_str()]) {
            let _ = writeln!(
                out,
                "# {target_column} is not unique by any key or index: a row reached through\n\
                 # a repeated value is erased only if every client row carrying it is the member's.\n\
                 duplicates = \"member_only\""
            );
        }
    }
    let tasks: Vec<&(super::TaskGuess, i64)> = evidence
        .tasks
        .iter()
        .filter(|(task, matched)| task.feature == feature && *matched > 0)
        .collect();
    for (task, _) in &tasks {
        link_columns.insert(task.target.clone());
    }
    write_references(&mut out, "feature", feature, table, shapes, evidence);
    write_mask(&mut out, "feature", feature, table, shapes, &link_columns);
    for (task, matched) in tasks {
        let ttable = &live.tables[&task.table];
        let _ = writeln!(
            out,
            "\n# Guess: {}; {matched} sampled row(s) matched.\n[[task]]\ntable = {}",
            task.because,
            q(&task.table)
        );
        write_key(&mut out, ttable);
        let _ = writeln!(out, "feature_id = {}", q(&task.column));
        if table.primary_key.len() != 1 || table.primary_key[0] != task.target {
            let _ = writeln!(out, "feature_column = {}", q(&task.target));
        }
        write_references(&mut out, "task", &task.table, ttable, shapes, evidence);
        write_mask(
            &mut out,
            "task",
            &task.table,
            ttable,
            shapes,
            &BTreeSet::from([task.column.clone()]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::catalog::Catalog;
    use crate::catalog::init::{self, LinkEvidence};
    use crate::catalog::live::{LiveColumn, LiveTable};

    fn column(name: &str, sql_type: &str, nullable: bool) -> LiveColumn {
        LiveColumn {
            name: name.into(),
            sql_type: sql_type.into(),
            nullable,
        }
    }

    /// A bare key no bucket holds as written: the draft says TODO, and the
    /// catalog loader refuses it until the bucket is set.
    #[test]
    fn what_only_the_team_knows_is_a_todo_the_loader_refuses() {
        let mut tables = BTreeMap::new();
        tables.insert(
            "requests".to_owned(),
            LiveTable {
                columns: vec![
                    column("id", "bigint", false),
                    column("member_key", "text", true),
                    column("kind", "text", false),
                ],
                primary_key: vec!["id".into()],
                ..LiveTable::default()
            },
        );
        tables.insert(
            "uploads".to_owned(),
            LiveTable {
                columns: vec![
                    column("id", "bigint", false),
                    column("request_id", "bigint", true),
                    column("file_key", "text", true),
                ],
                primary_key: vec!["id".into()],
                ..LiveTable::default()
            },
        );
        let live = LiveSchema {
            backend: Backend::Postgres,
            tables,
        };
        let survey = init::survey(&live);
        assert_eq!(survey.clients.len(), 1);
        let evidence = Evidence {
            links: survey
                .links
                .iter()
                .map(|_| LinkEvidence {
                    matched: 3,
                    types: ["UPLOAD".to_owned()].into(),
                })
                .collect(),
            samples: [(
                ("uploads".to_owned(), "file_key".to_owned()),
                vec!["u/1/photo.jpg".to_owned()],
            )]
            .into(),
            ..Evidence::default()
        };
        let draft = init::draft(&live, &survey, &evidence);
        assert_eq!(draft.todos, 4, "{:#?}", draft.files);
        let dir = tempfile::tempdir().unwrap();
        draft.write(dir.path(), true).unwrap();
        let text = std::fs::read_to_string(dir.path().join("features/uploads.toml")).unwrap();
        assert!(text.contains("TODO(lethe): $ holds bare keys"), "{text}");
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("TODO(lethe)"), "{err}");
    }
}
