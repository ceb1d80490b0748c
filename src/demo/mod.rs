//! `lethe demo`: a full erasure on this machine with nothing to install and
//! no account anywhere. It creates a SQLite file and starts an S3-protocol
//! server on loopback inside this process (objects as files in a folder),
//! loads the example service, erases three members (one submitted by a
//! plain SQL INSERT) with a worker, and shows what changed.
//!
//! The rule it keeps: the demo runs the production code paths. The store
//! is the SQLite backend behind the same seam as PostgreSQL, S3 is reached
//! through the same aws-sdk-s3 client (endpoint, path-style and keys from
//! the demo's `lethe.toml`), the worker is [`crate::Engine::worker`], and
//! `--crash` kills a real `lethe worker` process with SIGKILL mid-batch.
//! What it prints about the members' rows and objects it reads from the
//! service's tables and the S3 server themselves, not from lethe's records.

pub mod catalog_files;
mod counts;
mod crash;
pub mod folder;
mod progress;
pub mod s3_server;

use std::path::PathBuf;
use std::time::Instant;

use sqlx::Connection;
use uuid::Uuid;

use crate::engine::Engine;
use crate::error::Error;
use crate::example::{self, ExampleSpec, LoadSummary, MemberSummary};
use crate::store::Backed;
use counts::{Footprint, footprint};
use folder::{Folder, PREFERRED_PORT};
use s3_server::S3Server;

/// What `lethe demo` is asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The demo's folder (created; an earlier demo's is replaced).
    pub dir: PathBuf,
    /// Kill the worker mid-batch and resume, showing the checkpoint.
    pub crash: bool,
}

/// The example service's size: enough members for "everyone else" to mean
/// something, small enough to load in seconds.
const MEMBERS: usize = 20;
const REQUESTS_PER_MEMBER: usize = 30;

/// The members erased (1-based), and how each is submitted.
const ERASED: [(usize, Via); 3] = [
    (3, Via::Library("ticket-1001")),
    (5, Via::Library("ticket-1002")),
    (8, Via::Sql),
];

#[derive(Debug, Clone, Copy)]
enum Via {
    /// `Engine::submit`, as `lethe submit` does, with the submitter's
    /// reference (an idempotency key).
    Library(&'static str),
    /// A plain SQL INSERT naming only the member, from a connection of
    /// its own, as the service's own code could do it.
    Sql,
}

/// Runs the demo, printing as it goes.
pub async fn run(options: &DemoOptions) -> Result<(), Error> {
    let started = Instant::now();
    println!(
        "lethe demo: three departed members erased from a service's database and its S3 files,\n\
         on this machine: a SQLite file, an S3-protocol server on loopback, the example service.\n"
    );

    // 1. The demo's folder, S3 server, configuration and database.
    let folder = Folder::new(&options.dir)?;
    folder.prepare()?;
    let server = S3Server::start(&folder.s3(), PREFERRED_PORT, true).await?;
    let config = folder.write_config(server.port)?;
    let engine = Engine::connect(config).await?;
    engine.migrate().await?;
    let objects = engine.objects().await;
    let shown = shown_path(&folder.root);
    println!("[1/6] set up {shown}/");
    println!("      database   {shown}/lethe.sqlite3  (SQLite; lethe's tables migrated into it)");
    println!(
        "      S3         {}  (s3s-fs in this process; buckets are folders in {shown}/s3/)",
        server.endpoint()
    );
    println!("      catalog    {shown}/catalog/  (where the example service keeps member data)");
    println!("      config     {shown}/lethe.toml  (points at all three)\n");

    // 2. The example service.
    let spec = ExampleSpec {
        members: MEMBERS,
        requests_per_member: REQUESTS_PER_MEMBER,
        member_prefix: "member".into(),
        every_feature: false,
    };
    let loaded = example::load(engine.store(), &objects, &spec).await?;
    println!(
        "[2/6] loaded the example service: {} members x {} requests = {} rows in {} tables, \
         {} objects in 2 buckets,\n      plus {} shared objects (samples, style presets, a default \
         avatar) that everyone uses and no erasure may delete.",
        loaded.members.len(),
        REQUESTS_PER_MEMBER,
        loaded.rows,
        example::tables().len(),
        loaded.objects,
        loaded.shared.len()
    );
    println!(
        "      Their history spans the service's eras: the oldest requests in client_old with \
         a lone S3 or\n      CloudFront URL (half of them as JSON text), then client_temp with \
         bucket+key+url, then client\n      with inputFileList; every fifth member left before \
         the migration and is in client_old only.\n"
    );

    let pool = match engine.store().db() {
        Backed::Sqlite(pool) => pool.clone(),
        Backed::Postgres(_) => unreachable!("the demo's database is a SQLite file"),
    };
    let erased: Vec<&MemberSummary> = ERASED.iter().map(|(n, _)| &loaded.members[n - 1]).collect();
    let mut before = Vec::new();
    for member in &erased {
        before.push(footprint(&pool, &objects, member).await?);
    }
    println!("[3/6] before: what the three members to be erased have");
    print_footprints(&erased, &before, &loaded, false);

    // 3. Three submissions.
    println!("\n[4/6] submitting three erasures");
    let mut requests: Vec<(Uuid, String)> = Vec::new();
    for ((_, via), member) in ERASED.iter().zip(&erased) {
        let id = match via {
            Via::Library(reference) => {
                let submission = engine.submit(&member.key, Some(reference)).await?;
                println!(
                    "      {:<13} lethe submit {} --idempotency-key {reference}   -> request {}",
                    member.key, member.key, submission.id
                );
                submission.id
            }
            Via::Sql => {
                let id = submit_by_sql(&folder, &member.key).await?;
                println!(
                    "      {:<13} sqlite3 {shown}/lethe.sqlite3 \"INSERT INTO erasure_requests \
                     (subject_key) VALUES ('{}')\"\n      {:<13} -> request {id} (every other \
                     column has a default: that INSERT is a complete submission)",
                    member.key, member.key, ""
                );
                id
            }
        };
        requests.push((id, member.key.clone()));
    }

    // 4. The worker.
    println!(
        "\n[5/6] running a worker: finding targets (the manifest), deleting objects, masking \
         rows, verifying;\n      batch by batch, each batch ending in a committed checkpoint \
         (what a restart resumes from)"
    );
    if options.crash {
        crash::crash_and_resume(&engine, &folder, &requests).await?;
    } else {
        progress::run_worker_watching(&engine, &requests).await?;
    }

    println!("\n[6/6] status of each (`lethe status <id>`)");
    for (id, member) in &requests {
        let status = engine.status(*id).await?;
        println!("      --- {member}");
        for line in status.to_string().lines() {
            println!("      {line}");
        }
    }
    let mut after = Vec::new();
    for member in &erased {
        after.push(footprint(&pool, &objects, member).await?);
    }
    println!("\n      after: the same counts, read from the tables and the S3 server again");
    print_footprints(&erased, &after, &loaded, true);
    let mut masked = Vec::new();
    for (id, member) in &requests {
        let rows = engine.status(*id).await?.record.rows_masked;
        masked.push(format!("{member} {rows}"));
    }
    println!(
        "      (no feature or task row leads back to them any more: the client rows that led there no \
         longer hold their key)\n      \
         rows masked, per lethe: {} (client, feature and task rows; their catalogued columns \
         set to NULL or {{}})",
        masked.join(", ")
    );
    let others: Vec<&MemberSummary> = loaded
        .members
        .iter()
        .filter(|m| !erased.iter().any(|e| e.key == m.key))
        .collect();
    let other_objects: Vec<_> = others.iter().flat_map(|m| m.objects.clone()).collect();
    let present = counts::existing(&objects, &other_objects).await?;
    let shared = counts::existing(&objects, &loaded.shared).await?;
    println!(
        "      the other {} members: {present} of their {} objects present; shared objects: \
         {shared} of {} present",
        others.len(),
        other_objects.len(),
        loaded.shared.len()
    );

    // Closing the pool checkpoints SQLite's write-ahead log into the file,
    // so lethe.sqlite3 stands alone for whoever opens it next.
    engine.store().close().await;
    server.stop().await;
    println!("\ndone in {:.1} s.", started.elapsed().as_secs_f64());
    print_next_steps(&shown, &requests, &loaded);
    Ok(())
}

/// Serves an earlier demo's S3 folder again, on the port its `lethe.toml`
/// names, until Ctrl-C: for `lethe plan` (which reads S3) after a demo.
pub async fn serve(dir: &std::path::Path) -> Result<(), Error> {
    let folder = Folder::new(dir)?;
    let config = folder.read_config()?;
    let port = config
        .s3
        .endpoint_url
        .as_deref()
        .and_then(|url| url.rsplit(':').next())
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or(PREFERRED_PORT);
    let server = S3Server::start(&folder.s3(), port, false).await?;
    println!(
        "serving {}/s3/ at {} until Ctrl-C; in another terminal:\n  \
         lethe --config {}/lethe.toml plan member-00001",
        shown_path(&folder.root),
        server.endpoint(),
        shown_path(&folder.root)
    );
    tokio::signal::ctrl_c().await.map_err(|source| Error::Io {
        doing: "waiting for Ctrl-C".to_owned(),
        source,
    })?;
    server.stop().await;
    Ok(())
}

/// Submits by a plain SQL INSERT over a connection of its own, and finds
/// the new request's id by the member's key.
async fn submit_by_sql(folder: &Folder, member: &str) -> Result<Uuid, Error> {
    let mut conn = sqlx::SqliteConnection::connect(&folder.database_url()).await?;
    sqlx::query("INSERT INTO erasure_requests (subject_key) VALUES ($1)")
        .bind(member)
        .execute(&mut conn)
        .await?;
    let id: uuid::fmt::Hyphenated = sqlx::query_scalar(
        "SELECT id FROM erasure_requests WHERE subject_key = $1 AND state = 'requested'",
    )
    .bind(member)
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(id.into_uuid())
}

fn print_footprints(
    members: &[&MemberSummary],
    footprints: &[Footprint],
    loaded: &LoadSummary,
    after: bool,
) {
    println!(
        "      {:<13}  {:<36}  {:>17}  {:>13}",
        "member", "client rows holding their key", "feature+task rows", "objects in S3"
    );
    for (member, footprint) in members.iter().zip(footprints) {
        let legacy = if member.legacy_only {
            "   (left before the migration: client_old only)"
        } else {
            ""
        };
        println!(
            "      {:<13}  {:<36}  {:>17}  {:>13}{legacy}",
            member.key,
            footprint.client_split(),
            footprint.child_rows,
            format!("{} of {}", footprint.objects, member.objects.len()),
        );
    }
    if !after {
        let rows: i64 = footprints.iter().map(Footprint::rows).sum();
        println!(
            "      ({rows} rows and {} objects in all; the other {} members and the shared objects \
             must not change)",
            footprints.iter().map(|f| f.objects).sum::<usize>(),
            loaded.members.len() - members.len()
        );
    }
}

fn print_next_steps(shown: &str, requests: &[(Uuid, String)], loaded: &LoadSummary) {
    let (first, first_member) = &requests[0];
    let untouched = loaded
        .members
        .iter()
        .find(|m| !requests.iter().any(|(_, key)| *key == m.key))
        .map(|m| m.key.as_str())
        .unwrap_or("member-00001");
    let config = format!("{shown}/lethe.toml");
    println!(
        "\nWhat to look at, all in {shown}/:\n  \
         lethe.sqlite3   the service's tables and lethe's: erasure_requests (the state machine),\n                  \
         erasure_manifest_rows/_objects (what was meant to go), erasure_events (every claim and\n                  \
         batch), erasure_record_counts (the destruction record), e.g.\n                  \
         sqlite3 {shown}/lethe.sqlite3 \"SELECT kind, phase, batch_no FROM erasure_events LIMIT 20\"\n  \
         s3/             the two buckets as folders: the erased members' files are gone, the others' remain\n  \
         lethe.toml      the configuration the commands below use\n\n\
         Commands to try next (`cargo run --release --` in place of `lethe` if it is not installed):\n  \
         lethe --config {config} list\n  \
         lethe --config {config} status {first}\n  \
         lethe --config {config} status --subject {first_member}   (found by its keyed hash: the raw key is gone)\n  \
         lethe --config {config} report {first} --format csv   (the destruction record)\n  \
         lethe --config {config} explain-ref 'https://d2inputs.cloudfront.net/inputs/{untouched}/000003/a+b.png'\n  \
         lethe demo --serve   then, in another terminal:   lethe --config {config} plan {untouched}\n                       \
         (plan reads S3 too, and the demo's S3 server stopped with the demo)\n  \
         lethe demo --crash   the same, with the worker killed mid-batch and resumed from its checkpoint",
    );
    #[cfg(feature = "serve")]
    println!(
        "  lethe --config {config} serve   the HTTP API and the pages: open http://127.0.0.1:8080/ and
                           sign in with a token written in {config} (an operator's or an auditor's)"
    );
}

/// `lethe-demo` for a folder under the working directory, else the full path.
fn shown_path(root: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| root.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| root.display().to_string())
}
