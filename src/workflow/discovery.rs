//! Requested -> TargetsFound: writing the manifest, one page of client
//! records at a time. [`super::targets`] finds what a page leads to; this
//! phase commits the page's rows, objects and anomalies together with its
//! checkpoint in one transaction ([`super::batch`]), so a crash leaves
//! either the whole batch or none of it. Nothing is deleted here.

use super::Context;
use super::batch::{Committed, PhaseRun, ReadAhead};
use super::findings::Found;
use super::state::{Phase, State};
use super::targets::{self, Cursor, Page};
use crate::error::Error;
use crate::store::requests::checkpoint::Progress;
use crate::store::{Lease, Tx, manifest};

/// Discovery of one member.
pub struct Discovery<'a> {
    pub subject: &'a str,
}

impl PhaseRun for Discovery<'_> {
    type Cursor = Cursor;
    type Work = Page;
    type Effects = Found;
    const FROM: State = State::Requested;
    const PHASE: Phase = Phase::FindingTargets;
    // Reads client and feature rows and asks S3; writes only the manifest,
    // in the batch's commit.
    const READ_AHEAD: ReadAhead = ReadAhead::InputAndWork;

    async fn total(&self, ctx: &Context, _lease: &Lease) -> Result<i32, Error> {
        targets::count_pages(ctx, self.subject).await
    }

    async fn read(
        &self,
        ctx: &Context,
        _lease: &Lease,
        cursor: &Cursor,
    ) -> Result<Option<Page>, Error> {
        let page = targets::next_client_page(ctx, self.subject, cursor.clone()).await?;
        Ok((!page.rows.is_empty() || !page.anomalies.is_empty()).then_some(page))
    }

    fn cursor_after(&self, page: &Page) -> Cursor {
        page.cursor.clone()
    }

    /// The page ran past the last client table: nothing follows it.
    fn is_final(&self, ctx: &Context, page: &Page) -> bool {
        page.cursor.table >= ctx.plan.clients.len()
    }

    async fn act(
        &self,
        ctx: &Context,
        _lease: &Lease,
        _batch: i32,
        page: &Page,
    ) -> Result<Found, Error> {
        let mut findings = targets::find(ctx, self.subject, &page.rows).await?;
        findings.anomalies.extend(page.anomalies.iter().cloned());
        Ok(findings.into_found())
    }

    async fn write(
        &self,
        tx: &mut Tx,
        _ctx: &Context,
        lease: &Lease,
        batch: i32,
        _page: Page,
        findings: Found,
    ) -> Result<Committed, Error> {
        let added = manifest::add(
            tx,
            lease.request_id,
            batch,
            &findings.rows,
            &findings.objects,
            &findings.anomalies,
        )
        .await?;
        Ok(Committed {
            progress: Progress {
                rows_found: added.rows,
                objects_found: added.objects_to_delete,
                objects_retained: added.objects_retained,
                anomalies: added.anomalies,
                ..Progress::default()
            },
            detail: format!(
                "rows {} objects {} retained {} anomalies {}",
                added.rows, added.objects_to_delete, added.objects_retained, added.anomalies
            ),
        })
    }
}
