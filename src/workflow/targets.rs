//! Finding what to erase: the member's client rows page by page, the
//! feature and task rows below them, and every object their JSON references
//! — resolved, deduplicated and, for JSON manifests (a PDF extraction's
//! image list), expanded. Read-only: the discovery phase writes what this
//! finds to the manifest, and the dry run (`lethe plan`) only counts it.
//!
//! The rules this module keeps: one statement per table per page, reading
//! only keys and reference columns (never the long prompts); nothing is
//! skipped silently — whatever cannot be followed is an [`Anomaly`].

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Context, s3_erasure};
use crate::catalog::model::{Expansion, ReferenceSource};
use crate::catalog::schema::{ChildLookup, FeatureTables};
use crate::error::Error;
use crate::references::{ObjectRef, Resolution};
use crate::store::dynamic::{self, Arg};
use crate::store::manifest::{Anomaly, ManifestObject, ManifestRow};

/// Where paging stands: the client table being read and the last id seen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    pub table: usize,
    pub last_id: Option<String>,
}

/// One of the member's client rows.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub table: String,
    pub id: String,
    pub feature_type: Option<String>,
}

/// Everything one page of client rows leads to.
#[derive(Debug, Default)]
pub struct Findings {
    pub rows: Vec<ManifestRow>,
    /// In deletion order: objects a container lists come before it.
    pub objects: Vec<ManifestObject>,
    pub anomalies: Vec<Anomaly>,
    seen_objects: HashSet<ObjectRef>,
}

/// How many pages (batches) the member's client rows make.
pub async fn count_pages(ctx: &Context, subject: &str) -> Result<i32, Error> {
    let mut rows = 0i64;
    for client in &ctx.plan.clients {
        rows += dynamic::fetch_count(&ctx.store, &client.count_sql, &[Arg::Text(subject)]).await?;
    }
    let size = i64::from(ctx.settings.batch_size);
    Ok(((rows + size - 1) / size) as i32)
}

/// The next `batch_size` client rows after the cursor, spanning client
/// tables in catalog order, and the cursor after them.
pub async fn next_client_page(
    ctx: &Context,
    subject: &str,
    mut cursor: Cursor,
) -> Result<(Vec<ClientRow>, Cursor), Error> {
    let mut page = Vec::new();
    let wanted = ctx.settings.batch_size as usize;
    while cursor.table < ctx.plan.clients.len() && page.len() < wanted {
        let client = &ctx.plan.clients[cursor.table];
        let args = [
            Arg::Text(subject),
            Arg::OptText(cursor.last_id.as_deref()),
            Arg::Int((wanted - page.len()) as i64),
        ];
        let rows: Vec<(String, Option<String>)> =
            dynamic::fetch_rows(&ctx.store, &client.page_sql, &args)
                .await?
                .into_iter()
                .map(|row| {
                    let mut columns = row.into_iter();
                    let id = columns.next().flatten().unwrap_or_default();
                    (id, columns.next().flatten())
                })
                .collect();
        let exhausted = rows.len() < wanted - page.len();
        if let Some((last, _)) = rows.last() {
            cursor.last_id = Some(last.clone());
        }
        page.extend(rows.into_iter().map(|(id, feature_type)| ClientRow {
            table: client.table.clone(),
            id,
            feature_type,
        }));
        if exhausted {
            cursor = Cursor {
                table: cursor.table + 1,
                last_id: None,
            };
        }
    }
    Ok((page, cursor))
}

/// Reads the feature and task rows below a page of client rows and resolves
/// their references.
pub async fn find(ctx: &Context, clients: &[ClientRow]) -> Result<Findings, Error> {
    let mut findings = Findings::default();
    // Group client rows by feature so each table is read once per page.
    let mut by_feature: BTreeMap<usize, Vec<&ClientRow>> = BTreeMap::new();
    for client in clients {
        findings.rows.push(ManifestRow {
            table: client.table.clone(),
            row_id: client.id.clone(),
        });
        let feature = client.feature_type.as_deref().and_then(|ty| {
            ctx.plan
                .features
                .iter()
                .position(|f| f.types.iter().any(|t| t == ty))
        });
        match feature {
            Some(index) => by_feature.entry(index).or_default().push(client),
            None => findings.anomalies.push(Anomaly {
                kind: "unknown_feature_type".into(),
                table_name: Some(client.table.clone()),
                row_id: Some(client.id.clone()),
                detail: match &client.feature_type {
                    Some(ty) => format!(
                        "feature type {ty:?} is not in the catalog; add a features/*.toml for it"
                    ),
                    None => "the row has no feature type".into(),
                },
            }),
        }
    }
    for (index, clients) in by_feature {
        let client_ids: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();
        let (feature, task) = match &ctx.plan.features[index].tables {
            FeatureTables::Present { feature, task } => (feature, task),
            FeatureTables::Missing { table } => {
                missing_table(&mut findings, &clients, table);
                continue;
            }
        };
        let Some(feature_ids) = read_children(ctx, feature, &client_ids, &mut findings).await?
        else {
            missing_table(&mut findings, &clients, &feature.table);
            continue;
        };
        if let Some(task) = task
            && !feature_ids.is_empty()
            && read_children(ctx, task, &feature_ids, &mut findings)
                .await?
                .is_none()
        {
            missing_table(&mut findings, &clients, &task.table);
        }
    }
    // Copies in replica buckets are objects of their own: erased, verified
    // and counted like the originals.
    findings.objects = s3_erasure::with_replicas(
        std::mem::take(&mut findings.objects),
        |bucket| ctx.buckets.replicas_of(bucket).to_vec(),
        |object| ctx.resolver.protection_rule(object).is_some(),
    );
    Ok(findings)
}

/// One anomaly per client row whose feature table is gone.
fn missing_table(findings: &mut Findings, clients: &[&ClientRow], table: &str) {
    for client in clients {
        findings.anomalies.push(Anomaly {
            kind: "missing_table".into(),
            table_name: Some(client.table.clone()),
            row_id: Some(client.id.clone()),
            detail: format!(
                "feature type {:?}: table {table} does not exist in this database, so this request's rows and files could not be followed",
                client.feature_type.as_deref().unwrap_or_default()
            ),
        });
    }
}

/// Reads the rows of one table below `parent_ids`; returns their ids, or
/// None when the table does not exist (dropped since start-up).
async fn read_children(
    ctx: &Context,
    lookup: &ChildLookup,
    parent_ids: &[String],
    findings: &mut Findings,
) -> Result<Option<Vec<String>>, Error> {
    let rows =
        match dynamic::fetch_rows(&ctx.store, &lookup.select_sql, &[Arg::Ids(parent_ids)]).await {
            Ok(rows) => rows,
            Err(err) if dynamic::is_undefined_table(&err) => return Ok(None),
            Err(err) => return Err(err),
        };
    let mut ids = Vec::with_capacity(rows.len());
    for mut row in rows {
        let id: String = row[0].take().unwrap_or_default();
        findings.rows.push(ManifestRow {
            table: lookup.table.clone(),
            row_id: id.clone(),
        });
        for (index, source) in lookup.references.iter().enumerate() {
            let text: Option<String> = row[index + 1].take();
            let Some(text) = text else { continue };
            let place = Place {
                table: &lookup.table,
                row_id: &id,
            };
            read_column(ctx, source, &text, place, findings).await?;
        }
        ids.push(id);
    }
    Ok(Some(ids))
}

/// Where a reference was found, for anomalies.
#[derive(Clone, Copy)]
struct Place<'a> {
    table: &'a str,
    row_id: &'a str,
}

impl Place<'_> {
    fn anomaly(&self, kind: &str, detail: String) -> Anomaly {
        Anomaly {
            kind: kind.into(),
            table_name: Some(self.table.to_owned()),
            row_id: Some(self.row_id.to_owned()),
            detail,
        }
    }
}

async fn read_column(
    ctx: &Context,
    source: &ReferenceSource,
    text: &str,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let document = match parse_column(text) {
        Ok(Some(document)) => document,
        Ok(None) => return Ok(()),
        Err(err) => {
            findings.anomalies.push(place.anomaly(
                "malformed_json",
                format!(
                    "column {}: {err}; its file references could not be read",
                    source.column
                ),
            ));
            return Ok(());
        }
    };
    for path in &source.paths {
        for value in path.select(&document) {
            let Some(resolution) = ctx.resolver.resolve_value(value) else {
                continue;
            };
            let context = format!("column {} path {path}", source.column);
            let Some((object, protected)) =
                settle(ctx, resolution, &context, place, findings).await?
            else {
                continue;
            };
            match &source.expand {
                Some(expansion) if !protected && !findings.seen_objects.contains(&object) => {
                    expand(ctx, expansion, &object, &context, place, findings).await?;
                    findings.push(object, false, true, place);
                }
                _ => findings.push(object, protected, false, place),
            }
        }
    }
    Ok(())
}

/// A column's text as JSON. Legacy text columns may hold a bare URL rather
/// than JSON; that is read as a JSON string. Blank means no reference.
fn parse_column(text: &str) -> Result<Option<Value>, serde_json::Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if looks_like_url(trimmed) {
        return Ok(Some(Value::String(trimmed.to_owned())));
    }
    serde_json::from_str(trimmed).map(Some)
}

fn looks_like_url(text: &str) -> bool {
    let head = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    head.starts_with("http://") || head.starts_with("https://") || head.starts_with("s3://")
}

/// Turns a resolution into an object to list (and whether it is
/// protected), or records why there is none.
async fn settle(
    ctx: &Context,
    resolution: Resolution,
    context: &str,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<Option<(ObjectRef, bool)>, Error> {
    Ok(match resolution {
        Resolution::Object { object, .. } => Some((object, false)),
        Resolution::Protected { object, .. } => Some((object, true)),
        Resolution::Ambiguous { plus, space, .. } => {
            let plus_exists = ctx.objects.exists(&plus.bucket, &plus.key).await?;
            let space_exists = ctx.objects.exists(&space.bucket, &space.key).await?;
            match (plus_exists, space_exists) {
                (true, true) => {
                    findings.anomalies.push(place.anomaly(
                        "ambiguous_plus",
                        format!(
                            "{context}: a '+' in the URL may be a plus or a space, and both objects exist in bucket {}; neither was deleted",
                            plus.bucket
                        ),
                    ));
                    None
                }
                (false, true) => {
                    let protected = ctx.resolver.protection_rule(&space).is_some();
                    Some((space, protected))
                }
                // Only the plus exists, or neither (already gone): the URL's
                // literal reading goes into the manifest, and verification
                // confirms it is absent.
                _ => {
                    let protected = ctx.resolver.protection_rule(&plus).is_some();
                    Some((plus, protected))
                }
            }
        }
        Resolution::Foreign { reason } => {
            findings
                .anomalies
                .push(place.anomaly("foreign_reference", format!("{context}: {reason}")));
            None
        }
    })
}

/// Reads a JSON manifest object and lists the objects it names (before it).
async fn expand(
    ctx: &Context,
    expansion: &Expansion,
    manifest: &ObjectRef,
    context: &str,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let bucket = &manifest.bucket;
    let Some(bytes) = ctx
        .objects
        .get_bounded(bucket, &manifest.key, expansion.max_bytes)
        .await?
    else {
        findings.anomalies.push(place.anomaly(
            "manifest_missing",
            format!(
                "{context}: the JSON document it points to in bucket {bucket} does not exist, so the objects it listed cannot be found"
            ),
        ));
        return Ok(());
    };
    let Some(bytes) = bytes else {
        findings.anomalies.push(place.anomaly(
            "manifest_too_large",
            format!(
                "{context}: the JSON document in bucket {bucket} is larger than {} bytes (expand.max_bytes); its objects were not listed",
                expansion.max_bytes
            ),
        ));
        return Ok(());
    };
    let document: Value = match serde_json::from_slice(&bytes) {
        Ok(document) => document,
        Err(err) => {
            findings.anomalies.push(place.anomaly(
                "manifest_malformed",
                format!("{context}: the JSON document in bucket {bucket} is not valid JSON ({err}); its objects were not listed"),
            ));
            return Ok(());
        }
    };
    let listed_bucket = expansion.bucket.as_deref().unwrap_or(bucket);
    let listed = expansion.list.select(&document);
    if listed.is_empty() {
        findings.anomalies.push(place.anomaly(
            "manifest_malformed",
            format!(
                "{context}: the JSON document in bucket {bucket} has nothing at {}; expected its list of objects",
                expansion.list
            ),
        ));
    }
    for value in listed {
        let resolution = match value {
            Value::String(text) if !looks_like_url(text) => {
                if text.is_empty() {
                    continue;
                }
                ctx.resolver.classify(
                    ObjectRef {
                        bucket: listed_bucket.to_owned(),
                        key: text.clone(),
                    },
                    "key listed in a JSON manifest".to_owned(),
                )
            }
            other => match ctx.resolver.resolve_value(other) {
                Some(resolution) => resolution,
                None => continue,
            },
        };
        let inner = format!("{context} -> {}", expansion.list);
        if let Some((object, protected)) = settle(ctx, resolution, &inner, place, findings).await? {
            findings.push(object, protected, false, place);
        }
    }
    Ok(())
}

impl Findings {
    /// Adds an object once; the first mention decides its place in the order.
    fn push(&mut self, object: ObjectRef, protected: bool, container: bool, place: Place<'_>) {
        if self.seen_objects.insert(object.clone()) {
            self.objects.push(ManifestObject {
                object,
                protected,
                source_table: place.table.to_owned(),
                source_row: place.row_id.to_owned(),
                replica_of: None,
                container,
            });
        }
    }
}
