//! Finding what to erase: the member's client rows page by page, the
//! feature and task rows below them, and every object their columns
//! reference ([`super::column_refs`]). Read-only: the discovery phase
//! writes what this finds to the manifest, and the dry run (`lethe plan`)
//! only counts it.
//!
//! The rules this module keeps: rows are named by their table's key; a
//! feature row joins the manifest only when every client row claiming it
//! is the member's (anything else is a `shared_row` anomaly, untouched and
//! not followed); each client table's rows reach feature rows through that
//! table's own link (the ids of a legacy table never select rows another
//! table's ids name); one statement per table per page, reading only keys,
//! link values and reference columns (never the long prompts); nothing is
//! skipped silently — whatever cannot be followed is an [`Anomaly`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::column_refs::{self, Place};
use super::findings::Findings;
use super::{Context, s3_erasure, side_by_side};
use crate::catalog::model::ReferenceSource;
use crate::catalog::plan::{ClientPlan, FeatureRows, FeatureTables};
use crate::error::Error;
use crate::store::manifest::{Anomaly, AnomalyKind};
use crate::store::service::{self, ClientCount, TextRow};

/// Where paging stands: the client table being read and the last key seen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    pub table: usize,
    pub last_id: Option<String>,
}

/// One of the member's client rows.
#[derive(Debug, Clone)]
pub struct ClientRow {
    /// Index into the plan's client tables.
    pub client: usize,
    pub table: String,
    /// Its key, encoded ([`crate::catalog::keys::RowKey::encode`]).
    pub key: String,
    pub feature_type: Option<String>,
    /// The values of its table's link columns, in the plan's order.
    pub links: Vec<Option<String>>,
}

/// How many pages (batches) the member's client rows make.
pub async fn count_pages(ctx: &Context, subject: &str) -> Result<i32, Error> {
    let clients: Vec<&ClientPlan> = ctx.plan.clients.iter().collect();
    let rows: i64 = service::count_client_rows(&ctx.store, &clients, subject, ClientCount::Rows)
        .await?
        .iter()
        .sum();
    let size = i64::from(ctx.settings.batch_size);
    Ok(((rows + size - 1) / size) as i32)
}

/// One page of the member's client rows.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<ClientRow>,
    /// On the first page: the member's rows that cannot be named (a NULL
    /// key column), which are reported, not erased.
    pub anomalies: Vec<Anomaly>,
    pub cursor: Cursor,
}

/// The next `batch_size` client rows after the cursor, spanning client
/// tables in catalog order, and the cursor after them.
pub async fn next_client_page(
    ctx: &Context,
    subject: &str,
    mut cursor: Cursor,
) -> Result<Page, Error> {
    let mut anomalies = Vec::new();
    if cursor.table == 0 && cursor.last_id.is_none() {
        let clients: Vec<&ClientPlan> = ctx.plan.clients.iter().collect();
        let unnamed =
            service::count_client_rows(&ctx.store, &clients, subject, ClientCount::NullKeys)
                .await?;
        for (client, unnamed) in clients.into_iter().zip(unnamed) {
            if unnamed > 0 {
                anomalies.push(Anomaly {
                    kind: AnomalyKind::UnaddressableRow.as_str().to_owned(),
                    table_name: Some(client.table.clone()),
                    row_id: None,
                    detail: format!(
                        "{unnamed} row(s) carrying the member's key have a NULL in the key {}: lethe names rows by their key and cannot erase these; give them a key, then `lethe retry`",
                        client.key.describe()
                    ),
                });
            }
        }
    }
    let mut page = Vec::new();
    let wanted = ctx.settings.batch_size as usize;
    while cursor.table < ctx.plan.clients.len() && page.len() < wanted {
        let index = cursor.table;
        let client = &ctx.plan.clients[index];
        let limit = (wanted - page.len()) as i64;
        let rows = service::client_page(
            &ctx.store,
            ctx.plan.dialect,
            client,
            subject,
            cursor.last_id.as_deref(),
            limit,
        )
        .await?;
        let exhausted = (rows.len() as i64) < limit;
        for row in rows {
            let row = client_row(index, client, row)?;
            cursor.last_id = Some(row.key.clone());
            page.push(row);
        }
        if exhausted {
            cursor = Cursor {
                table: index + 1,
                last_id: None,
            };
        }
    }
    Ok(Page {
        rows: page,
        anomalies,
        cursor,
    })
}

/// A page row: key texts, feature type, link values.
fn client_row(index: usize, client: &ClientPlan, row: TextRow) -> Result<ClientRow, Error> {
    let width = client.key.columns.len();
    let mut columns = row.into_iter();
    let key: Option<Vec<String>> = columns.by_ref().take(width).collect();
    // Paging leaves out rows with a NULL key column (reported on the
    // first page): an empty name could match another row.
    let key = key.ok_or_else(|| {
        Error::Invariant(format!(
            "a row of {} came back with a NULL key column ({}) although paging excludes them",
            client.table,
            client.key.describe()
        ))
    })?;
    let feature_type = columns.next().flatten();
    Ok(ClientRow {
        client: index,
        table: client.table.clone(),
        key: client.key.encode(key),
        feature_type,
        links: columns.collect(),
    })
}

/// How many of a page's features are followed at once.
const FEATURES_SIDE_BY_SIDE: usize = 4;

/// Reads the feature and task rows below a page of client rows, proves
/// each is the member's, and resolves their references.
pub async fn find(ctx: &Context, subject: &str, clients: &[ClientRow]) -> Result<Findings, Error> {
    let mut findings = Findings::default();
    let mut by_feature: BTreeMap<usize, Vec<&ClientRow>> = BTreeMap::new();
    for client in clients {
        findings.push_row(&client.table, &client.key);
        match client
            .feature_type
            .as_deref()
            .and_then(|ty| ctx.plan.feature_index(ty))
        {
            Some(index) => by_feature.entry(index).or_default().push(client),
            None => findings.anomalies.push(Anomaly {
                kind: AnomalyKind::UnknownFeatureType.as_str().to_owned(),
                table_name: Some(client.table.clone()),
                row_id: Some(client.key.clone()),
                detail: match &client.feature_type {
                    Some(ty) => format!(
                        "feature type {ty:?} is not in the catalog; add a features/*.toml for it"
                    ),
                    None => "the row has no feature type".into(),
                },
            }),
        }
    }
    // Each feature's reads are round trips (to the service's tables and to
    // S3), so a page's features are followed side by side, a few at a time;
    // their findings are then taken in feature order, as if one after
    // another.
    // Those at once share the request's `s3.concurrency` equally.
    let sharing = by_feature.len().clamp(1, FEATURES_SIDE_BY_SIDE);
    let permits = tokio::sync::Semaphore::new(FEATURES_SIDE_BY_SIDE);
    let followed = side_by_side::all(by_feature.into_iter().map(|(index, rows)| {
        let permits = &permits;
        async move {
            let _permit = permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let mut found = Findings::default();
            let feature = &ctx.plan.features[index];
            match &feature.tables {
                FeatureTables::Missing { table } => missing_table(&mut found, &rows, table),
                FeatureTables::Present(plan) => {
                    let feature = Following {
                        types: &feature.types,
                        plan,
                        sharing,
                    };
                    find_feature(ctx, subject, &feature, &rows, &mut found).await?
                }
            }
            Ok::<_, Error>(found)
        }
    }))
    .await;
    for found in followed {
        findings.absorb(found?);
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

/// A feature being followed below a page of client rows.
struct Following<'a> {
    /// Its feature types.
    types: &'a [String],
    plan: &'a FeatureRows,
    /// How many features ask S3 side by side, sharing the request's
    /// `s3.concurrency` equally.
    sharing: usize,
}

/// One feature's rows below some client rows: reached per client table,
/// proven, then read with their tasks.
async fn find_feature(
    ctx: &Context,
    subject: &str,
    feature: &Following<'_>,
    clients: &[&ClientRow],
    findings: &mut Findings,
) -> Result<(), Error> {
    let Following {
        types,
        plan,
        sharing,
    } = *feature;
    // Candidates, by key, in key order within each read.
    let mut candidates: BTreeMap<String, TextRow> = BTreeMap::new();
    let mut by_client: BTreeMap<usize, Vec<&ClientRow>> = BTreeMap::new();
    for client in clients {
        by_client.entry(client.client).or_default().push(client);
    }
    for (client_index, rows) in by_client {
        let Some(link) = &plan.links[client_index] else {
            for row in rows {
                findings.anomalies.push(client_anomaly(
                    row,
                    AnomalyKind::NoLink,
                    format!(
                        "the catalog gives no link from {} to {}, so this request's rows and files could not be followed; add one to the feature's file",
                        row.table, plan.table
                    ),
                ));
            }
            continue;
        };
        let mut values = BTreeSet::new();
        for row in &rows {
            match row.links.get(link.client_column).cloned().flatten() {
                // No value: the request made no feature row.
                None => {}
                Some(value) if link.value_kind.accepts(&value) => {
                    values.insert(value);
                }
                Some(_) => findings.anomalies.push(client_anomaly(
                    row,
                    AnomalyKind::UnlinkableValue,
                    format!(
                        "its link value to {} is not {} in canonical spelling, so the feature row it means cannot be proven; it was not followed",
                        plan.table,
                        link.value_kind.describe()
                    ),
                )),
            }
        }
        if values.is_empty() {
            continue;
        }
        let Some(found) =
            service::feature_rows(&ctx.store, link, values.into_iter().collect()).await?
        else {
            missing_table(findings, &rows, &plan.table);
            continue;
        };
        for row in found {
            match row_key(&plan.key, &row) {
                Some(key) => {
                    candidates.insert(key, row);
                }
                None => findings
                    .anomalies
                    .push(unaddressable(&plan.table, &plan.key)),
            }
        }
    }
    if candidates.is_empty() {
        return Ok(());
    }

    // Proof: no client row but the member's claims a candidate.
    let width = plan.key.columns.len();
    let mut shared: BTreeMap<String, &str> = BTreeMap::new();
    for namespace in &plan.namespaces {
        let column = width + namespace.value_column;
        let values: Vec<String> = candidates
            .values()
            .filter_map(|row| row[column].clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let claimed =
            service::claimed_by_others(&ctx.store, namespace, types, &values, subject).await?;
        for (key, row) in &candidates {
            if row[column].as_ref().is_some_and(|v| claimed.contains(v)) {
                shared.entry(key.clone()).or_insert(&namespace.describe);
            }
        }
    }
    for (key, how) in &shared {
        candidates.remove(key);
        findings.anomalies.push(Anomaly {
            kind: AnomalyKind::SharedRow.as_str().to_owned(),
            table_name: Some(plan.table.clone()),
            row_id: Some(key.clone()),
            detail: format!(
                "a client row that is not this member's also claims it ({how}), so lethe cannot prove it is the member's: it was neither erased nor followed to its tasks or files"
            ),
        });
    }

    let reference_start = width + plan.value_columns.len();
    let named: Vec<(Option<String>, &TextRow)> = candidates
        .iter()
        .map(|(key, row)| (Some(key.clone()), row))
        .collect();
    let page = ReferencePage {
        table: &plan.table,
        key: &plan.key,
        references: &plan.references,
        start: reference_start,
    };
    read_references(ctx, &page, named, sharing, findings).await?;
    for task in &plan.tasks {
        let column = width + task.parent_column;
        let mut values = BTreeSet::new();
        for (key, row) in &candidates {
            match &row[column] {
                None => {}
                Some(value) if task.value_kind.accepts(value) => {
                    values.insert(value.clone());
                }
                Some(_) => findings.anomalies.push(Anomaly {
                    kind: AnomalyKind::UnlinkableValue.as_str().to_owned(),
                    table_name: Some(plan.table.clone()),
                    row_id: Some(key.clone()),
                    detail: format!(
                        "the value its task rows in {} point at is not {} in canonical spelling; they were not followed",
                        task.table,
                        task.value_kind.describe()
                    ),
                }),
            }
        }
        if values.is_empty() {
            continue;
        }
        let Some(rows) = service::task_rows(&ctx.store, task, values.into_iter().collect()).await?
        else {
            missing_table(findings, clients, &task.table);
            continue;
        };
        let named: Vec<(Option<String>, &TextRow)> = rows
            .iter()
            .map(|row| (row_key(&task.key, row), row))
            .collect();
        let page = ReferencePage {
            table: &task.table,
            key: &task.key,
            references: &task.references,
            start: task.key.columns.len(),
        };
        read_references(ctx, &page, named, sharing, findings).await?;
    }
    Ok(())
}

/// A page of rows of one table whose file references are read.
struct ReferencePage<'a> {
    table: &'a str,
    key: &'a crate::catalog::keys::RowKey,
    references: &'a [ReferenceSource],
    /// Where a row's reference columns begin (in `references`' order).
    start: usize,
}

/// Reads the file references of a page's rows (each with its key, or None
/// when a key column is NULL: reported, not read), after asking S3 ahead
/// what reading them needs (with a `1/sharing` share of the request's
/// `s3.concurrency`). Each column is parsed once, for both.
async fn read_references(
    ctx: &Context,
    page: &ReferencePage<'_>,
    rows: Vec<(Option<String>, &TextRow)>,
    sharing: usize,
    findings: &mut Findings,
) -> Result<(), Error> {
    let parsed: Vec<Vec<Option<column_refs::Parsed>>> = rows
        .iter()
        .map(|(key, row)| match key {
            None => Vec::new(),
            Some(_) => (0..page.references.len())
                .map(|index| row[page.start + index].as_deref().map(column_refs::parse))
                .collect(),
        })
        .collect();
    let documents: Vec<(&ReferenceSource, &serde_json::Value)> = parsed
        .iter()
        .flat_map(|columns| {
            page.references
                .iter()
                .zip(columns)
                .filter_map(|(source, column)| match column {
                    Some(Ok(Some(document))) => Some((source, document)),
                    _ => None,
                })
        })
        .collect();
    column_refs::ask_ahead(ctx, &documents, sharing, findings).await?;
    for ((key, _), columns) in rows.into_iter().zip(parsed) {
        let Some(key) = key else {
            findings.anomalies.push(unaddressable(page.table, page.key));
            continue;
        };
        findings.push_row(page.table, &key);
        let place = Place {
            table: page.table,
            row_id: &key,
        };
        for (source, column) in page.references.iter().zip(columns) {
            if let Some(parsed) = column {
                column_refs::read_parsed(ctx, source, parsed, place, findings).await?;
            }
        }
    }
    Ok(())
}

/// A row's encoded key from its first columns; None when a key column is
/// NULL (a row that cannot be named is not erased).
fn row_key(key: &crate::catalog::keys::RowKey, row: &TextRow) -> Option<String> {
    let values: Option<Vec<String>> = row[..key.columns.len()].iter().cloned().collect();
    values.map(|values| key.encode(values))
}

/// A row reached but not nameable (a NULL key column): reported, not erased.
fn unaddressable(table: &str, key: &crate::catalog::keys::RowKey) -> Anomaly {
    Anomaly {
        kind: AnomalyKind::UnaddressableRow.as_str().to_owned(),
        table_name: Some(table.to_owned()),
        row_id: None,
        detail: format!(
            "a row reached from the member's requests has a NULL in the key {}: lethe names rows by their key and cannot erase it",
            key.describe()
        ),
    }
}

fn client_anomaly(row: &ClientRow, kind: AnomalyKind, detail: String) -> Anomaly {
    Anomaly {
        kind: kind.as_str().to_owned(),
        table_name: Some(row.table.clone()),
        row_id: Some(row.key.clone()),
        detail,
    }
}

/// One anomaly per client row whose feature table is gone.
fn missing_table(findings: &mut Findings, clients: &[&ClientRow], table: &str) {
    for client in clients {
        findings.anomalies.push(client_anomaly(
                    client,
                    AnomalyKind::MissingTable,
            format!(
                "feature type {:?}: table {table} does not exist in this database, so this request's rows and files could not be followed",
                client.feature_type.as_deref().unwrap_or_default()
            ),
        ));
    }
}
