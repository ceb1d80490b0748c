//! The second sweep, before Done: what was written after discovery. A
//! member may still be writing while being erased (a request made in the
//! minutes the erasure runs), and the service may rewrite a row after it was
//! masked. Verification finds both — a client row still carrying the
//! member's key, a manifest row whose catalogued columns hold values again —
//! and instead of failing, the request sweeps: discovery once more (only
//! rows still carrying the key match), the rewritten rows read again by key,
//! their objects erased (S3 before the database, as always), then the rows
//! masked and everything recorded in the manifest in one transaction.
//! Verification then reads the new objects back and checks again.
//!
//! The rules this module keeps: the sweep finds rows exactly as discovery
//! does (the same ownership proof); S3 goes before the database; a member
//! whose data keeps being written is not swept for ever — after
//! [`MAX_SWEEPS`] sweeps since the last `retry`, the request stops in
//! Failed, saying so, and `lethe retry` sweeps again.

use std::collections::BTreeMap;

use super::column_refs::{self, Place};
use super::findings::Findings;
use super::state::{Phase, State};
use super::targets::{self, Cursor};
use super::{Context, s3_erasure, side_by_side};
use crate::catalog::RowErasure;
use crate::catalog::plan::{ClientPlan, FeatureTables};
use crate::error::Error;
use crate::objects::ObjectError;
use crate::objects::buckets::Freshness;
use crate::store::events::EventKind;
use crate::store::manifest::{self, Anomaly, AnomalyKind, ManifestRow, RowBatch};
use crate::store::requests::checkpoint::{self, CommitEvent, Progress};
use crate::store::service::{self, ClientCount};
use crate::store::{Lease, events, sweep};

/// Sweeps allowed between two `retry`s.
pub const MAX_SWEEPS: usize = 3;

/// What verification found written after discovery.
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Manifest rows whose catalogued columns hold values again.
    pub rewritten: Vec<ManifestRow>,
    /// Client rows still carrying the member's key, per table.
    pub carrying_key: Vec<(String, i64)>,
    /// The member's client rows with a NULL key, per table: reported at
    /// discovery, never swept (lethe cannot name them); verification
    /// refuses them.
    pub unnamed: Vec<(String, i64)>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.rewritten.is_empty() && self.carrying_key.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut rewritten: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &self.rewritten {
            *rewritten.entry(row.table.as_str()).or_default() += 1;
        }
        for (table, n) in rewritten {
            parts.push(format!("{n} row(s) of {table} written again after masking"));
        }
        for (table, n) in &self.carrying_key {
            parts.push(format!(
                "{n} row(s) of {table} still carrying the member's key"
            ));
        }
        parts.join(", ")
    }
}

/// Reads back the manifest's rows (but those kept by policy) after
/// discovery batch `after_batch` (None: none are left to read, they were
/// read back alongside the objects) and every client table that can be
/// checked for the member's key. Returns what was found and how many rows
/// it read.
pub async fn leftovers(
    ctx: &Context,
    lease: &Lease,
    subject: &str,
    after_batch: Option<i32>,
) -> Result<(Leftovers, i64), Error> {
    let mut found = Leftovers::default();
    let mut checked = 0i64;
    let mut after_batch = after_batch;
    while let Some(after) = after_batch
        && let Some(RowBatch {
            batch_no,
            rows,
            last,
        }) = manifest::rows_to_verify(&ctx.store, lease.request_id, after).await?
    {
        // The last batch says so: no read to find nothing after it.
        after_batch = (!last).then_some(batch_no);
        checked += rows.len() as i64;
        found.rewritten.extend(rewritten(ctx, lease, &rows).await?);
    }
    // Each client table whose erasure removes the key, asked together; the
    // tables still carrying it are asked again for rows with a NULL key,
    // which were reported at discovery and cannot be swept (verification
    // refuses them on its own).
    let checked_clients: Vec<&ClientPlan> = ctx
        .plan
        .clients
        .iter()
        .filter(|c| c.erases_subject)
        .collect();
    let counts =
        service::count_client_rows(&ctx.store, &checked_clients, subject, ClientCount::Rows)
            .await?;
    let carrying: Vec<(&ClientPlan, i64)> = checked_clients
        .into_iter()
        .zip(counts)
        .filter(|(_, carrying)| *carrying > 0)
        .collect();
    if !carrying.is_empty() {
        let tables: Vec<&ClientPlan> = carrying.iter().map(|(client, _)| *client).collect();
        let unnamed =
            service::count_client_rows(&ctx.store, &tables, subject, ClientCount::NullKeys).await?;
        for ((client, carrying), unnamed) in carrying.into_iter().zip(unnamed) {
            if unnamed > 0 {
                found.unnamed.push((client.table.clone(), unnamed));
            }
            let left = carrying - unnamed;
            if left > 0 {
                found.carrying_key.push((client.table.clone(), left));
            }
        }
    }
    Ok((found, checked))
}

/// Which of these manifest rows hold values again in a catalogued column
/// (written after masking). Each table's rows are read back side by side
/// (one connection each): a large member's read-back is round trips, not
/// work.
pub async fn rewritten(
    ctx: &Context,
    lease: &Lease,
    rows: &[ManifestRow],
) -> Result<Vec<ManifestRow>, Error> {
    let keys_by_table = ManifestRow::keys_by_table(rows);
    let mut tables = Vec::with_capacity(keys_by_table.len());
    for (table, keys) in keys_by_table {
        let Some(plan) = ctx.plan.tables.get(table) else {
            return Err(Error::Permanent {
                id: lease.request_id,
                message: format!(
                    "cannot verify table {table}: the catalog no longer describes it; restore its entry, then `lethe retry`"
                ),
            });
        };
        tables.push((table, plan, keys));
    }
    let answers = side_by_side::all(
        tables
            .iter()
            .map(|(_, plan, keys)| service::unerased_keys(&ctx.store, plan, keys)),
    )
    .await;
    let mut found = Vec::new();
    for ((table, _, _), answer) in tables.iter().zip(answers) {
        for key in answer? {
            found.push(ManifestRow {
                table: (*table).to_owned(),
                row_id: key,
            });
        }
    }
    Ok(found)
}

/// Sweeps: finds, erases and records what `leftovers` points at.
pub async fn run(
    ctx: &Context,
    lease: &Lease,
    subject: &str,
    left: &Leftovers,
    checkpoint_cursor: &serde_json::Value,
) -> Result<(), Error> {
    let done = sweeps_since_retry(ctx, lease).await?;
    if done >= MAX_SWEEPS {
        return Err(Error::Permanent {
            id: lease.request_id,
            message: format!(
                "verification: the member's data keeps being written while it is erased ({}), after {done} sweeps; \
                 stop whatever writes it, then `lethe retry` to sweep again",
                left.describe()
            ),
        });
    }
    // Discovery once more: masked client rows no longer carry the key, so
    // only what was written since (or missed) comes back.
    let mut findings = Findings::default();
    let mut cursor = Cursor::default();
    loop {
        let page = targets::next_client_page(ctx, subject, cursor).await?;
        if page.rows.is_empty() && page.anomalies.is_empty() {
            break;
        }
        cursor = page.cursor;
        let mut found = targets::find(ctx, subject, &page.rows).await?;
        found.anomalies.extend(page.anomalies);
        findings.absorb(found);
    }
    let mut rewritten = Findings::default();
    reread(ctx, &left.rewritten, &mut rewritten).await?;
    rewritten.objects = s3_erasure::with_replicas(
        std::mem::take(&mut rewritten.objects),
        |bucket| ctx.buckets.replicas_of(bucket).to_vec(),
        |object| ctx.resolver.protection_rule(object).is_some(),
    );
    findings.absorb(rewritten);

    // S3 first: plain objects, then the documents that list them.
    let mut outcomes: Vec<(String, String, &'static str)> = Vec::new();
    let mut anomalies: Vec<Anomaly> = Vec::new();
    for containers in [false, true] {
        let mut by_bucket: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for object in findings
            .objects
            .iter()
            .filter(|o| !o.protected && o.container == containers)
        {
            by_bucket
                .entry(object.object.bucket.as_str())
                .or_default()
                .push(object.object.key.clone());
        }
        for (bucket, keys) in by_bucket {
            let result =
                s3_erasure::erase_in(&ctx.buckets, bucket, &keys, keys.len(), Freshness::Fresh)
                    .await?;
            for erased in result.erased {
                let key = keys[erased.index].clone();
                outcomes.push((bucket.to_owned(), key, erased.outcome.as_str()));
            }
            for refusal in result.refused {
                if refusal.transient {
                    return Err(Error::Objects(ObjectError::transient(
                        "DeleteObjects",
                        bucket,
                        format!("S3 refused to erase an object for now: {}", refusal.code),
                    )));
                }
                outcomes.push((
                    bucket.to_owned(),
                    refusal.key.clone(),
                    refusal.outcome().as_str(),
                ));
                anomalies.push(Anomaly {
                    kind: AnomalyKind::ErasureRefused.as_str().to_owned(),
                    table_name: None,
                    row_id: None,
                    detail: format!(
                        "bucket {bucket:?}: S3 refused to erase an object found by the second sweep ({}); it is retained",
                        refusal.reason
                    ),
                });
            }
        }
    }

    // Then the rows, with the manifest, in one transaction.
    let batch_no = sweep::next_batch_no(&ctx.store, lease.request_id).await?;
    let mut to_erase: Vec<ManifestRow> = findings.rows.clone();
    for row in &left.rewritten {
        if !to_erase.contains(row) {
            to_erase.push(row.clone());
        }
    }
    let mut tx = ctx.store.begin().await?;
    lease.fence(&mut tx, State::DbMasked).await?;
    findings.anomalies.extend(anomalies);
    manifest::add(
        &mut tx,
        lease.request_id,
        batch_no,
        &findings.rows,
        &findings.objects,
        &findings.anomalies,
    )
    .await?;
    for (bucket, key, outcome) in &outcomes {
        sweep::record_object_outcome(&mut tx, lease.request_id, bucket, key, outcome).await?;
    }
    let mut masked = 0u64;
    for table in ctx.plan.erase_order() {
        let name = table.name.to_string();
        let rows: Vec<&ManifestRow> = to_erase.iter().filter(|r| r.table == name).collect();
        if rows.is_empty() {
            continue;
        }
        let keys: Vec<String> = rows.iter().map(|r| r.row_id.clone()).collect();
        masked += service::erase(&mut tx, table, &keys).await?;
        let method = match table.erase {
            RowErasure::Mask => "masked",
            RowErasure::Delete => "deleted",
        };
        for row in rows {
            sweep::mark_row_erased(&mut tx, lease.request_id, row, method).await?;
        }
    }
    let detail = format!(
        "found {}; objects erased {} rows erased {masked} anomalies {}",
        left.describe(),
        outcomes.len(),
        findings.anomalies.len()
    );
    let deleted = outcomes.iter().filter(|(_, _, o)| *o == "deleted").count() as i64;
    let progress = Progress {
        rows_found: findings.rows.len() as i64,
        objects_found: findings.objects.iter().filter(|o| !o.protected).count() as i64,
        objects_deleted: deleted,
        rows_masked: masked as i64,
        anomalies: findings.anomalies.len() as i32,
        ..Progress::default()
    };
    let event = CommitEvent {
        kind: EventKind::SecondSweep,
        phase: Phase::Verifying,
        batch: None,
        detail: &detail,
    };
    checkpoint::batch_done(&mut tx, lease, checkpoint_cursor, progress, event).await?;
    tx.commit().await?;
    tracing::info!(
        objects = outcomes.len(),
        rows = masked,
        "second sweep: erased what was written after discovery"
    );
    Ok(())
}

/// Reads rewritten feature and task rows again by key, for the files their
/// columns name now.
async fn reread(ctx: &Context, rows: &[ManifestRow], findings: &mut Findings) -> Result<(), Error> {
    let keys_by_table = ManifestRow::keys_by_table(rows);
    for feature in &ctx.plan.features {
        let FeatureTables::Present(plan) = &feature.tables else {
            continue;
        };
        if let Some(keys) = keys_by_table.get(plan.table.as_str()) {
            let start = plan.key.columns.len() + plan.value_columns.len();
            let found = service::rows_by_key(
                &ctx.store,
                &plan.by_key_sql,
                &plan.key,
                ctx.plan.dialect,
                keys,
            )
            .await?;
            read_rows(
                ctx,
                &plan.table,
                &plan.key,
                start,
                &plan.references,
                found,
                findings,
            )
            .await?;
        }
        for task in &plan.tasks {
            if let Some(keys) = keys_by_table.get(task.table.as_str()) {
                let start = task.key.columns.len();
                let found = service::rows_by_key(
                    &ctx.store,
                    &task.by_key_sql,
                    &task.key,
                    ctx.plan.dialect,
                    keys,
                )
                .await?;
                read_rows(
                    ctx,
                    &task.table,
                    &task.key,
                    start,
                    &task.references,
                    found,
                    findings,
                )
                .await?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn read_rows(
    ctx: &Context,
    table: &str,
    key: &crate::catalog::keys::RowKey,
    start: usize,
    references: &[crate::catalog::ReferenceSource],
    rows: Vec<service::TextRow>,
    findings: &mut Findings,
) -> Result<(), Error> {
    for row in rows {
        let values: Option<Vec<String>> = row[..key.columns.len()].iter().cloned().collect();
        let Some(values) = values else { continue };
        let row_id = key.encode(values);
        let place = Place {
            table,
            row_id: &row_id,
        };
        for (index, source) in references.iter().enumerate() {
            if let Some(text) = &row[start + index] {
                column_refs::read_column(ctx, source, text, place, findings).await?;
            }
        }
    }
    Ok(())
}

/// How many sweeps ran since the request was last retried by an operator.
async fn sweeps_since_retry(ctx: &Context, lease: &Lease) -> Result<usize, Error> {
    let events = events::of_request(&ctx.store, lease.request_id).await?;
    let since = events
        .iter()
        .rposition(|e| e.kind == EventKind::Retried)
        .map(|at| at + 1)
        .unwrap_or(0);
    Ok(events[since..]
        .iter()
        .filter(|e| e.kind == EventKind::SecondSweep)
        .count())
}
