//! One request: where it stands, its timeline (phases with durations),
//! attempts, lease, last error, anomalies and event log; retry and cancel
//! for the `operate` role; its destruction record for the `audit` role.

use std::fmt::Write as _;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::html::{esc, page, progress, state_badge, took};
use super::labels::Lang;
use super::{CsrfForm, PageSession};
use crate::config::Role;
use crate::error::Error;
use crate::report::DestructionRecord;
use crate::server::{AppState, Change};
use crate::status::RequestStatus;
use crate::store::events;
use crate::workflow::state::Phase;

/// Events shown, the latest.
const EVENTS_SHOWN: usize = 200;

/// The request, if this session may see it (a `submit` token: only its own).
async fn visible(
    state: &AppState,
    lang: Lang,
    session: &PageSession,
    id: &str,
) -> Result<RequestStatus, Response> {
    let not_found = || session.refuse(lang, StatusCode::NOT_FOUND, lang.text().not_found);
    let id = Uuid::try_parse(id).map_err(|_| not_found())?;
    let status = state
        .engine
        .status(id)
        .await
        .map_err(|err| session.failure(lang, err, "rendering a request page"))?;
    if session.role() == Role::Submit
        && status.record.submitted_by.as_deref() != Some(&session.session.caller.name)
    {
        return Err(not_found());
    }
    Ok(status)
}

pub async fn request(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    Path(id): Path<String>,
) -> Response {
    match render(&state, lang, &session, &id, None).await {
        Ok(html) => html.into_response(),
        Err(response) => response,
    }
}

async fn render(
    state: &AppState,
    lang: Lang,
    session: &PageSession,
    id: &str,
    notice: Option<&str>,
) -> Result<Html<String>, Response> {
    let t = lang.text();
    let times = state.times;
    let status = visible(state, lang, session, id).await?;
    let r = &status.record;
    let mut body = String::new();
    if let Some(notice) = notice {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">{}</p>",
            esc(notice)
        );
    }
    let lease = match (&r.lease_owner, r.lease_expires_at) {
        (Some(owner), expires) => format!("{} ({})", esc(owner), times.at(expires)),
        _ => t.no_lease.to_owned(),
    };
    let optional = |value: &Option<String>| value.as_deref().map_or("-".to_owned(), esc);
    let _ = write!(
        body,
        "<dl id=\"summary\"><dt>{}</dt><dd><code>{}</code></dd><dt>{}</dt><dd id=\"state\">{}</dd>\
         <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd id=\"progress\">{}</dd>\
         <dt>{}</dt><dd class=\"objects-deleted\">{} / {}</dd><dt>{}</dt><dd class=\"rows-masked\">{} / {}</dd>\
         <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd class=\"error\">{}</dd>\
         <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>",
        t.request,
        r.id,
        t.state,
        state_badge(lang, r),
        t.phase,
        r.state.phase().map_or("-", |p| lang.phase_name(p)),
        t.progress,
        progress(lang, r),
        t.objects_deleted,
        r.objects_deleted,
        r.objects_found,
        t.rows_masked,
        r.rows_masked,
        r.rows_found,
        t.attempts,
        r.attempts,
        t.next_attempt,
        times.at(Some(r.next_attempt_at)),
        t.lease,
        lease,
        t.last_error,
        optional(&r.last_error),
        t.due_by,
        times.at(r.due_by),
        t.external_ref,
        optional(&r.external_ref),
        t.idempotency_key,
        optional(&r.idempotency_key),
        t.submitted_by,
        optional(&r.submitted_by),
    );
    if let Some(target) = &status.coalesced_into {
        let _ = write!(
            body,
            "<dt>{}</dt><dd><a href=\"/requests/{id}\"><code>{id}</code></a></dd>",
            t.coalesced_into,
            id = target.id
        );
    }
    body.push_str("</dl>");

    if session.role() == Role::Operate {
        let csrf = esc(&session.session.csrf);
        if r.state == crate::workflow::state::State::Failed {
            let _ = write!(
                body,
                "<form class=\"inline\" method=\"post\" action=\"/requests/{}/retry\" id=\"retry\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">{}</button></form> ",
                r.id, t.retry
            );
        }
        if r.s3_started_at.is_none() && !r.state.is_terminal() {
            let _ = write!(
                body,
                "<form class=\"inline\" method=\"post\" action=\"/requests/{}/cancel\" id=\"cancel\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">{}</button></form>",
                r.id, t.cancel
            );
        }
    }

    let _ = write!(
        body,
        "<h2>{}</h2><table id=\"timeline\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.timeline, t.phase, t.started, t.finished, t.duration
    );
    let phases = [
        (Phase::FindingTargets, r.started_at, r.targets_found_at),
        (
            Phase::DeletingObjects,
            r.s3_started_at.or(r.targets_found_at),
            r.s3_cleared_at,
        ),
        (Phase::MaskingRows, r.s3_cleared_at, r.db_masked_at),
        (
            Phase::Verifying,
            r.db_masked_at,
            r.finished_at.filter(|_| r.db_masked_at.is_some()),
        ),
    ];
    for (phase, from, to) in phases {
        let _ = write!(
            body,
            "<tr data-phase=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            phase.as_str(),
            lang.phase_name(phase),
            times.at(from),
            times.at(to),
            took(from, to)
        );
    }
    let _ = write!(
        body,
        "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr></table>",
        t.requested_at,
        times.at(Some(r.requested_at)),
        times.at(r.finished_at),
        took(Some(r.requested_at), r.finished_at)
    );

    let _ = write!(
        body,
        "<h2>{} ({})</h2>",
        t.anomalies,
        status.anomalies.len()
    );
    if !status.anomalies.is_empty() {
        body.push_str("<table id=\"anomalies\"><tr><th>kind</th><th>table</th><th>row</th><th>detail</th></tr>");
        for anomaly in &status.anomalies {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&anomaly.kind),
                esc(anomaly.table_name.as_deref().unwrap_or("-")),
                esc(anomaly.row_id.as_deref().unwrap_or("-")),
                esc(&anomaly.detail)
            );
        }
        body.push_str("</table>");
    }

    let _ = write!(body, "<h2>{}</h2>", t.record);
    if session.role() == Role::Audit {
        let record = state
            .engine
            .report(r.id)
            .await
            .map_err(|err| session.failure(lang, err, "rendering a request page"))?;
        record_section(&mut body, lang, &record);
    } else {
        let _ = write!(body, "<p class=\"note\">{}</p>", t.record_hidden);
    }

    let events = events::of_request(state.engine.store(), r.id)
        .await
        .map_err(|err| session.failure(lang, err, "rendering a request page"))?;
    let _ = write!(
        body,
        "<h2>{} ({})</h2><table id=\"events\"><tr><th>at</th><th>kind</th><th>phase</th><th>batch</th><th>worker</th><th>detail</th></tr>",
        t.events,
        events.len()
    );
    for event in events.iter().rev().take(EVENTS_SHOWN) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            times.at(Some(event.at)),
            esc(&event.kind),
            esc(event.phase.as_deref().unwrap_or("")),
            event.batch_no.map_or(String::new(), |n| n.to_string()),
            esc(event.worker.as_deref().unwrap_or("")),
            esc(event.detail.as_deref().unwrap_or(""))
        );
    }
    body.push_str("</table>");
    let refresh = r.state.phase().is_some().then_some(3);
    let heading = format!("{} {}", t.request, &r.id.simple().to_string()[..8]);
    Ok(Html(page(
        lang,
        &heading,
        Some(&session.session),
        &format!("/requests/{}", r.id),
        refresh,
        &body,
    )))
}

fn record_section(body: &mut String, lang: Lang, record: &DestructionRecord) {
    let t = lang.text();
    let _ = write!(
        body,
        "<dl id=\"record\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>\
         <p><a href=\"/requests/{}/record.csv\" id=\"record-csv\">{}</a></p>",
        t.outcome,
        esc(&record.outcome),
        t.verification,
        esc(&record.verification.result),
        record.request_id,
        t.download_csv
    );
    if !record.verification.checks.is_empty() {
        body.push_str("<ul>");
        for check in &record.verification.checks {
            let _ = write!(body, "<li>{}</li>", esc(check));
        }
        body.push_str("</ul>");
    }
    let _ = write!(
        body,
        "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.tables, t.method, t.count
    );
    for table in &record.tables {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&table.table),
            esc(&table.method),
            table.rows
        );
    }
    let _ = write!(
        body,
        "</table><table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.buckets, t.method, t.count
    );
    for bucket in &record.buckets {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&bucket.bucket),
            esc(&bucket.method),
            bucket.objects
        );
    }
    body.push_str("</table>");
}

/// Retry or cancel from the page (`/requests/{id}/retry`, `.../cancel`):
/// the same rules as the CLI and the API; a refusal is shown on the
/// request's page.
pub async fn change(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    Path((id, change)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let change = match change.as_str() {
        "retry" => Change::Retry,
        "cancel" => Change::Cancel,
        _ => return session.refuse(lang, StatusCode::NOT_FOUND, lang.text().not_found),
    };
    if let Err(refusal) = session.require(lang, &[Role::Operate]) {
        return refusal;
    }
    if let Err(refusal) = session.check_csrf(lang, &form.csrf) {
        return refusal;
    }
    let status = match visible(&state, lang, &session, &id).await {
        Ok(status) => status,
        Err(response) => return response,
    };
    let id = status.record.id;
    match change
        .apply(&state.engine, id, &session.session.caller)
        .await
    {
        Ok(_) => Redirect::to(&format!("/requests/{id}")).into_response(),
        Err(Error::Refused { reason, .. }) => {
            let notice = format!("{}: {reason}", lang.text().refused);
            match render(&state, lang, &session, &id.to_string(), Some(&notice)).await {
                Ok(html) => (StatusCode::CONFLICT, html).into_response(),
                Err(response) => response,
            }
        }
        Err(err) => session.failure(lang, err, "changing a request"),
    }
}

/// The record as CSV (`audit`).
pub async fn record_csv(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    Path(id): Path<String>,
) -> Response {
    if let Err(refusal) = session.require(lang, &[Role::Audit]) {
        return refusal;
    }
    let status = match visible(&state, lang, &session, &id).await {
        Ok(status) => status,
        Err(response) => return response,
    };
    match state.engine.report(status.record.id).await {
        Ok(record) => crate::server::api::csv_download(
            crate::report::record_csv(&record),
            &format!("lethe-record-{}.csv", record.request_id),
        ),
        Err(err) => session.failure(lang, err, "building a record"),
    }
}
