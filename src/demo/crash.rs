//! `lethe demo --crash`: the checkpoint at work. A real `lethe worker`
//! process is started with a failpoint that stops it in the middle of
//! deleting objects, batch 2 (after the batch's DeleteObjects calls, before
//! its checkpoint commits), and killed there with SIGKILL. The request stays
//! at "batch 1 of n" with the dead worker's lease; when the lease expires a
//! new worker takes it over and resumes at batch 2. Batch 2 runs twice (S3
//! reports its already-deleted keys as deleted: harmless), batch 1 never.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use uuid::Uuid;

use super::folder::Folder;
use super::progress::{Printer, describe, run_worker_watching, short};
use crate::engine::Engine;
use crate::error::Error;
use crate::store::events::{self, EventKind};
use crate::workflow::state::State;

const FAILPOINT: &str = "deleting_objects:2";

pub async fn crash_and_resume(
    engine: &Engine,
    folder: &Folder,
    requests: &[(Uuid, String)],
) -> Result<(), Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        doing: "finding the lethe executable".to_owned(),
        source,
    })?;
    println!(
        "      starting `lethe worker --once` as a process of its own, set to stop mid-batch \
         (LETHE_FAILPOINT={FAILPOINT})"
    );
    let printer = Printer::start(engine.store().clone(), requests.to_vec());
    let mut child = Command::new(&exe)
        .arg("--config")
        .arg(folder.config_file())
        .args(["worker", "--once", "--ignore-window"])
        .env("LETHE_FAILPOINT", FAILPOINT)
        .env("LETHE_LOG", "warn")
        // The demo's lethe.toml, and nothing from this shell, says where
        // the database and S3 are.
        .env_remove("DATABASE_URL")
        .env_remove("LETHE_CATALOG")
        .env_remove("LETHE_SUBJECT_HASH_SECRET")
        .env_remove("LETHE_S3_FORCE_PATH_STYLE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Io {
            doing: format!("starting {}", exe.display()),
            source,
        })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let marker = format!("failpoint {FAILPOINT} reached");
    let reached = tokio::time::timeout(Duration::from_secs(60), async {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(&marker) {
                return Ok(());
            }
            seen.push(line);
        }
        Err(seen.join("\n"))
    })
    .await;
    match reached {
        Ok(Ok(())) => {}
        Ok(Err(log)) => {
            return Err(Error::Demo(format!(
                "the demo's worker process exited before its failpoint:\n{log}"
            )));
        }
        Err(_) => {
            return Err(Error::Demo(
                "the demo's worker process did not reach its failpoint within 60 s".into(),
            ));
        }
    }
    child.start_kill().map_err(|source| Error::Io {
        doing: "killing the demo's worker".to_owned(),
        source,
    })?;
    let _ = child.wait().await;
    printer.stop().await;

    // The request the dead worker held.
    let mut victim = None;
    for (id, member) in requests {
        let record = engine.store().get(*id).await?;
        if record.state == State::TargetsFound && record.lease_owner.is_some() {
            victim = Some((*id, member.clone(), record));
        }
    }
    let (id, member, record) = victim.ok_or_else(|| {
        Error::Demo("the killed worker held no request in deletion; nothing to show".into())
    })?;
    println!(
        "\n      KILLED the worker (SIGKILL) in the middle of {member}'s deleting objects, batch 2:\n      \
         its DeleteObjects calls had gone out, its checkpoint had not committed. The request \
         now says:\n        {}\n      and the dead worker's lease holds it until {} (worker.lease_secs = 5).",
        describe(&record),
        record
            .lease_expires_at
            .map(|t| t.format("%H:%M:%S%.3f UTC").to_string())
            .unwrap_or_default()
    );
    if let Some(expires) = record.lease_expires_at {
        let wait = (expires - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            + Duration::from_millis(200);
        println!(
            "      waiting {:.1} s for it to expire; then a new worker takes the request over \
             and resumes from the checkpoint\n",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }

    run_worker_watching(engine, requests).await?;

    // What the event log says about the crash, batch by batch.
    let log = events::of_request(engine.store(), id).await?;
    let starts = |batch: i32| {
        log.iter()
            .filter(|e| {
                e.kind == EventKind::BatchStarted
                    && e.phase.as_deref() == Some("deleting_objects")
                    && e.batch_no == Some(batch)
            })
            .count()
    };
    let total = log
        .iter()
        .filter(|e| e.phase.as_deref() == Some("deleting_objects") && e.batch_no.is_some())
        .filter_map(|e| e.batch_no)
        .max()
        .unwrap_or(0);
    let took_over = log.iter().any(|e| e.kind == EventKind::TakenOver);
    println!(
        "\n      the event log of {member} ({}): deleting objects, batch by batch, times started:",
        short(id)
    );
    for batch in 1..=total {
        let n = starts(batch);
        let note = match (batch, n) {
            (1, 1) => "  committed before the kill; not repeated",
            (2, 2) => {
                "  killed mid-batch, then run again after the takeover (its keys were already gone: S3 says deleted)"
            }
            (_, 1) => "  after the takeover",
            _ => "",
        };
        println!("        batch {batch}: {n}x{note}");
    }
    println!(
        "      {}",
        if took_over {
            "a new worker took over the expired lease (event `taken_over`); at most one batch was repeated"
        } else {
            "no takeover was recorded"
        }
    );
    Ok(())
}
