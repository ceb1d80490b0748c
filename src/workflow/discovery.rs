//! Requested -> TargetsFound: writing the manifest, one page of client
//! records at a time. [`super::targets`] finds what a page leads to; this
//! phase commits the page's rows, objects and anomalies together with its
//! checkpoint in one transaction, so a crash leaves either the whole batch
//! or none of it. Nothing is deleted here.

use super::state::{Phase, State};
use super::targets::{self, Cursor};
use super::{Checkpoint, Context, Step, advance, batch_started, cursor_value, start_phase};
use crate::error::Error;
use crate::failpoint;
use crate::store::manifest;
use crate::store::requests::checkpoint::{self, Progress};
use crate::store::{Lease, events};

pub async fn step(ctx: &Context, lease: &Lease, subject: &str) -> Result<Step, Error> {
    let checkpoint = Checkpoint::load(&ctx.store, lease.request_id).await?;
    let mut total = checkpoint.batch_total;
    if total.is_none() {
        let batches = targets::count_pages(ctx, subject).await?;
        start_phase(ctx, lease, State::Requested, batches).await?;
        total = Some(batches);
    }
    let cursor: Cursor = checkpoint.cursor()?;
    let page = targets::next_client_page(ctx, subject, cursor).await?;
    if page.rows.is_empty() && page.anomalies.is_empty() {
        return advance(ctx, lease, State::Requested).await;
    }
    let next_cursor = page.cursor;
    let batch = checkpoint.next_batch();
    batch_started(ctx, lease, Phase::FindingTargets, batch).await?;

    let mut findings = targets::find(ctx, subject, &page.rows).await?;
    findings.anomalies.extend(page.anomalies);

    let mut tx = ctx.store.begin().await?;
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
