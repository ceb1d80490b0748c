//! Errors as HTTP answers: RFC 9457 problem details
//! (`application/problem+json`), with a stable `code` a client can branch
//! on and a `detail` an operator can act on. Internal errors are logged in
//! full and answered without their text (it may name tables or hosts).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// A problem detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` says which problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP status's reason phrase.
    pub title: &'static str,
    pub status: u16,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// A stable name for the problem: `unauthorized`, `forbidden`,
    /// `not_found`, `refused`, `invalid_body`, `invalid_query`,
    /// `method_not_allowed`, `unsupported_media_type`, `too_large`,
    /// `unavailable`, `internal`.
    pub code: &'static str,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            code,
        }
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API token from [[server.token]] as `Authorization: Bearer <token>`",
        )
    }

    pub fn forbidden(role: crate::config::Role, allowed: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a `{role}` token cannot do this; it needs the role {allowed}"),
        )
    }

    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn invalid_body(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", detail)
    }

    pub fn invalid_query(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_query", detail)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        match &err {
            Error::NotFound(id) => Problem::not_found(format!("no erasure request with id {id}")),
            Error::Refused { reason, .. } => {
                Problem::new(StatusCode::CONFLICT, "refused", reason.clone())
            }
            Error::InvalidInput(message) => Problem::invalid_body(message.clone()),
            _ if err.is_transient() => {
                tracing::warn!(error = %err, "answering 503");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is not answering; try again shortly",
                )
            }
            _ => {
                tracing::error!(error = %err, "answering 500");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not do this; its log says why",
                )
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let unavailable = status == StatusCode::SERVICE_UNAVAILABLE;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lethe\""),
            );
        }
        if unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
