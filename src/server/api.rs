//! The JSON API under `/v1`, and `/metrics`: each handler checks the
//! caller's role, calls the [`Engine`](crate::Engine) exactly as the CLI
//! does, and answers a [`Problem`] for anything it refuses.
//!
//! Who may do what: `submit` submits and reads its own submissions;
//! `operate` does everything but read destruction records; `audit` reads
//! (requests, records, the register, metrics) and changes nothing.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::Caller;
use super::problem::Problem;
use super::{AppState, Change};
use crate::config::Role;
use crate::report::{record_csv, register_csv};
use crate::store::RequestRecord;
use crate::store::requests::{ListCursor, ListFilter, Provenance};
use crate::workflow::state::State as RequestState;

/// The routes of the API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/erasures", post(submit).get(list))
        .route("/v1/erasures/{id}", get(get_one))
        .route("/v1/erasures/{id}/retry", post(retry))
        .route("/v1/erasures/{id}/cancel", post(cancel))
        .route("/v1/erasures/{id}/record", get(record))
        .route("/v1/register", get(register))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(super::metrics::metrics))
}

/// The caller of an API route, from `Authorization: Bearer <token>`.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(Problem::unauthorized)?;
        state
            .tokens
            .authenticate(presented)
            .map(ApiCaller)
            .ok_or_else(Problem::unauthorized)
    }
}

impl ApiCaller {
    /// Refuses (403) unless the caller's role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Caller, Problem> {
        if self.0.is(roles) {
            return Ok(&self.0);
        }
        let allowed = roles
            .iter()
            .map(|role| format!("`{role}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        Err(Problem::forbidden(self.0.role, &allowed))
    }
}

/// A submission.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The member's key in the service. Only ever in a body, never in a URL.
    pub subject_key: String,
    /// Your key for this submission: sending it again returns the same
    /// request instead of a new one (safe retries).
    pub idempotency_key: Option<String>,
    /// Your reference (a ticket, a withdrawal id): named in the destruction
    /// record.
    pub external_ref: Option<String>,
}

/// What a submission produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// This submission's request.
    pub id: Uuid,
    /// Where to follow it.
    pub status_url: String,
    /// The member already had an active erasure: this one is folded into it.
    pub coalesced_into: Option<Uuid>,
    /// The idempotency key named an earlier submission, returned instead.
    pub replayed: bool,
}

const MAX_FIELD_BYTES: usize = 1024;

fn optional_field<'a>(name: &str, value: &'a Option<String>) -> Result<Option<&'a str>, Problem> {
    match value.as_deref() {
        Some(text) if text.trim().is_empty() => Err(Problem::invalid_body(format!(
            "{name} is empty: leave it out, or give a value"
        ))),
        Some(text) if text.len() > MAX_FIELD_BYTES => Err(Problem::invalid_body(format!(
            "{name} is longer than {MAX_FIELD_BYTES} bytes"
        ))),
        other => Ok(other),
    }
}

/// Reads a JSON body; a body that is not one is refused as problem+json.
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with `Content-Type: application/json`",
        )),
        Err(JsonRejection::JsonSyntaxError(err)) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the body is not valid JSON: {}", err.body_text()),
        )),
        Err(err) if err.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body is larger than 64 KiB; a submission is a few hundred bytes",
        )),
        Err(err) => Err(Problem::invalid_body(err.body_text())),
    }
}

/// Reads a query string; one that does not parse is refused as problem+json.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    query
        .map(|Query(value)| value)
        .map_err(|err| Problem::invalid_query(err.body_text()))
}

fn request_id(text: &str) -> Result<Uuid, Problem> {
    Uuid::try_parse(text)
        .map_err(|_| Problem::not_found(format!("no erasure request with id {text:?}")))
}

/// Submit the erasure of one member.
///
/// Returns at once; a worker does the work. The same rules as `lethe
/// submit`: a second submission for a member with an active erasure is
/// folded into it, and a repeated idempotency key returns the first
/// submission.
#[utoipa::path(post, path = "/v1/erasures", tag = "erasures",
    request_body = SubmitBody,
    responses(
        (status = 202, description = "Accepted; follow `status_url`", body = Accepted),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An `audit` token", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing, empty, too long, or unknown; or the idempotency key was used for another member", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn submit(
    State(state): State<AppState>,
    caller: ApiCaller,
    submission: Result<Json<SubmitBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let caller = caller.require(&[Role::Submit, Role::Operate])?;
    let submission = body(submission)?;
    if submission.subject_key.trim().is_empty() {
        return Err(Problem::invalid_body("subject_key is empty"));
    }
    if submission.subject_key.len() > MAX_FIELD_BYTES {
        return Err(Problem::invalid_body(format!(
            "subject_key is longer than {MAX_FIELD_BYTES} bytes"
        )));
    }
    let provenance = Provenance {
        idempotency_key: optional_field("idempotency_key", &submission.idempotency_key)?,
        external_ref: optional_field("external_ref", &submission.external_ref)?,
        submitted_by: Some(&caller.name),
    };
    let accepted = state
        .engine
        .submit_from(&submission.subject_key, provenance)
        .await?;
    let status_url = format!("/v1/erasures/{}", accepted.id);
    let location = HeaderValue::from_str(&status_url).expect("a path is a header value");
    let body = Accepted {
        id: accepted.id,
        status_url,
        coalesced_into: accepted.coalesced_into,
        replayed: accepted.replayed,
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// Reads one request, refusing (404) a `submit` token someone else's.
async fn visible_request(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<RequestRecord, Problem> {
    let id = request_id(id)?;
    let record = state.engine.request(id).await?;
    if caller.role == Role::Submit && record.submitted_by.as_deref() != Some(&caller.name) {
        return Err(Problem::not_found(format!(
            "no erasure request with id {id}"
        )));
    }
    Ok(record)
}

/// One request: its state, progress, attempts, lease and times.
///
/// A `submit` token sees only the requests it submitted. The response
/// never holds the member's key.
#[utoipa::path(get, path = "/v1/erasures/{id}", tag = "erasures",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "The request", body = RequestRecord),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request (or not this `submit` token's)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RequestRecord>, Problem> {
    let caller = caller.require(&[Role::Submit, Role::Operate, Role::Audit])?;
    Ok(Json(visible_request(&state, caller, &id).await?))
}

/// The listing's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only requests in this state.
    pub state: Option<RequestState>,
    /// Only unfinished requests past their deadline (`overdue_after`).
    #[serde(default)]
    pub overdue: bool,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
    /// Requests per page: 1 to 500, default 50.
    pub limit: Option<i64>,
}

/// One page of requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestPage {
    pub items: Vec<RequestRecord>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Requests, newest first, a page at a time.
///
/// A `submit` token sees only the requests it submitted.
#[utoipa::path(get, path = "/v1/erasures", tag = "erasures",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of requests", body = RequestPage),
        (status = 400, description = "A filter does not parse", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    filters: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<RequestPage>, Problem> {
    let caller = caller.require(&[Role::Submit, Role::Operate, Role::Audit])?;
    let filters = query(filters)?;
    let limit = filters.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_query("limit must be between 1 and 500"));
    }
    let after = match filters.cursor.as_deref() {
        Some(text) => Some(ListCursor::decode(text).ok_or_else(|| {
            Problem::invalid_query("cursor is not one this API gave out (`next_cursor`)")
        })?),
        None => None,
    };
    let filter = ListFilter {
        state: filters.state,
        limit: Some(limit + 1),
        submitted_by: (caller.role == Role::Submit).then(|| caller.name.clone()),
        after,
        ..ListFilter::default()
    };
    let mut items = if filters.overdue {
        state.engine.list_overdue(&filter).await?
    } else {
        state.engine.list(&filter).await?
    };
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|last| ListCursor::after(last).encode())
    } else {
        None
    };
    Ok(Json(RequestPage { items, next_cursor }))
}

/// Resume a failed request from its last checkpoint.
#[utoipa::path(post, path = "/v1/erasures/{id}/retry", tag = "erasures",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "Resumed; a worker picks it up", body = RequestRecord),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an `operate` token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused: the request is not failed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RequestRecord>, Problem> {
    change(state, caller, &id, Change::Retry).await
}

/// Cancel a request that has not started deleting objects.
#[utoipa::path(post, path = "/v1/erasures/{id}/cancel", tag = "erasures",
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "Cancelled", body = RequestRecord),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an `operate` token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused: S3 deletion started, or the request is finished", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RequestRecord>, Problem> {
    change(state, caller, &id, Change::Cancel).await
}

/// Retry or cancel, for an `operate` token.
async fn change(
    state: AppState,
    caller: ApiCaller,
    id: &str,
    change: Change,
) -> Result<Json<RequestRecord>, Problem> {
    let caller = caller.require(&[Role::Operate])?;
    let id = request_id(id)?;
    Ok(Json(change.apply(&state.engine, id, caller).await?))
}

/// `json` or `csv`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `json` (default) or `csv`.
    pub format: Option<Format>,
}

/// A destruction record or register: its fields are described in
/// docs/record.md. It holds no member key and no object key.
pub struct RecordDocument;

impl utoipa::PartialSchema for RecordDocument {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .description(Some(
                "A destruction record (lethe destruction record 1); docs/record.md describes it",
            ))
            .into()
    }
}

impl ToSchema for RecordDocument {}

/// A CSV body, as a download named `filename`.
pub(crate) fn csv_download(body: String, filename: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
                    .expect("an ASCII file name"),
            ),
        ],
        body,
    )
        .into_response()
}

/// One request's destruction record (ISMS-P 파기 관리대장 entry).
#[utoipa::path(get, path = "/v1/erasures/{id}/record", tag = "records",
    params(("id" = String, Path, description = "The request id"), FormatQuery),
    responses(
        (status = 200, description = "The record, as JSON or CSV", body = RecordDocument),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an `audit` token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn record(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    format: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Audit])?;
    let format = query(format)?.format.unwrap_or_default();
    let id = request_id(&id)?;
    let record = state.engine.report(id).await?;
    Ok(match format {
        Format::Json => Json(record).into_response(),
        Format::Csv => csv_download(record_csv(&record), &format!("lethe-record-{id}.csv")),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegisterQuery {
    /// First day (YYYY-MM-DD, UTC), inclusive.
    pub from: String,
    /// Last day (YYYY-MM-DD, UTC), inclusive.
    pub to: String,
    /// `json` (default) or `csv`.
    pub format: Option<Format>,
}

/// The register: the destruction records of every request done in a period.
#[utoipa::path(get, path = "/v1/register", tag = "records",
    params(RegisterQuery),
    responses(
        (status = 200, description = "The register, as JSON or CSV", body = RecordDocument),
        (status = 400, description = "A day does not parse, or `from` is after `to`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an `audit` token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(state): State<AppState>,
    caller: ApiCaller,
    period: Result<Query<RegisterQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Audit])?;
    let period = query(period)?;
    let (from, to) = super::period(&period.from, &period.to)?;
    let register = state.engine.register(from, to).await?;
    Ok(match period.format.unwrap_or_default() {
        Format::Json => Json(register).into_response(),
        Format::Csv => csv_download(
            register_csv(&register),
            &format!("lethe-register-{from}-{to}.csv"),
        ),
    })
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn openapi(_caller: ApiCaller) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::openapi::document(),
    )
        .into_response()
}
