//! The queue: requests by state, what needs attention (overdue, failed,
//! and failing: a retry scheduled after an error) first, then what is in progress with its live progress, then what
//! finished lately; the off-peak window and its next opening. It reloads
//! itself every few seconds while anything is in progress.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::{Html, Response};

use super::PageSession;
use super::html::{Times, esc, page, progress, state_badge};
use super::labels::Lang;
use crate::config::Role;
use crate::store::RequestRecord;
use crate::store::requests::ListFilter;
use crate::workflow::state::State as RequestState;

/// Rows per section.
const SECTION_ROWS: i64 = 100;

/// The states of a request in progress, in the workflow's order.
const IN_PROGRESS: [RequestState; 4] = [
    RequestState::Requested,
    RequestState::TargetsFound,
    RequestState::S3Cleared,
    RequestState::DbMasked,
];

pub async fn queue(
    State(state): State<super::AppState>,
    lang: Lang,
    session: PageSession,
) -> Result<Html<String>, Response> {
    let t = lang.text();
    let engine = &state.engine;
    let fail = |err| session.failure(lang, err, "rendering the queue");
    let submitted_by =
        (session.role() == Role::Submit).then(|| session.session.caller.name.clone());
    let filter = |state: Option<RequestState>, limit: i64| ListFilter {
        state,
        limit: Some(limit),
        submitted_by: submitted_by.clone(),
        ..ListFilter::default()
    };
    let mut attention = engine
        .list_overdue(&filter(None, SECTION_ROWS))
        .await
        .map_err(fail)?;
    let mut seen: BTreeSet<_> = attention.iter().map(|r| r.id).collect();
    for failed in engine
        .list(&filter(Some(RequestState::Failed), SECTION_ROWS))
        .await
        .map_err(fail)?
    {
        if seen.insert(failed.id) {
            attention.push(failed);
        }
    }
    // The states are read one after another, in the workflow's order: a
    // request that moves on between two reads is seen again (its later
    // sighting kept), never missed, as it would be read the other way
    // round. Done is read last for the same reason.
    let mut sighted: Vec<RequestRecord> = Vec::new();
    for state in IN_PROGRESS {
        for record in engine
            .list(&filter(Some(state), SECTION_ROWS))
            .await
            .map_err(fail)?
        {
            if seen.contains(&record.id) {
                continue;
            }
            match sighted.iter_mut().find(|r| r.id == record.id) {
                Some(earlier) => *earlier = record,
                None => sighted.push(record),
            }
        }
    }
    // Shown furthest along first.
    sighted.sort_by_key(|record| {
        std::cmp::Reverse(IN_PROGRESS.iter().position(|s| *s == record.state))
    });
    let mut active = Vec::new();
    for record in sighted {
        // Failing for now (its last attempt failed, a retry is
        // scheduled): attention, not routine progress.
        if record.last_error.is_some() {
            attention.push(record);
        } else {
            active.push(record);
        }
    }
    let finished = engine
        .list(&filter(Some(RequestState::Done), 20))
        .await
        .map_err(fail)?;
    let deadline = engine
        .config()
        .overdue_after()
        .map_err(|err| fail(err.into()))?;
    let (by_state, overdue) = engine
        .store()
        .state_counts(engine.clock().now() - deadline)
        .await
        .map_err(fail)?;
    let window = engine.window_state().map_err(fail)?;

    let mut body = String::new();
    let _ = write!(
        body,
        "<p id=\"window\"><strong>{}</strong>: {}</p>",
        t.window,
        window.map_or_else(|| t.window_always_open.to_owned(), |w| esc(&w.to_string()))
    );
    let _ = write!(body, "<h2>{}</h2><table id=\"by-state\"><tr>", t.by_state);
    for (state, _) in &by_state {
        let _ = write!(body, "<th>{}</th>", lang.state_name(*state));
    }
    let _ = write!(body, "<th>{}</th></tr><tr>", t.overdue);
    for (state, count) in &by_state {
        let _ = write!(
            body,
            "<td class=\"num\" data-state=\"{}\">{count}</td>",
            state.as_str()
        );
    }
    let _ = write!(
        body,
        "<td class=\"num\" data-state=\"overdue\">{}</td></tr></table>",
        overdue
    );
    if submitted_by.is_some() {
        let _ = write!(
            body,
            "<p class=\"note\">{} {}</p>",
            t.submitted_by,
            esc(&session.session.caller.name)
        );
    }
    section(
        &mut body,
        lang,
        state.times,
        "attention",
        t.needs_attention,
        &attention,
    );
    section(
        &mut body,
        lang,
        state.times,
        "active",
        t.in_progress,
        &active,
    );
    section(
        &mut body,
        lang,
        state.times,
        "finished",
        t.recently_finished,
        &finished,
    );
    let refresh =
        (!active.is_empty() || attention.iter().any(|r| !r.state.is_terminal())).then_some(3);
    if refresh.is_some() {
        let _ = write!(body, "<p class=\"note\" id=\"live\">{} (3s)</p>", t.live);
    }
    Ok(Html(page(
        lang,
        t.queue,
        Some(&session.session),
        "/",
        refresh,
        &body,
    )))
}

fn section(
    body: &mut String,
    lang: Lang,
    times: Times,
    id: &str,
    heading: &str,
    records: &[RequestRecord],
) {
    let t = lang.text();
    let _ = write!(body, "<h2>{heading}</h2>");
    if records.is_empty() {
        let _ = write!(body, "<p class=\"note\" id=\"{id}-none\">{}</p>", t.nothing);
        return;
    }
    let _ = write!(
        body,
        "<table id=\"{id}\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.request,
        t.state,
        t.phase,
        t.progress,
        t.objects_deleted,
        t.rows_masked,
        t.attempts,
        t.requested_at,
        t.due_by,
        t.last_error
    );
    for record in records {
        let id = record.id;
        let short = &id.simple().to_string()[..8];
        let error = record.last_error.as_deref().unwrap_or("");
        let error: String = error.chars().take(200).collect();
        let _ = write!(
            body,
            "<tr data-request=\"{id}\"><td><a href=\"/requests/{id}\" title=\"{id}\"><code>{short}</code></a></td>\
             <td>{state}</td><td>{phase}</td><td class=\"progress\">{progress}</td>\
             <td class=\"num objects-deleted\">{deleted} / {found}</td>\
             <td class=\"num rows-masked\">{masked} / {rows}</td>\
             <td class=\"num\">{attempts}</td><td>{requested}</td><td>{due}</td><td class=\"error\">{error}</td></tr>",
            state = state_badge(lang, record),
            phase = record.state.phase().map_or("-", |p| lang.phase_name(p)),
            progress = progress(lang, record),
            deleted = record.objects_deleted,
            found = record.objects_found,
            masked = record.rows_masked,
            rows = record.rows_found,
            attempts = record.attempts,
            requested = times.at(Some(record.requested_at)),
            due = times.at(record.due_by),
            error = esc(&error),
        );
    }
    body.push_str("</table>");
}
