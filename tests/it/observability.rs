//! What an operator sees of a run: one log line per batch with its counts
//! and rate, in text and JSON; a live status line only on a terminal; and
//! request ids everywhere, never a member's key.
//!
//! PostgreSQL only: logs and the status line come from the worker, above
//! the store seam.

use std::process::Stdio;

use uuid::Uuid;

use crate::app::{TestApp, text};

async fn batches_committed(app: &TestApp, id: Uuid) -> Vec<(String, i32)> {
    sqlx::query_as(
        "SELECT phase, batch_no FROM erasure_events \
          WHERE request_id = $1 AND kind = 'batch_committed' ORDER BY id",
    )
    .bind(id)
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_full_run_give_counts_and_rates_per_batch_and_never_the_member() {
    // A window that is always open (hourly, two hours long), so its log
    // lines are part of the run too.
    let app = TestApp::start_with(|c| {
        c.windows = vec![lethe::schedule::WindowSpec {
            cron: "0 0 * * * *".into(),
            duration: "2h".into(),
            time_zone: "Asia/Seoul".into(),
        }];
    })
    .await;
    let loaded = app.load("member", 3, 25).await;
    let mut all_logs = String::new();

    for (member, format) in loaded.members.iter().zip(["text", "json"]) {
        let out = app
            .run_lethe(&["--log-format", format, "submit", &member.key])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let id: Uuid = text(&out.stdout).trim().parse().unwrap();
        all_logs.push_str(&text(&out.stderr));

        let out = app
            .run_lethe(&["--log-format", format, "worker", "--once"])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let logs = text(&out.stderr);
        all_logs.push_str(&logs);

        // One line per committed batch, naming the request, with its rate.
        let committed = batches_committed(&app, id).await;
        assert!(committed.len() >= 9, "{committed:?}");
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("batch committed"))
            .collect();
        assert_eq!(lines.len(), committed.len(), "{format}:\n{logs}");
        for (line, (phase, _)) in lines.iter().zip(&committed) {
            assert!(line.contains(&id.to_string()), "{line}");
            let rate = match phase.as_str() {
                "finding_targets" | "masking_rows" => Some("rows_per_sec"),
                "deleting_objects" => Some("objects_per_sec"),
                _ => None,
            };
            if format == "json" {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                let fields = &event["fields"];
                assert_eq!(fields["phase"], phase.as_str(), "{line}");
                assert!(fields["elapsed_ms"].is_u64(), "{line}");
                if let Some(rate) = rate {
                    assert!(fields[rate].is_number(), "{line}");
                }
            } else {
                assert!(line.contains(&format!("phase={phase}")), "{line}");
                if let Some(rate) = rate {
                    assert!(line.contains(&format!("{rate}=")), "{line}");
                }
            }
        }
        if format == "json" {
            for line in logs.lines().filter(|l| l.starts_with('{')) {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            }
        }
        assert!(logs.contains("off-peak window open"), "{logs}");
    }

    assert!(
        !all_logs.contains('\u{1b}'),
        "no terminal control codes off a terminal"
    );
    for member in &loaded.members {
        assert!(
            !all_logs.contains(member.key.as_str()),
            "the logs name member {}:\n{all_logs}",
            member.key
        );
    }
}

/// `script` gives the worker a pseudo-terminal for stderr, as an operator's
/// shell would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_a_terminal_shows_a_live_status_line() {
    // Pauses between batches keep a request in hand long enough for the
    // status line (redrawn every 250 ms) to show it.
    let app = TestApp::start_with(|c| c.worker.pause_between_batches_ms = 300).await;
    let loaded = app.load("member", 2, 25).await;
    let id = app.submit(&loaded.members[0].key).await;
    let command = format!(
        "{} --config {} worker --once",
        env!("CARGO_BIN_EXE_lethe"),
        app.config_file().display()
    );
    let out = tokio::process::Command::new("script")
        .args(["-q", "-e", "-f", "-c", &command, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("TERM", "xterm")
        .envs(app.s3.env())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("running `script` (util-linux)");
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}\n{}", text(&out.stderr));
    let status_line = format!("lethe: {id} ");
    assert!(shown.contains(&status_line), "no status line:\n{shown}");
    assert!(shown.contains("\u{1b}[2K"), "the line is redrawn in place");
    assert!(
        shown.contains("masking_rows batch ") && shown.contains("rows masked/s"),
        "{shown}"
    );
    assert!(!shown.contains(loaded.members[0].key.as_str()));
}
