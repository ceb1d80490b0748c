//! `lethe demo`, run as a user runs it (the built binary, in a directory
//! of its own): with `--crash`, so that one run covers the whole walkthrough
//! and the kill and resume. SQLite by nature; it starts its own S3 server.

use std::process::Stdio;

use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_erases_three_members_survives_a_kill_and_leaves_its_files() {
    let cwd = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lethe"));
        command
            .args(args)
            .current_dir(cwd.path())
            .env_remove("DATABASE_URL")
            .env_remove("LETHE_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    };
    let out = run(&["demo", "--crash"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "INSERT INTO erasure_requests (subject_key) VALUES ('member-00008')",
        "KILLED the worker (SIGKILL)",
        "batch 1: 1x  committed before the kill; not repeated",
        "batch 2: 2x",
        "worker finished: 3 done, 0 failed",
        "the other 17 members:",
        "lethe --config lethe-demo/lethe.toml status --subject member-00003",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // After: nothing of the three is left, everyone else's is all there.
    let after = stdout.split("after:").nth(1).expect("the after table");
    for member in ["member-00003", "member-00005", "member-00008"] {
        let line = after
            .lines()
            .find(|line| line.contains(member))
            .expect("a line per member");
        assert!(
            line.contains(" 0 = 0 old + 0 temp + 0 current") && line.contains(" 0 of "),
            "{line}"
        );
    }
    let others = after
        .lines()
        .find(|line| line.contains("the other 17 members"))
        .unwrap();
    let counts: Vec<&str> = others
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(counts[1], counts[2], "{others}");
    assert_eq!(counts[3], counts[4], "{others}");

    // The files it leaves, and the commands it suggests, work.
    let dir = cwd.path().join("lethe-demo");
    for file in ["lethe.sqlite3", "lethe.toml", "catalog/catalog.toml", "s3"] {
        assert!(dir.join(file).exists(), "{file}");
    }
    // Regression (issue 11): the config (the hash secret, S3 keys) and the
    // database (personal data) were readable by every user of the machine.
    for file in [
        "lethe.toml",
        "lethe.sqlite3",
        "lethe.sqlite3-wal",
        "lethe.sqlite3-shm",
    ] {
        let path = dir.join(file);
        if file.contains('-') && !path.exists() {
            continue;
        }
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
    let list = run(&["--config", "lethe-demo/lethe.toml", "list", "--json"])
        .output()
        .await
        .unwrap();
    assert!(list.status.success());
    let records: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let states: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "done"]);
    let status = run(&[
        "--config",
        "lethe-demo/lethe.toml",
        "status",
        "--subject",
        "member-00003",
    ])
    .output()
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("kept only as a keyed hash"), "{text}");
}
