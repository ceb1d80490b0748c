//! The operator and auditor pages: the queue, one request, the register,
//! and signing in. Server-rendered HTML (no build step, no scripts, no
//! external assets), in Korean or English ([`labels`]).
//!
//! A browser signs in with an API token and gets a session cookie
//! (HttpOnly, SameSite=Strict); the role is the token's. Every form that
//! changes something (retry, cancel, sign out) carries the session's CSRF
//! token, and is refused without it.

// A page's refusal is the rendered page itself (an axum `Response`),
// returned once per request: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod html;
pub mod labels;
mod queue;
mod register;
mod request;

use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::AppState;
use super::auth::{SESSION_COOKIE, Session, cookie};
use crate::config::Role;
use html::{esc, page};
use labels::Lang;

/// The language cookie's name.
const LANG_COOKIE: &str = "lethe_lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(queue::queue))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_language))
        .route("/requests/{id}", get(request::request))
        .route("/requests/{id}/{change}", post(request::change))
        .route("/requests/{id}/record.csv", get(request::record_csv))
        .route("/register", get(register::register))
        .route("/register.csv", get(register::register_csv))
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Self::Rejection> {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Ok(header(header::COOKIE)
            .and_then(|cookies| cookie(cookies, LANG_COOKIE))
            .and_then(Lang::parse)
            .or_else(|| header(header::ACCEPT_LANGUAGE).and_then(Lang::from_accept_language))
            .unwrap_or(Lang::Ko))
    }
}

/// A signed-in browser; without one, the page redirects to the sign-in form.
pub struct PageSession {
    pub session: Session,
    pub id: String,
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let id = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|cookies| cookie(cookies, SESSION_COOKIE));
        match id.and_then(|id| Some((id, state.sessions.get(id)?))) {
            Some((id, session)) => Ok(PageSession {
                session,
                id: id.to_owned(),
            }),
            None => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |pq| pq.as_str())
                    .to_owned();
                Err(Redirect::to(&format!(
                    "/login?next={}",
                    crate::references::percent::encode_key(&here)
                ))
                .into_response())
            }
        }
    }
}

impl PageSession {
    pub fn role(&self) -> Role {
        self.session.caller.role
    }

    /// A form's CSRF field checked against the session's.
    pub fn check_csrf(&self, lang: Lang, presented: &str) -> Result<(), Response> {
        if self.session.csrf_matches(presented) {
            return Ok(());
        }
        Err(self.refuse(
            lang,
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale: reload the page and try again",
        ))
    }

    /// Refuses (a 403 page) unless the role is one of `roles`.
    pub fn require(&self, lang: Lang, roles: &[Role]) -> Result<(), Response> {
        if roles.contains(&self.role()) {
            return Ok(());
        }
        Err(self.refuse(lang, StatusCode::FORBIDDEN, lang.text().not_allowed))
    }

    /// A page saying only `message`, headed by its status.
    pub fn refuse(&self, lang: Lang, status: StatusCode, message: &str) -> Response {
        message_page(lang, status, Some(&self.session), status.as_str(), message)
    }

    /// The page for an error while `doing` something: 404 for a request
    /// that does not exist, else 500 (the error itself goes to the log).
    pub fn failure(&self, lang: Lang, err: crate::error::Error, doing: &str) -> Response {
        if let crate::error::Error::NotFound(_) = err {
            return self.refuse(lang, StatusCode::NOT_FOUND, lang.text().not_found);
        }
        tracing::error!(error = %err, "{doing}");
        self.refuse(
            lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the database did not answer; the server's log says why",
        )
    }
}

/// A page that only says something (an error, a refusal).
pub fn message_page(
    lang: Lang,
    status: StatusCode,
    session: Option<&Session>,
    heading: &str,
    message: &str,
) -> Response {
    let body = format!("<p class=\"notice\" id=\"message\">{}</p>", esc(message));
    (status, Html(page(lang, heading, session, "/", None, &body))).into_response()
}

/// A local path to go back to: only `/...`, never `//host` or a scheme.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path
        }
        _ => "/",
    }
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

fn login_page(lang: Lang, next: &str, error: bool) -> String {
    let t = lang.text();
    let error = if error {
        format!("<p class=\"error\" id=\"login-error\">{}</p>", t.bad_token)
    } else {
        String::new()
    };
    let body = format!(
        "{error}<p class=\"note\">{help}</p>\
         <form method=\"post\" action=\"/login\" id=\"login\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label>{token} <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" required></label> \
         <button type=\"submit\">{sign_in}</button></form>",
        help = t.sign_in_help,
        next = esc(next),
        token = t.token,
        sign_in = t.sign_in
    );
    page(lang, t.sign_in, None, "/login", None, &body)
}

async fn login_form(lang: Lang, Query(next): Query<Next>) -> Html<String> {
    Html(login_page(lang, local_path(next.next.as_deref()), false))
}

#[derive(Deserialize)]
struct Login {
    token: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let next = local_path(form.next.as_deref()).to_owned();
    let Some(caller) = state.tokens.authenticate(form.token.trim()) else {
        tracing::info!("page sign-in refused: unknown token");
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_page(lang, &next, true)),
        )
            .into_response();
    };
    tracing::info!(by = %caller.name, role = %caller.role, "signed in to the pages");
    let id = state.sessions.open(caller);
    // Secure when the reverse proxy in front says the browser used TLS.
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        state.sessions.lifetime().as_secs(),
        if secure { "; Secure" } else { "" }
    );
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("a cookie of hex digits"),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    lang: Lang,
    session: PageSession,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = session.check_csrf(lang, &form.csrf) {
        return refusal;
    }
    state.sessions.close(&session.id);
    let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&expired).expect("a fixed cookie"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Back {
    back: Option<String>,
}

/// Sets the language cookie and goes back where the switch was pressed.
async fn switch_language(Path(code): Path<String>, Query(back): Query<Back>) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::Ko);
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
        lang.code()
    );
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("a fixed cookie"),
        )],
        Redirect::to(local_path(back.back.as_deref())),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/requests/x")), "/requests/x");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
