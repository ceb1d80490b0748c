//! A lethe deployment for one test, zero-to-production style: a fresh,
//! migrated database with the example service's schema (a PostgreSQL
//! database on the throwaway cluster, or a SQLite file in the test's own
//! directory: [`TestApp::start_on`]), its own S3 server with the example
//! buckets, an [`Engine`] wired to both through the same aws-sdk-s3 code
//! path as production, and helpers to run workers in process or as child
//! processes, and to read back what was erased (through
//! [`crate::service`], which reads the service's tables on either backend).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lethe::config::Config;
use lethe::example::{ExampleSpec, LoadSummary, MemberSummary};
use lethe::objects::{Credentials, ObjectStore};
use lethe::status::RequestStatus;
use lethe::store::{Backend, Store};
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

/// The second example service's catalog (`workflows/atelier/`).
pub fn atelier_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/atelier")
}

/// Which example service a test's database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleService {
    /// Shaped like the seed's (`workflows/example`).
    Seed,
    /// Written independently of lethe's assumptions (`workflows/atelier`).
    Atelier,
}

pub struct TestApp {
    /// The PostgreSQL database, or None on SQLite.
    pub db: Option<TestDatabase>,
    /// Where the database is: a PostgreSQL URL, or `sqlite://<dir>/lethe.sqlite3`.
    pub database_url: String,
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
    config.s3.call_retries = 2;
    config.s3.call_retry_backoff_ms = 20;
    config.worker.batch_size = 10;
    config.worker.delete_batch_size = 25;
    config.worker.lease_secs = 3;
    config.worker.poll_interval_ms = Some(100);
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
    /// A migrated PostgreSQL database with the example schema, and an S3
    /// server with the example buckets.
    pub async fn start() -> TestApp {
        TestApp::start_on_with(Backend::Postgres, |_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_on_with(Backend::Postgres, adjust).await
    }

    /// [`TestApp::start`] on either backend.
    pub async fn start_on(backend: Backend) -> TestApp {
        TestApp::start_on_with(backend, |_| {}).await
    }

    pub async fn start_on_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_service(backend, ExampleService::Seed, adjust).await
    }

    /// A deployment whose database holds `service`'s schema (and S3 its
    /// buckets), with that service's catalog.
    pub async fn start_service(
        backend: Backend,
        service: ExampleService,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, database_url) = match backend {
            Backend::Postgres => {
                let db = fresh_database().await;
                let url = db.url.clone();
                (Some(db), url)
            }
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", dir.path().join("lethe.sqlite3").display()),
            ),
        };
        let s3 = TestS3::start().await;
        let mut config = test_config(&database_url, &s3);
        if service == ExampleService::Atelier {
            config.catalog = atelier_catalog();
        }
        adjust(&mut config);
        // The store connects as lethe's binary does (its pool's options),
        // not through the harness's pool.
        let store = Store::connect(&database_url, 10)
            .await
            .expect("connecting to the test database");
        store.migrate().await.expect("migrations apply");
        let credentials =
            Credentials::new(s3.access_key(), s3.secret_key(), None, None, "lethe-tests");
        let objects = ObjectStore::connect_with_credentials(&config.s3, credentials).await;
        match service {
            ExampleService::Seed => {
                lethe::example::create_schema(&store)
                    .await
                    .expect("example schema");
                lethe::example::create_buckets(&objects)
                    .await
                    .expect("example buckets");
            }
            ExampleService::Atelier => {
                lethe::example::atelier::create_schema(&store)
                    .await
                    .expect("atelier schema");
                lethe::example::atelier::create_buckets(&objects)
                    .await
                    .expect("atelier buckets");
            }
        }
        let engine = Engine::with_store(store, config.clone()).with_objects(objects.clone());
        TestApp {
            db,
            database_url,
            s3,
            config,
            engine,
            objects,
            dir,
        }
    }

    /// The PostgreSQL pool, for tests that run on PostgreSQL only (their
    /// module says why). Panics on SQLite: backend-neutral tests read through
    /// [`TestApp::store`] and [`crate::service`].
    pub fn pool(&self) -> &PgPool {
        &self
            .db
            .as_ref()
            .expect("a PostgreSQL-only helper used on SQLite: use app.service() instead")
            .pool
    }

    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// The service's tables and lethe's, read the same way on both backends.
    pub fn service(&self) -> crate::service::Service<'_> {
        crate::service::Service::new(self.store())
    }

    /// A request's events, in order.
    pub async fn events(&self, id: Uuid) -> Vec<Event> {
        lethe::store::events::of_request(self.store(), id)
            .await
            .expect("events")
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
        lethe::example::load(self.store(), &self.objects, &spec)
            .await
            .expect("example data loads")
    }

    /// Submits an erasure of `subject` through the library; its request id.
    pub async fn submit(&self, subject: &str) -> Uuid {
        self.engine.submit(subject, None).await.unwrap().id
    }

    /// Submits an erasure of `subject`, runs a worker until nothing is
    /// claimable, and checks the request is done; its status.
    pub async fn erase_to_done(&self, subject: &str) -> RequestStatus {
        let id = self.submit(subject).await;
        self.run_worker_once().await;
        let status = self.engine.status(id).await.unwrap();
        assert_eq!(
            status.record.state,
            State::Done,
            "{:?}",
            status.record.last_error
        );
        status
    }

    /// Runs an in-process worker until nothing is claimable.
    pub async fn run_worker_once(&self) -> RunSummary {
        run_worker_once(&self.engine).await
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
             call_retries = {call_retries}\ncall_retry_backoff_ms = {call_backoff}\n\
             [worker]\nbatch_size = {batch}\ndelete_batch_size = {delete}\nlease_secs = {lease}\n{poll}\
             concurrency = {concurrency}\nmax_objects_per_sec = {objects_per_sec}\nmax_rows_per_sec = {rows_per_sec}\n\
             pause_between_batches_ms = {pause}\nlock_timeout_ms = {lock_timeout}\nstatement_timeout_ms = {statement_timeout}\n\
             [retry]\nmax_attempts = {max}\ninitial_backoff_ms = {initial}\nmax_backoff_ms = {max_backoff}\n\
             [minimisation]\nsubject_hash_secret = {secret:?}\nmanifest_retention_days = {retention}\n",
            catalog = c.catalog.display().to_string(),
            overdue = c.overdue_after,
            concurrency = c.worker.concurrency,
            objects_per_sec = c.worker.max_objects_per_sec,
            rows_per_sec = c.worker.max_rows_per_sec,
            pause = c.worker.pause_between_batches_ms,
            lock_timeout = c.worker.lock_timeout_ms,
            statement_timeout = c.worker.statement_timeout_ms,
            timeout = c.s3.operation_timeout_secs,
            sdk = c.s3.sdk_max_attempts,
            call_retries = c.s3.call_retries,
            call_backoff = c.s3.call_retry_backoff_ms,
            batch = c.worker.batch_size,
            delete = c.worker.delete_batch_size,
            lease = c.worker.lease_secs,
            poll = c
                .worker
                .poll_interval_ms
                .map(|ms| format!("poll_interval_ms = {ms}\n"))
                .unwrap_or_default(),
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
        for token in &c.server.tokens {
            text.push_str(&format!(
                "[[server.token]]\nname = {:?}\nrole = {:?}\nsha256 = {:?}\n",
                token.name,
                token.role.as_str(),
                token.sha256
            ));
        }
        // Written aside and renamed into place: a child started a moment
        // ago may be reading the file, and must never see it half-written
        // (it did: a worker read a config without its hash secret).
        let path = self.dir.path().join("lethe.toml");
        let partial = self
            .dir
            .path()
            .join(format!("lethe.toml.{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&partial, text).expect("writing the config file");
        std::fs::rename(&partial, &path).expect("moving the config file into place");
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
            .env("DATABASE_URL", &self.database_url)
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
        self.service().snapshot().await
    }

    /// The (table, id) of every row that belongs to a member: client rows
    /// with their key, and the feature and task rows below them.
    pub async fn rows_of(&self, member: &str) -> BTreeSet<(String, String)> {
        self.service().rows_of(member).await
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
            assert!(
                self.service().is_masked(table, id).await,
                "{table} row {id} is not masked"
            );
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

/// An event of a request, as lethe's event log holds it.
pub type Event = lethe::store::events::Event;

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

/// A child process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs an in-process worker of `engine` until nothing is claimable.
pub async fn run_worker_once(engine: &Engine) -> RunSummary {
    engine
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
