//! Requested -> TargetsFound: discovering what to erase and writing it to
//! the manifest, one batch of client records at a time.
//!
//! A batch is up to `batch_size` of the subject's client rows, paged by
//! keyset across the client tables in catalog order (current and legacy
//! copies alike). For the batch, each feature table and each task table is
//! read with one statement, only the key and reference columns (never the
//! long prompts), and every reference is resolved. The batch's rows, objects
//! and anomalies and its checkpoint commit in one transaction, so a crash
//! leaves either the whole batch or none of it. Nothing is deleted here.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Row};

use super::state::{Phase, State};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value, start_phase};
use crate::catalog::schema::ChildLookup;
use crate::error::Error;
use crate::failpoint;
use crate::references::{ObjectRef, Resolution};
use crate::store::manifest::{self, Anomaly, ManifestObject, ManifestRow};
use crate::store::requests::checkpoint::{self, Progress};
use crate::store::{Lease, events};

/// Where discovery stands: the client table being paged and the last id read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    pub table: usize,
    pub last_id: Option<String>,
}

/// One of the subject's client rows.
#[derive(Debug, Clone)]
struct ClientRow {
    table: String,
    id: String,
    feature_type: Option<String>,
}

/// Everything one batch found.
#[derive(Debug, Default)]
pub struct Findings {
    pub rows: Vec<ManifestRow>,
    pub objects: Vec<ManifestObject>,
    pub anomalies: Vec<Anomaly>,
    seen_objects: HashSet<ObjectRef>,
}

pub async fn step(ctx: &Context, lease: &Lease, subject: &str) -> Result<Step, Error> {
    let checkpoint = Checkpoint::load(&ctx.store, lease.request_id).await?;
    let mut total = checkpoint.batch_total;
    if total.is_none() {
        let batches = count_batches(ctx, subject).await?;
        start_phase(ctx, lease, State::Requested, batches).await?;
        total = Some(batches);
    }
    let cursor: Cursor = checkpoint.cursor()?;
    let (clients, next_cursor) = next_client_page(ctx, subject, cursor).await?;
    if clients.is_empty() {
        return advance(ctx, lease, State::Requested).await;
    }
    let batch = checkpoint.next_batch();
    batch_started(ctx, lease, Phase::FindingTargets, batch).await?;

    let findings = find_targets(ctx, &clients).await?;

    let mut tx = ctx.store.pool().begin().await?;
    lease.fence(&mut tx, State::Requested).await?;
    let added = manifest::add(
        &mut tx,
        lease.request_id,
        batch,
        &findings.rows,
        &findings.objects,
        &findings.anomalies,
    )
    .await?;
    failpoint::pause_if_armed(Phase::FindingTargets, batch).await;
    let progress = Progress {
        rows_found: added.rows,
        objects_found: added.objects_to_delete,
        objects_retained: added.objects_retained,
        anomalies: added.anomalies,
        ..Progress::default()
    };
    checkpoint::batch_done(&mut tx, lease, &cursor_value(&next_cursor), progress).await?;
    let detail = format!(
        "rows {} objects {} retained {} anomalies {}",
        added.rows, added.objects_to_delete, added.objects_retained, added.anomalies
    );
    events::record(
        &mut tx,
        lease,
        "batch_committed",
        Some(Phase::FindingTargets),
        Some(batch),
        Some(&detail),
    )
    .await?;
    tx.commit().await?;
    tracing::debug!(
        request_id = %lease.request_id, phase = %Phase::FindingTargets, batch, total = ?total,
        rows = added.rows, objects = added.objects_to_delete, retained = added.objects_retained,
        anomalies = added.anomalies, "batch committed"
    );
    Ok(Step::Batch {
        phase: Phase::FindingTargets,
        batch,
        total,
    })
}

/// How many discovery batches the subject's client rows make.
async fn count_batches(ctx: &Context, subject: &str) -> Result<i32, Error> {
    let mut rows = 0i64;
    for client in &ctx.plan.clients {
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(client.count_sql.as_str()))
            .bind(subject)
            .fetch_one(ctx.store.pool())
            .await?;
        rows += count;
    }
    let size = i64::from(ctx.settings.batch_size);
    Ok(((rows + size - 1) / size) as i32)
}

/// The next `batch_size` client rows after the cursor, spanning client
/// tables in catalog order, and the cursor after them.
async fn next_client_page(
    ctx: &Context,
    subject: &str,
    mut cursor: Cursor,
) -> Result<(Vec<ClientRow>, Cursor), Error> {
    let mut page = Vec::new();
    let wanted = ctx.settings.batch_size as usize;
    while cursor.table < ctx.plan.clients.len() && page.len() < wanted {
        let client = &ctx.plan.clients[cursor.table];
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as(AssertSqlSafe(client.page_sql.as_str()))
                .bind(subject)
                .bind(cursor.last_id.as_deref())
                .bind((wanted - page.len()) as i64)
                .fetch_all(ctx.store.pool())
                .await?;
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
async fn find_targets(ctx: &Context, clients: &[ClientRow]) -> Result<Findings, Error> {
    let mut findings = Findings::default();
    // Group client rows by feature so each table is read once per batch.
    let mut by_feature: BTreeMap<usize, Vec<String>> = BTreeMap::new();
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
            Some(index) => by_feature.entry(index).or_default().push(client.id.clone()),
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
    for (index, client_ids) in by_feature {
        let feature = &ctx.plan.features[index];
        let feature_ids = read_children(ctx, &feature.feature, &client_ids, &mut findings).await?;
        if let Some(task) = &feature.task
            && !feature_ids.is_empty()
        {
            read_children(ctx, task, &feature_ids, &mut findings).await?;
        }
    }
    Ok(findings)
}

/// Reads the rows of one table below `parent_ids`; returns their ids.
async fn read_children(
    ctx: &Context,
    lookup: &ChildLookup,
    parent_ids: &[String],
    findings: &mut Findings,
) -> Result<Vec<String>, Error> {
    let rows = sqlx::query(AssertSqlSafe(lookup.select_sql.as_str()))
        .bind(parent_ids)
        .fetch_all(ctx.store.pool())
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get(0)?;
        findings.rows.push(ManifestRow {
            table: lookup.table.clone(),
            row_id: id.clone(),
        });
        for (index, source) in lookup.references.iter().enumerate() {
            let text: Option<String> = row.try_get(index + 1)?;
            let Some(text) = text else { continue };
            let document = match parse_column(&text) {
                Ok(Some(document)) => document,
                Ok(None) => continue,
                Err(err) => {
                    findings.anomalies.push(Anomaly {
                        kind: "malformed_json".into(),
                        table_name: Some(lookup.table.clone()),
                        row_id: Some(id.clone()),
                        detail: format!(
                            "column {}: {err}; its file references could not be read",
                            source.column
                        ),
                    });
                    continue;
                }
            };
            for path in &source.paths {
                for value in path.select(&document) {
                    let Some(resolution) = ctx.resolver.resolve_value(value) else {
                        continue;
                    };
                    let context = format!("column {} path {path}", source.column);
                    record(ctx, resolution, &lookup.table, &id, &context, findings).await?;
                }
            }
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A column's text as JSON. Legacy text columns may hold a bare URL rather
/// than JSON; that is read as a JSON string. Blank means no reference.
fn parse_column(text: &str) -> Result<Option<Value>, serde_json::Error> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let lower = trimmed.get(..8).unwrap_or(trimmed).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("s3://") {
        return Ok(Some(Value::String(trimmed.to_owned())));
    }
    serde_json::from_str(trimmed).map(Some)
}

/// Adds one resolved reference to the findings.
async fn record(
    ctx: &Context,
    resolution: Resolution,
    table: &str,
    row_id: &str,
    context: &str,
    findings: &mut Findings,
) -> Result<(), Error> {
    let (object, protected) = match resolution {
        Resolution::Object { object, .. } => (object, false),
        Resolution::Protected { object, .. } => (object, true),
        Resolution::Ambiguous { plus, space, .. } => {
            let plus_exists = ctx.objects.exists(&plus.bucket, &plus.key).await?;
            let space_exists = ctx.objects.exists(&space.bucket, &space.key).await?;
            match (plus_exists, space_exists) {
                (true, true) => {
                    findings.anomalies.push(Anomaly {
                        kind: "ambiguous_plus".into(),
                        table_name: Some(table.to_owned()),
                        row_id: Some(row_id.to_owned()),
                        detail: format!(
                            "{context}: a '+' in the URL may be a plus or a space, and both objects exist in bucket {}; neither was deleted",
                            plus.bucket
                        ),
                    });
                    return Ok(());
                }
                (false, true) => (space, false),
                // Only the plus exists, or neither (already gone): the URL's
                // literal reading goes into the manifest, and verification
                // confirms it is absent.
                _ => (plus, false),
            }
        }
        Resolution::Foreign { reason } => {
            findings.anomalies.push(Anomaly {
                kind: "foreign_reference".into(),
                table_name: Some(table.to_owned()),
                row_id: Some(row_id.to_owned()),
                detail: format!("{context}: {reason}"),
            });
            return Ok(());
        }
    };
    let protected = protected || ctx.resolver.protection_rule(&object).is_some();
    if findings.seen_objects.insert(object.clone()) {
        findings.objects.push(ManifestObject {
            object,
            protected,
            source_table: table.to_owned(),
        });
    }
    Ok(())
}
