//! The `lethe` binary as an operator uses it: exit codes, JSON output, and
//! logs that name request ids but never the member's key.
//!
//! PostgreSQL only: the binary's argument handling and output do not depend
//! on the backend; the CLI on SQLite is run by `evidence` and `demo`.

use crate::app::{TestApp, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_status_list_cancel_and_worker_from_the_command_line() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 2, 8).await;
    let member = &loaded.members[0].key;
    let mut logs = String::new();

    let out = app
        .run_lethe(&["submit", member, "--idempotency-key", "ticket-1"])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).lines().next().unwrap().trim().to_owned();
    logs.push_str(&text(&out.stderr));

    let out = app.run_lethe(&["status", &id, "--json"]).await;
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "requested");
    assert_eq!(status["idempotency_key"], "ticket-1");
    assert!(
        !text(&out.stdout).contains(member.as_str()),
        "status never shows the subject key"
    );

    let out = app
        .run_lethe(&["list", "--state", "requested", "--json"])
        .await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let out = app.run_lethe(&["worker", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    logs.push_str(&text(&out.stderr));
    assert!(logs.contains(&id), "logs name the request id");

    let out = app.run_lethe(&["status", &id]).await;
    let shown = text(&out.stdout);
    assert!(shown.contains("state        done"), "{shown}");
    assert!(shown.contains("rows masked"), "{shown}");

    // Refusals and unknown ids have their own exit codes.
    let out = app.run_lethe(&["cancel", &id]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("S3 deletion started"));
    let out = app
        .run_lethe(&["status", &uuid::Uuid::new_v4().to_string()])
        .await;
    assert_eq!(out.status.code(), Some(4));
    let out = app.run_lethe(&["list", "--state", "nonsense"]).await;
    assert_eq!(out.status.code(), Some(2));

    assert!(
        !logs.contains(member.as_str()),
        "logs must never contain the subject key:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_explains_exit_codes_and_commands() {
    let app = TestApp::start().await;
    let out = app.run_lethe(&["--help"]).await;
    let help = text(&out.stdout);
    for needle in [
        "Exit codes",
        "migrate",
        "submit",
        "worker",
        "status",
        "retry",
        "cancel",
        "DATABASE_URL",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_an_unmigrated_database_say_to_migrate() {
    let app = TestApp::start().await;
    sqlx::query("DROP TABLE erasure_record_counts, erasure_events, erasure_anomalies, erasure_manifest_objects, erasure_manifest_rows, erasure_requests")
        .execute(app.pool())
        .await
        .unwrap();
    let out = app.run_lethe(&["list"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("run `lethe migrate`"),
        "{}",
        text(&out.stderr)
    );
    let out = app.run_lethe(&["migrate"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Regression (issue 11): a DATABASE_URL lethe cannot reach made every
/// command wait ten seconds and then say "pool timed out while waiting for
/// an open connection". Now it says what the server said, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_database_url_says_why_at_once() {
    let app = TestApp::start().await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = app
        .lethe_command()
        .env(
            "DATABASE_URL",
            format!("postgres://lethe@127.0.0.1:{port}/service"),
        )
        .args(["list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // A database that does not exist, on a server that does.
    let url = app.database_url.rsplit_once('/').unwrap().0.to_owned() + "/no_such_database";
    let out = app
        .lethe_command()
        .env("DATABASE_URL", url)
        .args(["list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"no_such_database\" does not exist"),
        "{stderr}"
    );
}
