//! The register (파기 관리대장): the requests done in a period, with their
//! outcome and counts, and the CSV an auditor files. `audit` only.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;

use super::PageSession;
use super::html::{esc, page};
use super::labels::Lang;
use crate::config::Role;
use crate::server::AppState;
use crate::server::api::csv_download;

#[derive(Deserialize)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// The period asked for; by default the last 30 days.
fn period(
    lang: Lang,
    session: &PageSession,
    asked: &Period,
) -> Result<(NaiveDate, NaiveDate), Response> {
    let today = Utc::now().date_naive();
    let from = asked
        .from
        .clone()
        .unwrap_or_else(|| (today - Days::new(30)).to_string());
    let to = asked.to.clone().unwrap_or_else(|| today.to_string());
    crate::server::period(&from, &to)
        .map_err(|problem| session.refuse(lang, StatusCode::BAD_REQUEST, &problem.detail))
}

async fn load(
    state: &AppState,
    lang: Lang,
    session: &PageSession,
    asked: &Period,
) -> Result<crate::report::Register, Response> {
    session.require(lang, &[Role::Audit])?;
    let (from, to) = period(lang, session, asked)?;
    state
        .engine
        .register(from, to)
        .await
        .map_err(|err| session.failure(lang, err, "building the register"))
}

pub async fn register(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    Query(asked): Query<Period>,
) -> Response {
    let register = match load(&state, lang, &session, &asked).await {
        Ok(register) => register,
        Err(response) => return response,
    };
    let t = lang.text();
    let times = state.times;
    let (from, to) = (register.from, register.to);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"note\">{help}</p>\
         <form method=\"get\" action=\"/register\" id=\"period\">\
         <label>{from_label} <input type=\"date\" name=\"from\" value=\"{from}\"></label> \
         <label>{to_label} <input type=\"date\" name=\"to\" value=\"{to}\"></label> \
         <button type=\"submit\">{show}</button></form>\
         <p><strong id=\"register-count\">{count}</strong> {done} · \
         <a href=\"/register.csv?from={from}&amp;to={to}\" id=\"register-csv\">{csv}</a></p>",
        help = t.register_help,
        from_label = t.from,
        to_label = t.to,
        show = t.show,
        count = register.requests,
        done = t.requests_done,
        csv = t.download_csv,
    );
    let _ = write!(
        body,
        "<table id=\"register\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t.request,
        t.external_ref,
        t.requested_at,
        t.finished,
        t.outcome,
        t.verification,
        t.objects_deleted,
        t.rows_masked
    );
    for record in &register.records {
        let deleted: i64 = record
            .buckets
            .iter()
            .filter(|b| b.method == "deleted")
            .map(|b| b.objects)
            .sum();
        let masked: i64 = record
            .tables
            .iter()
            .filter(|table| table.method == "masked")
            .map(|table| table.rows)
            .sum();
        let _ = write!(
            body,
            "<tr data-request=\"{id}\"><td><a href=\"/requests/{id}\"><code>{short}</code></a></td><td>{reference}</td>\
             <td>{requested}</td><td>{finished}</td><td>{outcome}</td><td>{verification}</td>\
             <td class=\"num\">{deleted}</td><td class=\"num\">{masked}</td></tr>",
            id = record.request_id,
            short = &record.request_id.simple().to_string()[..8],
            reference = esc(record.external_reference.as_deref().unwrap_or("-")),
            requested = times.at(Some(record.requested_at)),
            finished = times.at(record.finished_at),
            outcome = esc(&record.outcome),
            verification = esc(&record.verification.result),
        );
    }
    body.push_str("</table>");
    Html(page(
        lang,
        t.register_title,
        Some(&session.session),
        "/register",
        None,
        &body,
    ))
    .into_response()
}

pub async fn register_csv(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    Query(asked): Query<Period>,
) -> Response {
    match load(&state, lang, &session, &asked).await {
        Ok(register) => csv_download(
            crate::report::register_csv(&register),
            &format!("lethe-register-{}-{}.csv", register.from, register.to),
        ),
        Err(response) => response,
    }
}
