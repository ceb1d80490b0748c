//! The operator and auditor pages in a real browser (headless Chromium):
//! signing in, the queue's progress advancing while a worker erases a
//! member, the request's timeline, the language switch, the CSRF check,
//! signing out, and the auditor's register with its CSV download.
//! Screenshots go to `target/tmp/browser/`.
//!
//! PostgreSQL only: the pages read through the same `Engine` calls the API
//! tests run on both backends; this test is about what a browser sees.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::TestApp;
use crate::harness::browser::Browser;
use crate::harness::http::{AUDIT_TOKEN, OPERATE_TOKEN, SUBMIT_TOKEN, TestServer, with_tokens};
use lethe::WorkerOptions;

/// What the queue page showed for the request at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reading {
    section: String,
    state: String,
    progress: String,
    objects_deleted: String,
    rows_masked: String,
}

async fn read_queue(browser: &mut Browser, id: &str) -> Option<Reading> {
    let script = format!(
        "(() => {{ const row = document.querySelector('tr[data-request=\"{id}\"]'); if (!row) return null; \
           return {{ section: row.closest('table').id, state: row.querySelector('.state').dataset.state, \
                     progress: row.querySelector('.progress').textContent, \
                     objects: row.querySelector('.objects-deleted').textContent, \
                     rows: row.querySelector('.rows-masked').textContent }}; }})()"
    );
    let value = browser.eval(&script).await;
    if value.is_null() {
        return None;
    }
    let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
    Some(Reading {
        section: field("section"),
        state: field("state"),
        progress: field("progress"),
        objects_deleted: field("objects"),
        rows_masked: field("rows"),
    })
}

async fn sign_in(browser: &mut Browser, base: &str, token: &str) {
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser.location().await.starts_with("/login"),
        "a page without a session sends the browser to sign in"
    );
    browser
        .navigate_by(&format!(
            "document.getElementById('token').value = '{token}'; document.getElementById('login').submit();"
        ))
        .await;
    assert_eq!(
        browser.location().await,
        "/",
        "signed in, back to the queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_auditors_follow_an_erasure_in_a_browser() {
    let app = TestApp::start_with(|config| {
        with_tokens(config);
        // Slow enough to watch: 8 objects a second, small batches.
        config.worker.max_objects_per_sec = 8;
        config.worker.delete_batch_size = 4;
        config.worker.batch_size = 3;
        config.worker.pause_between_batches_ms = 150;
        config.server.time_zone = "Asia/Seoul".into();
    })
    .await;
    let loaded = app.load("member", 2, 10).await;
    let member = &loaded.members[0];
    let server = TestServer::start(app.engine.clone()).await;
    let base = server.base.clone();
    let http = server.client();
    let hostile = "<img src=x onerror=\"document.title='pwned'\">티켓-7";
    let submitted = http
        .post(
            "/v1/erasures",
            Some(SUBMIT_TOKEN),
            &json!({"subject_key": member.key, "external_ref": hostile}),
        )
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    let id = submitted.json()["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::launch().await;
    browser.set_accept_language("ko-KR,ko;q=0.9,en;q=0.8").await;
    sign_in(&mut browser, &base, OPERATE_TOKEN).await;
    // Korean, as the browser asks: labels, state names, and times in the
    // configured zone.
    assert_eq!(browser.eval("document.documentElement.lang").await, "ko");
    let row_text = browser
        .eval(&format!(
            "document.querySelector('tr[data-request=\"{id}\"]').textContent"
        ))
        .await;
    let row_text = row_text.as_str().unwrap();
    assert!(
        row_text.contains("접수") && row_text.contains(" KST"),
        "{row_text}"
    );
    let first = read_queue(&mut browser, &id)
        .await
        .expect("the request is on the queue");
    assert_eq!(
        (first.section.as_str(), first.state.as_str()),
        ("active", "requested")
    );
    // The session cookie is HttpOnly: scripts in the page cannot read it.
    let cookies = browser.eval("document.cookie").await;
    assert!(
        !cookies.as_str().unwrap().contains("lethe_session"),
        "{cookies}"
    );

    // A worker erases the member while the browser watches the queue.
    let worker = app
        .engine
        .worker(WorkerOptions {
            once: true,
            ignore_window: true,
            ..WorkerOptions::default()
        })
        .await
        .expect("a worker");
    let worker = tokio::spawn(worker.run());
    let mut readings = vec![first];
    let mut screenshot_during = None;
    let started = Instant::now();
    loop {
        browser.goto(&format!("{base}/")).await;
        let reading = read_queue(&mut browser, &id)
            .await
            .expect("still on the queue");
        let finished = reading.section == "finished";
        let deleting = !reading.objects_deleted.starts_with("0 ");
        if !finished && deleting && screenshot_during.is_none() {
            screenshot_during = Some(browser.screenshot("queue-during-erasure").await);
        }
        if readings.last() != Some(&reading) {
            readings.push(reading);
        }
        if finished {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not done after 2 minutes: {readings:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.await.unwrap().expect("the worker ran");
    let active: Vec<&Reading> = readings.iter().filter(|r| r.section == "active").collect();
    assert!(
        active.len() >= 3,
        "the queue showed the erasure advancing through at least three readings: {readings:#?}"
    );
    let states: Vec<&str> = active.iter().map(|r| r.state.as_str()).collect();
    assert!(
        states.contains(&"targets_found") || states.contains(&"s3_cleared"),
        "{states:?}"
    );
    let deleted_counts: Vec<i64> = readings
        .iter()
        .map(|r| {
            r.objects_deleted
                .split(" / ")
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        deleted_counts.windows(2).all(|pair| pair[0] <= pair[1]),
        "objects deleted never goes back: {deleted_counts:?}"
    );
    let last = readings.last().unwrap();
    assert_eq!(last.state, "done");
    assert_eq!(
        last.objects_deleted,
        format!("{0} / {0}", member.objects.len())
    );
    assert!(
        screenshot_during.is_some(),
        "a reading with objects deleted mid-erasure: {readings:#?}"
    );
    browser.screenshot("queue-after-erasure").await;
    app.assert_objects_gone(member).await;
    app.assert_objects_present(&loaded.members[1]).await;

    // The request's page: timeline, no record for an operator, the hostile
    // reference shown as text.
    browser
        .navigate_by(&format!(
            "document.querySelector('a[href=\"/requests/{id}\"]').click();"
        ))
        .await;
    assert_eq!(browser.location().await, format!("/requests/{id}"));
    assert_eq!(
        browser
            .eval("document.querySelector('#state .state').dataset.state")
            .await,
        "done"
    );
    assert_eq!(
        browser.text("#state .state").await.as_deref(),
        Some("파기 완료")
    );
    let timeline_rows = browser
        .eval("document.querySelectorAll('#timeline tr').length")
        .await;
    assert_eq!(timeline_rows, 6, "a header, four phases and the total");
    let tookcells = browser
        .eval("[...document.querySelectorAll('#timeline td.num')].map(td => td.textContent)")
        .await;
    assert!(
        tookcells.as_array().unwrap().iter().all(|t| t != "-"),
        "every phase has a duration: {tookcells}"
    );
    assert_eq!(
        browser
            .eval("document.querySelectorAll('img').length")
            .await,
        0
    );
    assert_ne!(browser.eval("document.title").await, "pwned");
    let shown = browser.text("#summary").await.unwrap();
    assert!(
        shown.contains(hostile),
        "the reference is shown as written: {shown}"
    );
    assert!(
        browser.text("#record").await.is_none(),
        "operators do not read records"
    );
    browser.screenshot("request-operator").await;

    // English on request; back to Korean.
    browser
        .navigate_by("document.getElementById('lang-switch').click();")
        .await;
    assert_eq!(browser.eval("document.documentElement.lang").await, "en");
    assert_eq!(browser.location().await, format!("/requests/{id}"));
    assert!(browser.text("h2").await.unwrap().starts_with("Timeline"));
    browser
        .navigate_by("document.getElementById('lang-switch').click();")
        .await;
    assert_eq!(browser.eval("document.documentElement.lang").await, "ko");

    // A form without the session's CSRF token is refused, and changes nothing.
    browser
        .navigate_by(&format!(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/requests/{id}/cancel'; \
             const i = document.createElement('input'); i.name = 'csrf'; i.value = 'forged'; f.appendChild(i); \
             document.body.appendChild(f); f.submit();"
        ))
        .await;
    assert_eq!(browser.text("h1").await.as_deref(), Some("403"));
    assert!(browser.text("#message").await.unwrap().contains("CSRF"));
    assert_eq!(app.state_of(id.parse().unwrap()).await, lethe::State::Done);

    // Signing out ends the session.
    browser
        .navigate_by("document.querySelector('form[action=\"/logout\"]').submit();")
        .await;
    assert!(browser.location().await.starts_with("/login"));
    browser.goto(&format!("{base}/register")).await;
    assert!(browser.location().await.starts_with("/login"));

    // The auditor: the record on the request's page, and the register.
    sign_in(&mut browser, &base, AUDIT_TOKEN).await;
    browser.goto(&format!("{base}/requests/{id}")).await;
    assert!(
        browser.text("#record").await.is_some(),
        "auditors read the record"
    );
    browser.screenshot("request-auditor").await;
    browser
        .navigate_by("document.getElementById('nav-register').click();")
        .await;
    assert!(browser.location().await.starts_with("/register"));
    assert_eq!(browser.text("#register-count").await.as_deref(), Some("1"));
    let row = browser
        .eval(&format!(
            "!!document.querySelector('#register tr[data-request=\"{id}\"]')"
        ))
        .await;
    assert_eq!(row, true);
    browser.screenshot("register").await;
    // The page may not fetch (its Content-Security-Policy allows no
    // connections): the register is downloaded as a user would, by a click.
    let downloaded = browser
        .download("document.getElementById('register-csv').click()")
        .await;
    let name = downloaded.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("lethe-register-") && name.ends_with(".csv"),
        "{name}"
    );
    let csv = std::fs::read_to_string(&downloaded).expect("the downloaded register");
    assert!(csv.starts_with("request_id,external_reference,"), "{csv}");
    assert!(csv.contains(&id), "{csv}");
    assert!(!csv.contains(&member.key), "no member key in the register");
    server.stop().await;
}
