//! `lethe serve`'s JSON API, on both backends: every endpoint, every
//! refusal (401 without a token, 403 for the wrong role, 404, 409, 400 and
//! 422 for bad input, as problem+json), submission through to a verified
//! erasure read back over HTTP, tokens seeing only what their role allows,
//! and no member key in any answer.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::app::TestApp;
use crate::harness::http::{
    AUDIT_TOKEN, Http, OPERATE_TOKEN, SUBMIT_TOKEN, SUPPORT_TOKEN, TestServer, with_tokens,
};
use lethe::State;
use lethe::store::Backend;

async fn start(backend: Backend) -> (TestApp, TestServer, Http) {
    start_with(backend, |_| {}).await
}

async fn start_with(
    backend: Backend,
    adjust: impl FnOnce(&mut lethe::Config),
) -> (TestApp, TestServer, Http) {
    let app = TestApp::start_on_with(backend, |config| {
        with_tokens(config);
        adjust(config);
    })
    .await;
    let server = TestServer::start(app.engine.clone()).await;
    let http = server.client();
    (app, server, http)
}

/// Every path the API has, with the methods a client would use.
fn endpoints(id: Uuid) -> Vec<(&'static str, String)> {
    vec![
        ("POST", "/v1/erasures".to_owned()),
        ("GET", "/v1/erasures".to_owned()),
        ("GET", format!("/v1/erasures/{id}")),
        ("POST", format!("/v1/erasures/{id}/retry")),
        ("POST", format!("/v1/erasures/{id}/cancel")),
        ("GET", format!("/v1/erasures/{id}/record")),
        (
            "GET",
            "/v1/register?from=2026-01-01&to=2026-12-31".to_owned(),
        ),
        ("GET", "/v1/openapi.json".to_owned()),
        ("GET", "/metrics".to_owned()),
    ]
}

async fn every_endpoint_needs_a_token_but_healthz(backend: Backend) {
    let (app, _server, http) = start(backend).await;
    let id = app.submit("member-00001").await;
    let health = http.get("/healthz", None).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    for (method, path) in endpoints(id) {
        let body = r#"{"subject_key":"member-00002"}"#;
        for headers in [
            vec![("content-type", "application/json")],
            vec![
                ("content-type", "application/json"),
                ("authorization", "Bearer not-a-token"),
            ],
            vec![
                ("content-type", "application/json"),
                ("authorization", &format!("Basic {OPERATE_TOKEN}")),
            ],
            vec![
                ("content-type", "application/json"),
                // The hash of a token is not the token.
                (
                    "authorization",
                    &format!("Bearer {}", lethe::config::token_sha256(OPERATE_TOKEN)),
                ),
            ],
        ] {
            let reply = http.send(method, &path, &headers, body).await;
            assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
            assert_eq!(reply.problem_code(), "unauthorized");
            assert!(
                reply
                    .header("www-authenticate")
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    // Nothing was submitted by the refused calls.
    let listed = http.get("/v1/erasures", Some(OPERATE_TOKEN)).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

async fn each_role_is_held_to_what_it_may_do(backend: Backend) {
    let (app, _server, http) = start(backend).await;
    let id = app.submit("member-00001").await;
    let forbidden = [
        (AUDIT_TOKEN, "POST", "/v1/erasures".to_owned()),
        (AUDIT_TOKEN, "POST", format!("/v1/erasures/{id}/retry")),
        (AUDIT_TOKEN, "POST", format!("/v1/erasures/{id}/cancel")),
        (SUBMIT_TOKEN, "POST", format!("/v1/erasures/{id}/retry")),
        (SUBMIT_TOKEN, "POST", format!("/v1/erasures/{id}/cancel")),
        (SUBMIT_TOKEN, "GET", format!("/v1/erasures/{id}/record")),
        (
            SUBMIT_TOKEN,
            "GET",
            "/v1/register?from=2026-01-01&to=2026-01-02".to_owned(),
        ),
        (SUBMIT_TOKEN, "GET", "/metrics".to_owned()),
        (OPERATE_TOKEN, "GET", format!("/v1/erasures/{id}/record")),
        (
            OPERATE_TOKEN,
            "GET",
            "/v1/register?from=2026-01-01&to=2026-01-02".to_owned(),
        ),
    ];
    for (token, method, path) in forbidden {
        let auth = format!("Bearer {token}");
        let reply = http
            .send(
                method,
                &path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                r#"{"subject_key":"member-00002"}"#,
            )
            .await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        assert_eq!(reply.problem_code(), "forbidden");
    }
    // Nothing changed: still one request, still requested.
    assert_eq!(app.state_of(id).await, State::Requested);
    let listed = http.get("/v1/erasures", Some(AUDIT_TOKEN)).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // What each may do, it can.
    assert_eq!(http.get("/metrics", Some(OPERATE_TOKEN)).await.status, 200);
    assert_eq!(http.get("/metrics", Some(AUDIT_TOKEN)).await.status, 200);
    assert_eq!(
        http.get(&format!("/v1/erasures/{id}/record"), Some(AUDIT_TOKEN))
            .await
            .status,
        200
    );
    for token in [SUBMIT_TOKEN, OPERATE_TOKEN, AUDIT_TOKEN] {
        assert_eq!(http.get("/v1/openapi.json", Some(token)).await.status, 200);
    }
}

async fn a_submission_over_http_is_erased_and_read_back(backend: Backend) {
    let (app, _server, http) = start(backend).await;
    let loaded = app.load("member", 3, 4).await;
    let member = &loaded.members[0];
    let other = &loaded.members[1];
    let before = app.rows_of(&other.key).await;

    let reply = http
        .post(
            "/v1/erasures",
            Some(SUBMIT_TOKEN),
            &json!({"subject_key": member.key, "idempotency_key": "withdrawal-1", "external_ref": "TICKET-7"}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let accepted = reply.json();
    let id: Uuid = accepted["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(accepted["status_url"], format!("/v1/erasures/{id}"));
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/erasures/{id}").as_str())
    );
    assert_eq!(accepted["replayed"], false);

    let status = http
        .get(&format!("/v1/erasures/{id}"), Some(SUBMIT_TOKEN))
        .await
        .json();
    assert_eq!(status["state"], "requested");
    assert_eq!(status["submitted_by"], "withdrawal-flow");
    assert_eq!(status["external_ref"], "TICKET-7");

    app.run_worker_once().await;
    app.assert_objects_gone(member).await;
    app.assert_objects_present(other).await;
    assert_eq!(
        app.rows_of(&other.key).await,
        before,
        "another member's rows changed"
    );

    let done = http
        .get(&format!("/v1/erasures/{id}"), Some(SUBMIT_TOKEN))
        .await;
    let done_json = done.json();
    assert_eq!(done_json["state"], "done", "{}", done.body);
    assert_eq!(done_json["objects_deleted"], member.objects.len() as i64);
    assert_eq!(done_json["subject_minimised"], true);

    let record = http
        .get(&format!("/v1/erasures/{id}/record"), Some(AUDIT_TOKEN))
        .await;
    assert_eq!(record.status, 200);
    let record_json = record.json();
    assert_eq!(record_json["request_id"], id.to_string());
    assert_eq!(record_json["external_reference"], "TICKET-7");
    assert_eq!(record_json["verification"]["result"], "passed");
    let csv = http
        .get(
            &format!("/v1/erasures/{id}/record?format=csv"),
            Some(AUDIT_TOKEN),
        )
        .await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    assert!(
        csv.body.starts_with("request_id,external_reference,"),
        "{}",
        csv.body
    );
    assert!(csv.body.contains(&id.to_string()));

    let today = chrono::Utc::now().date_naive();
    let register_path = format!("/v1/register?from={today}&to={today}");
    let register = http.get(&register_path, Some(AUDIT_TOKEN)).await.json();
    assert_eq!(register["requests"], 1);
    assert_eq!(register["records"][0]["request_id"], id.to_string());
    let register_csv = http
        .get(&format!("{register_path}&format=csv"), Some(AUDIT_TOKEN))
        .await;
    assert_eq!(register_csv.status, 200);
    assert!(register_csv.body.contains(&id.to_string()));

    let metrics = http.get("/metrics", Some(OPERATE_TOKEN)).await;
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let metric = |line: &str| {
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix(line)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{}", metrics.body))
    };
    assert_eq!(metric("lethe_requests{state=\"done\"}"), 1.0);
    assert_eq!(metric("lethe_requests{state=\"requested\"}"), 0.0);
    assert_eq!(
        metric("lethe_objects_deleted_total"),
        member.objects.len() as f64
    );
    assert!(metric("lethe_rows_masked_total") > 0.0);
    assert!(metric("lethe_batches_total") >= 4.0);
    assert_eq!(
        metric("lethe_phase_duration_seconds_count{phase=\"verifying\"}"),
        1.0
    );
    assert_eq!(
        metric("lethe_phase_duration_seconds_bucket{phase=\"finding_targets\",le=\"+Inf\"}"),
        1.0
    );

    // No answer holds the member's key after Done.
    for reply in [&done, &record, &csv, &register_csv, &metrics] {
        assert!(!reply.body.contains(&member.key), "{}", reply.body);
    }
    let listed = http.get("/v1/erasures", Some(OPERATE_TOKEN)).await;
    assert!(!listed.body.contains(&member.key));
}

async fn idempotency_and_coalescing_hold_over_http(backend: Backend) {
    let (app, _server, http) = start(backend).await;
    let submit = |body: serde_json::Value| {
        let http = http.clone();
        async move { http.post("/v1/erasures", Some(SUBMIT_TOKEN), &body).await }
    };
    let first = submit(json!({"subject_key": "member-00001", "idempotency_key": "k-1"})).await;
    assert_eq!(first.status, 202);
    let again = submit(json!({"subject_key": "member-00001", "idempotency_key": "k-1"})).await;
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(again.json()["replayed"], true);
    // Another submission for the same member is folded into the first.
    let duplicate = submit(json!({"subject_key": "member-00001", "idempotency_key": "k-2"})).await;
    assert_eq!(duplicate.json()["coalesced_into"], first.json()["id"]);
    // The key named another member's submission: refused, nothing made.
    let misused = submit(json!({"subject_key": "member-00002", "idempotency_key": "k-1"})).await;
    assert_eq!(misused.status, 422, "{}", misused.body);
    assert_eq!(misused.problem_code(), "invalid_body");
    let all = app
        .engine
        .list(&lethe::ListFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "one request and one folded into it");
}

async fn bad_bodies_and_queries_are_refused_with_problems(backend: Backend) {
    let (app, _server, http) = start(backend).await;
    let auth = format!("Bearer {SUBMIT_TOKEN}");
    let json_type = ("content-type", "application/json");
    // Headers, body, the status and problem code expected.
    type Case<'a> = (Vec<(&'a str, &'a str)>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![json_type], "{not json".into(), 400, "invalid_body"),
        (
            vec![("content-type", "text/plain")],
            r#"{"subject_key":"m"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (
            vec![],
            r#"{"subject_key":"m"}"#.into(),
            415,
            "unsupported_media_type",
        ),
        (vec![json_type], "{}".into(), 422, "invalid_body"),
        (
            vec![json_type],
            r#"{"subject_key": 42}"#.into(),
            422,
            "invalid_body",
        ),
        (
            vec![json_type],
            r#"{"subject_key":"m","extra":1}"#.into(),
            422,
            "invalid_body",
        ),
        (
            vec![json_type],
            r#"{"subject_key":"   "}"#.into(),
            422,
            "invalid_body",
        ),
        (
            vec![json_type],
            r#"{"subject_key":"m","idempotency_key":""}"#.into(),
            422,
            "invalid_body",
        ),
        (
            vec![json_type],
            json!({"subject_key": "m".repeat(1025)}).to_string(),
            422,
            "invalid_body",
        ),
        (
            vec![json_type],
            json!({"subject_key": "m", "external_ref": "r".repeat(2000)}).to_string(),
            422,
            "invalid_body",
        ),
    ];
    for (mut headers, body, status, code) in cases {
        headers.push(("authorization", &auth));
        let reply = http.send("POST", "/v1/erasures", &headers, &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.problem_code(), code, "{body}");
    }
    let too_big = json!({"subject_key": "m", "external_ref": "x".repeat(100_000)}).to_string();
    let reply = http
        .send(
            "POST",
            "/v1/erasures",
            &[json_type, ("authorization", &auth)],
            &too_big,
        )
        .await;
    assert_eq!(reply.status, 413);
    assert!(
        app.engine
            .list(&lethe::ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    for query in [
        "state=nonsense",
        "limit=0",
        "limit=501",
        "limit=ten",
        "cursor=not-a-cursor",
        "overdue=maybe",
    ] {
        let reply = http
            .get(&format!("/v1/erasures?{query}"), Some(OPERATE_TOKEN))
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.problem_code(), "invalid_query");
    }
    for query in [
        "from=2026-02-01&to=2026-01-01",
        "from=yesterday&to=2026-01-01",
        "from=2026-01-01",
        "from=2026-01-01&to=2026-01-02&format=pdf",
    ] {
        let reply = http
            .get(&format!("/v1/register?{query}"), Some(AUDIT_TOKEN))
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.problem_code(), "invalid_query");
    }
    let unknown = http.get("/v1/nothing-here", Some(OPERATE_TOKEN)).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.problem_code(), "not_found");
    let wrong_method = http
        .send("DELETE", "/v1/erasures", &[("authorization", &auth)], "")
        .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.problem_code(), "method_not_allowed");
}

async fn missing_requests_and_refused_changes_answer_404_and_409(backend: Backend) {
    let (app, _server, http) = start(backend).await;
    let missing = Uuid::new_v4();
    for path in [
        format!("/v1/erasures/{missing}"),
        "/v1/erasures/not-a-uuid".to_owned(),
        format!("/v1/erasures/{missing}/record"),
    ] {
        let token = if path.ends_with("record") {
            AUDIT_TOKEN
        } else {
            OPERATE_TOKEN
        };
        let reply = http.get(&path, Some(token)).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert_eq!(reply.problem_code(), "not_found");
    }
    for action in ["retry", "cancel"] {
        let reply = http
            .post(
                &format!("/v1/erasures/{missing}/{action}"),
                Some(OPERATE_TOKEN),
                &json!({}),
            )
            .await;
        assert_eq!(reply.status, 404);
    }

    let id = app.submit("member-00001").await;
    // Retrying a request that has not failed is refused.
    let retry = http
        .post(
            &format!("/v1/erasures/{id}/retry"),
            Some(OPERATE_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(retry.status, 409, "{}", retry.body);
    assert_eq!(retry.problem_code(), "refused");
    assert!(
        retry.json()["detail"]
            .as_str()
            .unwrap()
            .contains("only a failed request")
    );
    // Cancelling it before any deletion works, once.
    let cancel = http
        .post(
            &format!("/v1/erasures/{id}/cancel"),
            Some(OPERATE_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(cancel.json()["state"], "cancelled");
    assert_eq!(app.state_of(id).await, State::Cancelled);
    let again = http
        .post(
            &format!("/v1/erasures/{id}/cancel"),
            Some(OPERATE_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.problem_code(), "refused");

    // After S3 deletion started, cancel is refused and the erasure finishes.
    let loaded = app.load("member", 1, 2).await;
    let member = &loaded.members[0];
    let id = app.erase_to_done(&member.key).await.record.id;
    let late = http
        .post(
            &format!("/v1/erasures/{id}/cancel"),
            Some(OPERATE_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(late.status, 409);
    assert!(
        late.json()["detail"]
            .as_str()
            .unwrap()
            .contains("S3 deletion started")
    );
    assert_eq!(app.state_of(id).await, State::Done);
}

async fn submit_tokens_see_only_their_own_submissions(backend: Backend) {
    let (_app, _server, http) = start(backend).await;
    let mut own = BTreeSet::new();
    for n in 0..3 {
        let reply = http
            .post(
                "/v1/erasures",
                Some(SUBMIT_TOKEN),
                &json!({"subject_key": format!("member-0000{n}")}),
            )
            .await;
        own.insert(reply.json()["id"].as_str().unwrap().to_owned());
    }
    let theirs = http
        .post(
            "/v1/erasures",
            Some(SUPPORT_TOKEN),
            &json!({"subject_key": "member-00009"}),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = |reply: crate::harness::http::Reply| -> BTreeSet<String> {
        reply.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(http.get("/v1/erasures", Some(SUBMIT_TOKEN)).await), own);
    assert_eq!(
        ids(http.get("/v1/erasures", Some(SUPPORT_TOKEN)).await),
        BTreeSet::from([theirs.clone()])
    );
    let mut everyone = own.clone();
    everyone.insert(theirs.clone());
    assert_eq!(
        ids(http.get("/v1/erasures", Some(OPERATE_TOKEN)).await),
        everyone
    );
    assert_eq!(
        ids(http.get("/v1/erasures", Some(AUDIT_TOKEN)).await),
        everyone
    );
    // Someone else's request is not found, not forbidden: its existence is not told.
    let peek = http
        .get(&format!("/v1/erasures/{theirs}"), Some(SUBMIT_TOKEN))
        .await;
    assert_eq!(peek.status, 404);
    assert_eq!(peek.problem_code(), "not_found");
    assert_eq!(
        http.get(&format!("/v1/erasures/{theirs}"), Some(SUPPORT_TOKEN))
            .await
            .status,
        200
    );
}

async fn listing_pages_through_every_request_once(backend: Backend) {
    let (app, _server, http) = start_with(backend, |config| {
        config.overdue_after = "1s".into();
    })
    .await;
    let mut submitted = BTreeSet::new();
    for n in 0..7 {
        submitted.insert(app.submit(&format!("member-{n:05}")).await.to_string());
    }
    let cancelled = submitted.iter().next().unwrap().clone();
    app.engine.cancel(cancelled.parse().unwrap()).await.unwrap();

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/v1/erasures?limit=3".to_owned();
    loop {
        let page = http.get(&path, Some(OPERATE_TOKEN)).await.json();
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(
            items
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/erasures?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7, "no request twice: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), submitted);

    let requested = http
        .get(
            "/v1/erasures?state=requested&limit=500",
            Some(OPERATE_TOKEN),
        )
        .await
        .json();
    assert_eq!(requested["items"].as_array().unwrap().len(), 6);
    let cancelled_page = http
        .get("/v1/erasures?state=cancelled", Some(OPERATE_TOKEN))
        .await
        .json();
    assert_eq!(cancelled_page["items"][0]["id"], cancelled);

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let overdue = http
        .get("/v1/erasures?overdue=true", Some(OPERATE_TOKEN))
        .await
        .json();
    let overdue_items = overdue["items"].as_array().unwrap();
    assert_eq!(overdue_items.len(), 6, "the cancelled one is not overdue");
    assert!(overdue_items.iter().all(|item| item["overdue"] == true));
    let metrics = http.get("/metrics", Some(AUDIT_TOKEN)).await.body;
    assert!(
        metrics.contains("\nlethe_requests_overdue 6\n"),
        "{metrics}"
    );
}

async fn the_served_openapi_document_is_the_checked_in_one(backend: Backend) {
    let (_app, _server, http) = start(backend).await;
    let reply = http.get("/v1/openapi.json", Some(AUDIT_TOKEN)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, include_str!("../../docs/openapi.json"));
    let doc = reply.json();
    for path in [
        "/v1/erasures",
        "/v1/erasures/{id}",
        "/v1/erasures/{id}/retry",
        "/v1/erasures/{id}/cancel",
        "/v1/erasures/{id}/record",
        "/v1/register",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

on_both_backends!(
    every_endpoint_needs_a_token_but_healthz,
    each_role_is_held_to_what_it_may_do,
    a_submission_over_http_is_erased_and_read_back,
    idempotency_and_coalescing_hold_over_http,
    bad_bodies_and_queries_are_refused_with_problems,
    missing_requests_and_refused_changes_answer_404_and_409,
    submit_tokens_see_only_their_own_submissions,
    listing_pages_through_every_request_once,
    the_served_openapi_document_is_the_checked_in_one,
);
