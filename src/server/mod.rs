//! `lethe serve`: the HTTP API other teams' systems submit erasures through
//! ([`api`], JSON under `/v1`, with `/metrics` and the OpenAPI document),
//! and the pages operators and auditors read in a browser ([`pages`],
//! server-rendered HTML in Korean and English, no scripts, no external
//! assets).
//!
//! Everything but `/healthz` needs a token from `[[server.token]]`: as a
//! bearer token for the API, or through the sign-in form for the pages. It
//! binds to loopback by default; put TLS in front of it with a reverse proxy
//! (nginx, an ALB) before exposing it. It runs alone, or with workers in the
//! same process (`lethe serve --workers N`).

pub mod api;
pub mod auth;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod problem;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::NaiveDate;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::engine::Engine;
use crate::error::Error;
use auth::{Sessions, Tokens};
use problem::Problem;

pub use openapi::document as openapi_document;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub tokens: Arc<Tokens>,
    pub sessions: Arc<Sessions>,
    /// How the pages show times (`server.time_zone`).
    pub times: pages::html::Times,
}

impl AppState {
    /// The state for `engine`, with its configured tokens.
    pub fn new(engine: Engine) -> AppState {
        let settings = &engine.config().server;
        let tokens = Arc::new(Tokens::new(&settings.tokens));
        let sessions = Arc::new(Sessions::new(Duration::from_secs(
            settings.session_minutes * 60,
        )));
        // Validated with the configuration; UTC if it was built without.
        let zone = settings.zone().unwrap_or(chrono_tz::UTC);
        AppState {
            engine,
            tokens,
            sessions,
            times: pages::html::Times(zone),
        }
    }
}

/// Bodies larger than this are refused (a submission is a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// The whole application: API, pages, health.
pub fn router(state: AppState) -> Router {
    let headers = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ];
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .merge(api::routes())
        .merge(pages::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http());
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

/// Serves until `shutdown` is cancelled, then finishes the requests in
/// flight.
pub async fn serve(
    engine: Engine,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let state = AppState::new(engine);
    if state.tokens.is_empty() {
        tracing::warn!(
            "no [[server.token]] configured: every endpoint but /healthz will answer 401 \
             (`lethe token new` makes one)"
        );
    }
    let addr = listener.local_addr().map_err(|source| Error::Io {
        doing: "reading the listening address".into(),
        source,
    })?;
    tracing::info!(%addr, "serving the API at /v1 and the pages at /");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|source| Error::Io {
            doing: "serving HTTP".into(),
            source,
        })
}

/// Whether the database answers: 200 `ok`, or 503. Needs no token and
/// says nothing else.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store().require_schema().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(err) => {
            tracing::warn!(error = %err, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

async fn not_found() -> Problem {
    Problem::not_found("no such endpoint; /v1/openapi.json lists them")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; /v1/openapi.json lists what it takes",
    )
}

/// What an operator may change about a request, from the API or a page:
/// the same rules and refusals as `lethe retry` and `lethe cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Retry,
    Cancel,
}

impl Change {
    /// Applies it, logging who did.
    pub async fn apply(
        self,
        engine: &Engine,
        id: uuid::Uuid,
        by: &auth::Caller,
    ) -> Result<crate::store::RequestRecord, Error> {
        let record = match self {
            Change::Retry => engine.retry(id).await?,
            Change::Cancel => engine.cancel(id).await?,
        };
        tracing::info!(request_id = %id, by = %by.name, change = ?self, "changed over HTTP");
        Ok(record)
    }
}

/// A register's period from its two days, as the API and the pages take it.
pub(crate) fn period(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), Problem> {
    let day = |name: &str, text: &str| {
        crate::report::parse_day(text)
            .map_err(|err| Problem::invalid_query(format!("{name}: {err}")))
    };
    let (from, to) = (day("from", from)?, day("to", to)?);
    if from > to {
        return Err(Problem::invalid_query(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    Ok((from, to))
}
