//! A lethe deployment for one test, zero-to-production style: a fresh,
//! migrated database with the example service's schema, its own S3 server
//! with the example buckets, an [`Engine`] wired to both through the same
//! aws-sdk-s3 code path as production, and helpers to run workers in
//! process or as child processes, and to read back what was erased.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lethe::config::Config;
use lethe::example::{ExampleSpec, LoadSummary, MemberSummary};
use lethe::objects::{Credentials, ObjectStore};
use lethe::store::Store;
use lethe::worker::{RunSummary, WorkerOptions};
use lethe::{Engine, State};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::harness::{TestDatabase, TestS3, fresh_database};

/// The example catalog shipped in `workflows/`.
pub fn example_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/example")
}

pub struct TestApp {
    pub db: TestDatabase,
    pub s3: TestS3,
    pub config: Config,
    pub engine: Engine,
    pub objects: ObjectStore,
    /// Holds the config file for child processes.
    dir: tempfile::TempDir,
}

/// Small batches, short leases and fast retries, so tests exercise many
/// batches and recover quickly.
pub fn test_config(db_url: &str, s3: &TestS3) -> Config {
    test_config_for(db_url, &s3.endpoint(), s3.region())
}

/// [`test_config`] for any S3 endpoint.
pub fn test_config_for(db_url: &str, endpoint: &str, region: &str) -> Config {
    let mut config = Config {
        database_url: Some(db_url.to_owned()),
        catalog: example_catalog(),
        ..Config::default()
    };
    config.s3.endpoint_url = Some(endpoint.to_owned());
    config.s3.region = Some(region.to_owned());
    config.s3.force_path_style = true;
    config.s3.operation_timeout_secs = 10;
    config.s3.sdk_max_attempts = 2;
    config.worker.batch_size = 10;
    config.worker.delete_batch_size = 25;
    config.worker.lease_secs = 3;
    config.worker.poll_interval_ms = 100;
    // No load limits unless a test is about them: the suite stays fast.
    config.worker.max_objects_per_sec = 0;
    config.worker.max_rows_per_sec = 0;
    config.worker.pause_between_batches_ms = 0;
    config.retry.max_attempts = 8;
    config.retry.initial_backoff_ms = 50;
    config.retry.max_backoff_ms = 400;
    config.minimisation.subject_hash_secret = Some(TEST_HASH_SECRET.to_owned());
    config
}

/// The HMAC secret tests hash member keys with.
pub const TEST_HASH_SECRET: &str = "lethe-tests-subject-hash-secret";

impl TestApp {
    /// A migrated database with the example schema, and an S3 server with
    /// the example buckets.
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let db = fresh_database().await;
        let s3 = TestS3::start().await;
        let mut config = test_config(&db.url, &s3);
        adjust(&mut config);
        let store = Store::from_pool(db.pool.clone());
        store.migrate().await.expect("migrations apply");
        let credentials =
            Credentials::new(s3.access_key(), s3.secret_key(), None, None, "lethe-tests");
        let objects = ObjectStore::connect_with_credentials(&config.s3, credentials).await;
        lethe::example::create_schema(&db.pool)
            .await
            .expect("example schema");
        lethe::example::create_buckets(&objects)
            .await
            .expect("example buckets");
        let engine = Engine::with_store(store, config.clone()).with_objects(objects.clone());
        let dir = tempfile::tempdir().expect("temp dir");
        TestApp {
            db,
            s3,
            config,
            engine,
            objects,
            dir,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Loads `members` members of `requests` requests each.
    pub async fn load(&self, prefix: &str, members: usize, requests: usize) -> LoadSummary {
        self.load_spec(ExampleSpec {
            members,
            requests_per_member: requests,
            member_prefix: prefix.to_owned(),
            every_feature: false,
        })
        .await
    }

    pub async fn load_spec(&self, spec: ExampleSpec) -> LoadSummary {
        lethe::example::load(self.pool(), &self.objects, &spec)
            .await
            .expect("example data loads")
    }

    /// Runs an in-process worker until nothing is claimable.
    pub async fn run_worker_once(&self) -> RunSummary {
        self.engine
            .worker(WorkerOptions {
                once: true,
                ..WorkerOptions::default()
            })
            .await
            .expect("worker starts")
            .run()
            .await
            .expect("worker runs")
    }

    pub async fn state_of(&self, id: Uuid) -> State {
        self.engine.status(id).await.expect("status").record.state
    }

    /// Polls until the request reaches `state`, or panics after `timeout`.
    pub async fn wait_for_state(&self, id: Uuid, state: State, timeout: Duration) {
        let started = Instant::now();
        loop {
            let status = self.engine.status(id).await.expect("status");
            if status.record.state == state {
                return;
            }
            if started.elapsed() > timeout {
                panic!(
                    "request {id} did not reach {state} within {timeout:?}; it is {} (last error: {:?})",
                    status.record.state, status.record.last_error
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes the configuration for child processes and returns its path.
    pub fn config_file(&self) -> PathBuf {
        let c = &self.config;
        let mut text = format!(
            "catalog = {catalog:?}\noverdue_after = {overdue:?}\n\
             [s3]\nforce_path_style = true\noperation_timeout_secs = {timeout}\nsdk_max_attempts = {sdk}\n\
             [worker]\nbatch_size = {batch}\ndelete_batch_size = {delete}\nlease_secs = {lease}\npoll_interval_ms = {poll}\n\
             concurrency = {concurrency}\nmax_objects_per_sec = {objects_per_sec}\nmax_rows_per_sec = {rows_per_sec}\n\
             pause_between_batches_ms = {pause}\n\
             [retry]\nmax_attempts = {max}\ninitial_backoff_ms = {initial}\nmax_backoff_ms = {max_backoff}\n\
             [minimisation]\nsubject_hash_secret = {secret:?}\nmanifest_retention_days = {retention}\n",
            catalog = c.catalog.display().to_string(),
            overdue = c.overdue_after,
            concurrency = c.worker.concurrency,
            objects_per_sec = c.worker.max_objects_per_sec,
            rows_per_sec = c.worker.max_rows_per_sec,
            pause = c.worker.pause_between_batches_ms,
            timeout = c.s3.operation_timeout_secs,
            sdk = c.s3.sdk_max_attempts,
            batch = c.worker.batch_size,
            delete = c.worker.delete_batch_size,
            lease = c.worker.lease_secs,
            poll = c.worker.poll_interval_ms,
            max = c.retry.max_attempts,
            initial = c.retry.initial_backoff_ms,
            max_backoff = c.retry.max_backoff_ms,
            secret = c
                .minimisation
                .subject_hash_secret
                .clone()
                .unwrap_or_default(),
            retention = c.minimisation.manifest_retention_days,
        );
        for window in &c.windows {
            text.push_str(&format!(
                "[[window]]\ncron = {:?}\nduration = {:?}\ntime_zone = {:?}\n",
                window.cron, window.duration, window.time_zone
            ));
        }
        let path = self.dir.path().join("lethe.toml");
        std::fs::write(&path, text).expect("writing the config file");
        path
    }

    /// A `lethe` command reaching this test's database and S3 server the
    /// way an operator's would: config file plus environment.
    pub fn lethe_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lethe"));
        command
            .arg("--config")
            .arg(self.config_file())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("LETHE_LOG", "info")
            .envs(self.s3.env())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs one `lethe` command to completion, capturing its output.
    pub async fn run_lethe(&self, args: &[&str]) -> std::process::Output {
        self.lethe_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .expect("running lethe")
    }

    /// Starts `lethe worker` as a child process; with a failpoint, it stops
    /// mid-batch there.
    pub fn spawn_worker(&self, failpoint: Option<&str>, extra_args: &[&str]) -> Child {
        let mut command = self.lethe_command();
        command
            .arg("worker")
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(spec) = failpoint {
            command.env("LETHE_FAILPOINT", spec);
        }
        command.spawn().expect("spawning lethe worker")
    }

    /// Snapshot of every row of the example tables: (table, id) -> row text.
    pub async fn snapshot(&self) -> BTreeMap<(String, String), String> {
        let mut rows = BTreeMap::new();
        for table in lethe::example::tables() {
            let found: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id::text, t::text FROM {table} t"
            )))
            .fetch_all(self.pool())
            .await
            .expect("snapshot query");
            for (id, text) in found {
                rows.insert((table.clone(), id), text);
            }
        }
        rows
    }

    /// The (table, id) of every row that belongs to a member: client rows
    /// with their key, and the feature and task rows below them.
    pub async fn rows_of(&self, member: &str) -> BTreeSet<(String, String)> {
        let mut rows = BTreeSet::new();
        for client in ["client_old", "client_temp", "client"] {
            let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT id::text FROM {client} WHERE client_key = $1"
            )))
            .bind(member)
            .fetch_all(self.pool())
            .await
            .expect("client rows");
            rows.extend(ids.into_iter().map(|id| (client.to_owned(), id)));
        }
        for feature in lethe::example::features::FEATURES.iter().map(|f| f.stem) {
            let found: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT f.id::text, t.id::text FROM {feature}_feature f \
                   LEFT JOIN {feature}_task t ON t.feature_id = f.id \
                  WHERE f.client_id IN (SELECT id FROM client_old WHERE client_key = $1 \
                                        UNION ALL SELECT id FROM client_temp WHERE client_key = $1 \
                                        UNION ALL SELECT id FROM client WHERE client_key = $1)"
            )))
            .bind(member)
            .fetch_all(self.pool())
            .await
            .expect("feature rows");
            for (feature_id, task_id) in found {
                rows.insert((format!("{feature}_feature"), feature_id));
                rows.insert((format!("{feature}_task"), task_id));
            }
        }
        rows
    }

    /// Asserts a member's objects are all gone.
    pub async fn assert_objects_gone(&self, member: &MemberSummary) {
        for object in &member.objects {
            assert!(
                !self.s3.exists(&object.bucket, &object.key).await,
                "{}'s object {}/{} still exists",
                member.key,
                object.bucket,
                object.key
            );
        }
    }

    /// Asserts a member's objects are all present.
    pub async fn assert_objects_present(&self, member: &MemberSummary) {
        for object in &member.objects {
            assert!(
                self.s3.exists(&object.bucket, &object.key).await,
                "{}'s object {}/{} is missing",
                member.key,
                object.bucket,
                object.key
            );
        }
    }

    /// Asserts every catalogued column of these rows is masked.
    pub async fn assert_rows_masked(&self, rows: &BTreeSet<(String, String)>) {
        assert!(!rows.is_empty(), "no rows to check");
        for (table, id) in rows {
            let check = match table.as_str() {
                "client_old" | "client_temp" | "client" => {
                    "client_key IS NULL AND ip_address IS NULL AND user_agent IS NULL"
                }
                t if t.ends_with("_feature") => {
                    "prompt IS NULL AND option = '{}'::jsonb AND legacy_option IS NULL"
                }
                _ => "result = '{}'::jsonb AND gpu IS NOT NULL",
            };
            let masked: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT {check} FROM {table} WHERE id = $1::text::bigint"
            )))
            .bind(id)
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("reading {table} {id}: {e}"));
            assert!(masked, "{table} row {id} is not masked");
        }
    }
}

/// Reads a child's stderr until a line contains `marker`; returns the lines
/// read (panics with them after `timeout`).
pub async fn wait_for_line(child: &mut Child, marker: &str, timeout: Duration) -> Vec<String> {
    let stderr = child.stderr.as_mut().expect("stderr is piped");
    let mut reader = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, reader.next_line()).await {
            Ok(Ok(Some(line))) => {
                let found = line.contains(marker);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Ok(Ok(None)) => panic!(
                "child exited before printing {marker:?}; stderr:\n{}",
                seen.join("\n")
            ),
            Ok(Err(e)) => panic!("reading child stderr: {e}"),
            Err(_) => panic!(
                "no {marker:?} within {timeout:?}; stderr:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Events of a request, in order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub at: chrono::DateTime<chrono::Utc>,
    pub worker: Option<String>,
    pub lease_epoch: Option<i64>,
    pub kind: String,
    pub phase: Option<String>,
    pub batch_no: Option<i32>,
}

pub async fn events(pool: &PgPool, id: Uuid) -> Vec<Event> {
    sqlx::query_as(
        "SELECT at, worker, lease_epoch, kind, phase, batch_no FROM erasure_events WHERE request_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("events")
}

/// How many batches of `phase` ran more than once (started twice or more).
pub fn repeated_batches(events: &[Event], phase: &str) -> usize {
    let mut starts: BTreeMap<i32, usize> = BTreeMap::new();
    for event in events {
        if event.kind == "batch_started" && event.phase.as_deref() == Some(phase) {
            *starts
                .entry(event.batch_no.unwrap_or_default())
                .or_default() += 1;
        }
    }
    starts.values().map(|n| n - 1).sum()
}
