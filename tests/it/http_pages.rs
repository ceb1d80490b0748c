//! The pages over plain HTTP, on both backends (the browser test,
//! `browser.rs`, runs on PostgreSQL): signing in and the session cookie's
//! attributes, the queue putting failed and retrying requests first, roles
//! on the pages, CSRF on every form that changes something, the language
//! chosen by `Accept-Language`, and hostile values shown as text.

use crate::app::{TestApp, run_worker_once};
use crate::harness::http::{
    AUDIT_TOKEN, Http, OPERATE_TOKEN, SUBMIT_TOKEN, TestServer, with_tokens,
};
use lethe::State;
use lethe::store::Backend;

/// Signs in with `token`; the session cookie (`lethe_session=...`).
async fn sign_in(http: &Http, token: &str) -> String {
    let reply = http
        .send(
            "POST",
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("token={token}&next=%2F"),
        )
        .await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some("/"));
    let cookie = reply
        .header("set-cookie")
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains("Secure"),
        "no TLS here, so not Secure: {cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

async fn page(http: &Http, path: &str, cookie: &str) -> crate::harness::http::Reply {
    http.send(
        "GET",
        path,
        &[("cookie", cookie), ("accept-language", "en-US,en;q=0.9")],
        "",
    )
    .await
}

/// The CSRF token in a page's forms.
fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF field")
        + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn the_queue_puts_failed_and_retrying_requests_first(backend: Backend) {
    let app = TestApp::start_on_with(backend, with_tokens).await;
    let server = TestServer::start(app.engine.clone()).await;
    let http = server.client();
    let calm = app.submit("member-00001").await;
    let retrying = app.submit("member-00002").await;
    let failed = app.submit("member-00003").await;
    app.service()
        .record_failed_attempt(retrying, "S3 answered 503 <SlowDown>", false)
        .await;
    app.service()
        .record_failed_attempt(failed, "the catalog names a missing table", true)
        .await;
    assert_eq!(app.state_of(failed).await, State::Failed);

    // Without a session: to the sign-in form, remembering where to go.
    let anonymous = http.get("/", None).await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), Some("/login?next=/"));
    let refused = http
        .send(
            "POST",
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept-language", "ko"),
            ],
            "token=wrong",
        )
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("id=\"login-error\""));
    assert!(refused.body.contains("<html lang=\"ko\""));
    assert!(refused.header("set-cookie").is_none());

    let cookie = sign_in(&http, OPERATE_TOKEN).await;
    let queue = page(&http, "/", &cookie).await;
    assert_eq!(queue.status, 200);
    assert!(
        queue.body.contains("<html lang=\"en\""),
        "Accept-Language picks English"
    );
    let section = |id: uuid::Uuid| {
        let at = queue
            .body
            .find(&format!("data-request=\"{id}\""))
            .expect("listed");
        let attention = queue.body.find("<table id=\"attention\"").unwrap();
        let active = queue.body.find("<table id=\"active\"").unwrap();
        if at > active {
            "active"
        } else if at > attention {
            "attention"
        } else {
            "?"
        }
    };
    assert_eq!(section(failed), "attention");
    assert_eq!(section(retrying), "attention");
    assert_eq!(section(calm), "active");
    assert!(
        queue.body.contains("S3 answered 503 &lt;SlowDown&gt;"),
        "errors shown, escaped"
    );
    assert!(
        queue.body.contains("<meta http-equiv=\"refresh\""),
        "live while work is active"
    );
    assert_eq!(queue.header("cache-control"), Some("no-store"));
    assert!(
        queue
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    // Retry from the page: refused without the session's CSRF token, done with it.
    let request_page = page(&http, &format!("/requests/{failed}"), &cookie).await;
    assert!(request_page.body.contains("id=\"retry\""));
    assert!(
        request_page
            .body
            .contains("Destruction records are for the audit role.")
    );
    let csrf = csrf_of(&request_page.body);
    let form = [
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let forged = http
        .send(
            "POST",
            &format!("/requests/{failed}/retry"),
            &form,
            "csrf=forged",
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.state_of(failed).await, State::Failed);
    let retried = http
        .send(
            "POST",
            &format!("/requests/{failed}/retry"),
            &form,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(retried.status, 303, "{}", retried.body);
    assert_eq!(app.state_of(failed).await, State::Requested);
    // Refused by the rules: the page says why, with 409.
    let again = http
        .send(
            "POST",
            &format!("/requests/{failed}/retry"),
            &form,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(
        again.body.contains("only a failed request can be retried"),
        "{}",
        again.body
    );
    let cancelled = http
        .send(
            "POST",
            &format!("/requests/{calm}/cancel"),
            &form,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(cancelled.status, 303);
    assert_eq!(app.state_of(calm).await, State::Cancelled);

    // Another session's CSRF token does not do.
    let other = sign_in(&http, OPERATE_TOKEN).await;
    let other_form = [
        ("cookie", other.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let crossed = http
        .send(
            "POST",
            &format!("/requests/{retrying}/cancel"),
            &other_form,
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(crossed.status, 403);

    // Roles on the pages.
    assert_eq!(page(&http, "/register", &cookie).await.status, 403);
    let auditor = sign_in(&http, AUDIT_TOKEN).await;
    assert_eq!(page(&http, "/register", &auditor).await.status, 200);
    let audit_form = [
        ("cookie", auditor.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let audit_page = page(&http, &format!("/requests/{retrying}"), &auditor).await;
    assert!(
        !audit_page.body.contains("id=\"cancel\""),
        "auditors change nothing"
    );
    let audit_csrf = csrf_of(&audit_page.body);
    let audit_cancel = http
        .send(
            "POST",
            &format!("/requests/{retrying}/cancel"),
            &audit_form,
            &format!("csrf={audit_csrf}"),
        )
        .await;
    assert_eq!(audit_cancel.status, 403);
    assert_ne!(app.state_of(retrying).await, State::Cancelled);
    let submitter = sign_in(&http, SUBMIT_TOKEN).await;
    let own_queue = page(&http, "/", &submitter).await;
    assert!(
        !own_queue.body.contains(&failed.to_string()),
        "a submit token sees only its own"
    );
    assert_eq!(
        page(&http, &format!("/requests/{failed}"), &submitter)
            .await
            .status,
        404
    );

    // Signing out ends the session, with its CSRF token.
    let out = http
        .send("POST", "/logout", &form, &format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(page(&http, "/", &cookie).await.status, 303);
}

/// Regression: the queue read the states furthest along first, so a request
/// that moved on between two of those reads (S3Cleared to DbMasked, say)
/// was in neither and vanished from the page for a render. Read in the
/// workflow's order it is seen at least once in every render.
async fn a_request_moving_on_is_on_every_render_of_the_queue(backend: Backend) {
    let app = TestApp::start_on_with(backend, with_tokens).await;
    let server = TestServer::start(app.engine.clone()).await;
    let http = server.client();
    let cookie = sign_in(&http, OPERATE_TOKEN).await;
    let loaded = app.load("member", 4, 3).await;
    let mut ids = Vec::new();
    for member in &loaded.members {
        ids.push(app.submit(&member.key).await);
    }
    let engine = app.engine.clone();
    let running = tokio::spawn(async move { run_worker_once(&engine).await });
    let mut renders = 0;
    while !running.is_finished() {
        let queue = page(&http, "/", &cookie).await;
        assert_eq!(queue.status, 200);
        for id in &ids {
            assert!(
                queue.body.contains(&format!("data-request=\"{id}\"")),
                "request {id} is missing from render {renders} of the queue"
            );
        }
        renders += 1;
    }
    running.await.expect("the worker ran");
    for id in &ids {
        assert_eq!(app.state_of(*id).await, State::Done);
    }
    assert!(renders > 5, "only {renders} renders while the worker ran");
}

on_both_backends!(
    the_queue_puts_failed_and_retrying_requests_first,
    a_request_moving_on_is_on_every_render_of_the_queue,
);
