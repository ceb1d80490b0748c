//! `lethe serve` and `lethe token new` as an operator runs them: the real
//! binary, its config file with [[server.token]], a worker in the same
//! process (`--workers 1`) erasing a member submitted over HTTP, and a
//! graceful stop on SIGTERM.
//!
//! PostgreSQL only: the API itself is tested on both backends
//! (`http_api.rs`); this is about the command.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::{TestApp, text, wait_for_line};
use crate::harness::http::{Http, OPERATE_TOKEN, SUBMIT_TOKEN, with_tokens};
use crate::shutdown::{drain_stderr, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_worker_erases_what_is_submitted_over_http_and_stops_on_sigterm() {
    let app = TestApp::start_with(with_tokens).await;
    let loaded = app.load("member", 2, 3).await;
    let member = &loaded.members[0];
    let mut child = app
        .lethe_command()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--ignore-window",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning lethe serve");
    let lines = wait_for_line(&mut child, "listening on http://", Duration::from_secs(30)).await;
    let stderr = drain_stderr(&mut child);
    let line = lines.last().unwrap();
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split('/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let http = Http::new(&base);
    assert_eq!(http.get("/healthz", None).await.status, 200);

    let submitted = http
        .post(
            "/v1/erasures",
            Some(SUBMIT_TOKEN),
            &json!({"subject_key": member.key}),
        )
        .await;
    assert_eq!(submitted.status, 202, "{}", submitted.body);
    let id = submitted.json()["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let status = http
            .get(&format!("/v1/erasures/{id}"), Some(OPERATE_TOKEN))
            .await
            .json();
        if status["state"] == "done" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not done: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.assert_objects_gone(member).await;
    app.assert_objects_present(&loaded.members[1]).await;

    send(&child, "TERM");
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    let stderr = stderr.await.unwrap();
    assert!(exit.success(), "{exit:?}\n{stderr}");
    assert!(
        !stderr.contains(&member.key),
        "the member's key was logged:\n{stderr}"
    );
    assert!(
        !stderr.contains(SUBMIT_TOKEN),
        "a token was logged:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_new_prints_a_token_and_only_its_hash_for_the_config() {
    let app = TestApp::start().await;
    let made = app
        .run_lethe(&["token", "new", "--name", "support tool", "--role", "submit"])
        .await;
    assert!(made.status.success(), "{}", text(&made.stderr));
    let token = text(&made.stdout).trim().to_owned();
    assert!(token.starts_with("lethe_") && token.len() > 60, "{token}");
    let lines = text(&made.stderr);
    let hash = lethe::config::token_sha256(&token);
    assert!(lines.contains(&format!("sha256 = \"{hash}\"")), "{lines}");
    assert!(lines.contains("name = \"support tool\"") && lines.contains("role = \"submit\""));
    assert!(
        !lines.contains(&token),
        "the config lines hold the hash, not the token"
    );
    let again = app
        .run_lethe(&["token", "new", "--name", "x", "--role", "submit"])
        .await;
    assert_ne!(text(&again.stdout).trim(), token, "every token is new");

    let bad_role = app
        .run_lethe(&["token", "new", "--name", "x", "--role", "admin"])
        .await;
    assert_eq!(bad_role.status.code(), Some(2));
    let bad_name = app
        .run_lethe(&["token", "new", "--name", " ", "--role", "audit"])
        .await;
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(text(&bad_name.stderr).contains("--name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_written_into_the_config_is_refused_with_what_to_do() {
    let app = TestApp::start().await;
    let config = app.config_file();
    let mut contents = std::fs::read_to_string(&config).unwrap();
    contents.push_str(
        "[[server.token]]\nname = \"ops\"\nrole = \"operate\"\nsha256 = \"my-secret-token\"\n",
    );
    std::fs::write(&config, contents).unwrap();
    // Not app.lethe_command(): it writes the file afresh.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("sha256 must be the token's SHA-256"),
        "{stderr}"
    );
    assert!(stderr.contains("lethe token new"), "{stderr}");
}
