//! Configuration: one TOML file, then environment overrides.
//!
//! Precedence, lowest first: built-in defaults, the file (`--config`, else
//! `./lethe.toml` if present), then the environment: `DATABASE_URL`,
//! `LETHE_CATALOG`, `LETHE_S3_FORCE_PATH_STYLE`, `LETHE_SUBJECT_HASH_SECRET`. S3 endpoint, region and
//! credentials come from the standard AWS chain (`AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, instance roles, ...), so
//! lethe runs against AWS or any S3-compatible server without code changes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::schedule::{WindowSpec, Windows, span};
use crate::store::Backend;

mod server;
pub use server::{Role, ServerSettings, TokenSpec, token_sha256};

/// Everything lethe can be told.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The service's PostgreSQL database; lethe's tables live in it too.
    pub database_url: Option<String>,
    /// The catalog directory (e.g. `workflows/example`).
    pub catalog: PathBuf,
    pub s3: S3Settings,
    pub worker: WorkerSettings,
    pub retry: RetrySettings,
    pub minimisation: MinimisationSettings,
    /// Off-peak windows (`[[window]]`): workers claim and advance work only
    /// while one is open. None configured: always open.
    #[serde(rename = "window")]
    pub windows: Vec<WindowSpec>,
    /// A request not done this long after submission is flagged overdue
    /// (`5d`: the usual reading of PIPA's "without delay").
    pub overdue_after: String,
    /// `lethe serve`: its address and API tokens.
    pub server: ServerSettings,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// An S3-compatible endpoint (e.g. `http://127.0.0.1:9000`). Unset, the
    /// AWS chain decides (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, or AWS).
    pub endpoint_url: Option<String>,
    /// The region to sign for. Unset, the AWS chain decides (`AWS_REGION`,
    /// profile), falling back to us-east-1.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most
    /// S3-compatible servers; AWS itself wants virtual-hosted (false).
    pub force_path_style: bool,
    /// Upper bound for one S3 call, retries included, in seconds.
    pub operation_timeout_secs: u64,
    /// Attempts per S3 call inside the SDK (its standard retry with
    /// jittered backoff, without the SDK's retry quota).
    pub sdk_max_attempts: u32,
    /// Times lethe sends a call again, within the batch, after the SDK gave
    /// up on it with a transient error (only that call: the batch's other
    /// calls are not repeated). lethe's durable retry of the request comes
    /// after these.
    pub call_retries: u32,
    /// Backoff before lethe's first re-send of a failed call; it doubles
    /// per re-send (with jitter).
    pub call_retry_backoff_ms: u64,
    /// S3 calls one request keeps in flight at once: DeleteObjects of one
    /// batch, read-backs, the `+` existence checks. A call costs 10-30 ms on
    /// AWS whatever its size, so a batch's calls are sent together, not one
    /// after another. The load limits still bound the rate. 64 by
    /// default: at 15 ms a call, verification's read-backs of the seed's
    /// largest member took 2.9 s with 32 and 1.7 s with 64; deletion's were
    /// bound by the server, not this. 64 HeadObject calls of 15 ms are
    /// about 4,300 a second, under S3's 5,500 reads a second per prefix.
    pub concurrency: usize,
    /// Static keys for an S3-compatible server with fixed credentials (the
    /// demo's own server, MinIO). Both set: used instead of the AWS
    /// credential chain. Prefer the chain (roles, profiles) for AWS.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Client records (member requests) per discovery and masking batch.
    /// A discovery batch costs a statement or two per feature table however
    /// few its rows, so the default is large enough for those to be a small
    /// share of a large member's erasure (1,500: the seed's largest member
    /// is found in 18 batches, not 52, and 30% sooner), and small enough
    /// that a masking batch's transaction stays short.
    pub batch_size: u32,
    /// Objects per S3 deletion batch, sent as DeleteObjects calls of at
    /// most 1,000 keys, `s3.concurrency` of them at a time; at most 100,000.
    /// Under an object rate limit a batch is capped at five seconds' worth,
    /// so that its wait for the allowance stays short.
    pub delete_batch_size: u32,
    /// How long a claim holds without a heartbeat; the heartbeat renews it
    /// every third of this.
    pub lease_secs: u64,
    /// How often an idle worker looks for work when nothing woke it. Unset:
    /// 5 s on PostgreSQL (NOTIFY wakes workers at once), 1 s on SQLite (no
    /// NOTIFY: a bare INSERT from another process is found by polling).
    pub poll_interval_ms: Option<u64>,
    /// Requests one worker process advances at a time.
    pub concurrency: u32,
    /// A name for this worker in leases and events; default host:pid.
    pub worker_id: Option<String>,
    /// Objects deleted per second by this worker process, all requests
    /// together; 0 is no limit.
    pub max_objects_per_sec: u32,
    /// Rows masked per second by this worker process, all requests
    /// together; 0 is no limit.
    pub max_rows_per_sec: u32,
    /// Rest between one request's batches, so the service's own queries get
    /// the database in between.
    pub pause_between_batches_ms: u64,
    /// How long a masking batch's statement waits for a row lock the service
    /// holds before the batch gives up (and is retried later); 0: no limit.
    /// PostgreSQL's `lock_timeout`, for the batch's transaction only.
    pub lock_timeout_ms: u64,
    /// How long one statement of a masking batch may run before it is
    /// cancelled (and the batch retried later); 0: no limit. PostgreSQL's
    /// `statement_timeout`, for the batch's transaction only.
    pub statement_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Consecutive failed attempts after which a request goes to Failed.
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles per attempt.
    pub initial_backoff_ms: u64,
    /// Backoff ceiling.
    pub max_backoff_ms: u64,
}

/// What lethe keeps about a member after their erasure is done.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinimisationSettings {
    /// The HMAC key that replaces a member's key in lethe's tables by a
    /// keyed hash when their erasure is done. Required by workers. Keep it
    /// (a later submission is matched to earlier ones through it) and keep
    /// it out of the database.
    pub subject_hash_secret: Option<String>,
    /// Days after Done that the per-object and per-row manifest is kept
    /// before it is pruned to counts (the destruction record keeps working).
    pub manifest_retention_days: u32,
}

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Windows(#[from] crate::schedule::ScheduleError),
    #[error("overdue_after: {0}")]
    OverdueAfter(String),
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: None,
            catalog: PathBuf::from("workflows/example"),
            s3: S3Settings::default(),
            worker: WorkerSettings::default(),
            retry: RetrySettings::default(),
            minimisation: MinimisationSettings::default(),
            windows: Vec::new(),
            overdue_after: "5d".into(),
            server: ServerSettings::default(),
        }
    }
}

impl Default for MinimisationSettings {
    fn default() -> Self {
        MinimisationSettings {
            subject_hash_secret: None,
            manifest_retention_days: 30,
        }
    }
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint_url: None,
            region: None,
            force_path_style: false,
            operation_timeout_secs: 60,
            sdk_max_attempts: 3,
            call_retries: 4,
            call_retry_backoff_ms: 1_000,
            concurrency: 64,
            access_key_id: None,
            secret_access_key: None,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch_size: 1500,
            delete_batch_size: 8000,
            lease_secs: 30,
            poll_interval_ms: None,
            concurrency: 1,
            worker_id: None,
            // Gentle by default (see the README): 200 objects/s is a small
            // share of the 3,500 deletes/s S3 serves per prefix, and 1,000
            // rows/s in transactions of one batch, 200 ms apart, leaves the
            // database to the service.
            max_objects_per_sec: 200,
            max_rows_per_sec: 1_000,
            pause_between_batches_ms: 200,
            // A masking batch never waits long on the service: a row the
            // service holds for more than 5 s is tried again later, rather
            // than holding the batch's own locks past a window's close.
            lock_timeout_ms: 5_000,
            statement_timeout_ms: 60_000,
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 8,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
        }
    }
}

impl Config {
    /// Loads the file (if any) and applies environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let default_path = Path::new("lethe.toml");
        let path = match path {
            Some(path) => Some(path),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|err| ConfigError::Parse {
                    path: path.to_owned(),
                    message: err.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies overrides from an environment (a function, so tests need not
    /// touch the process environment).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = env("DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(url);
        }
        if let Some(catalog) = env("LETHE_CATALOG").filter(|v| !v.is_empty()) {
            self.catalog = PathBuf::from(catalog);
        }
        if let Some(secret) = env("LETHE_SUBJECT_HASH_SECRET").filter(|v| !v.is_empty()) {
            self.minimisation.subject_hash_secret = Some(secret);
        }
        if let Some(flag) = env("LETHE_S3_FORCE_PATH_STYLE").filter(|v| !v.is_empty()) {
            self.s3.force_path_style = match flag.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => {
                    return Err(ConfigError::Invalid(format!(
                        "LETHE_S3_FORCE_PATH_STYLE={other:?}: expected true or false"
                    )));
                }
            };
        }
        Ok(())
    }

    /// Checks limits that would otherwise fail at run time.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.worker;
        if w.batch_size == 0 {
            return Err(ConfigError::Invalid(
                "worker.batch_size must be at least 1".into(),
            ));
        }
        if !(1..=100_000).contains(&w.delete_batch_size) {
            return Err(ConfigError::Invalid(
                "worker.delete_batch_size must be between 1 and 100000 (objects per deletion batch, sent 1,000 keys a call)".into(),
            ));
        }
        if w.lease_secs < 3 {
            return Err(ConfigError::Invalid(
                "worker.lease_secs must be at least 3".into(),
            ));
        }
        if w.concurrency == 0 {
            return Err(ConfigError::Invalid(
                "worker.concurrency must be at least 1".into(),
            ));
        }
        if let Some(secret) = &self.minimisation.subject_hash_secret
            && secret.len() < MIN_SECRET_BYTES
        {
            return Err(ConfigError::Invalid(format!(
                "minimisation.subject_hash_secret (LETHE_SUBJECT_HASH_SECRET) is too short: \
                 use at least {MIN_SECRET_BYTES} random bytes, e.g. `openssl rand -hex 32`"
            )));
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            return Err(ConfigError::Invalid(
                "s3.access_key_id and s3.secret_access_key go together: set both, or neither to use \
                 the AWS credential chain"
                    .into(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        Windows::parse(&self.windows)?;
        self.overdue_after()?;
        self.server.validate()?;
        Ok(())
    }

    /// How long after submission an unfinished request is overdue.
    pub fn overdue_after(&self) -> Result<Duration, ConfigError> {
        span::parse(&self.overdue_after).map_err(ConfigError::OverdueAfter)
    }

    /// The off-peak windows; `None` when there are none (always open).
    pub fn windows(&self) -> Result<Option<Windows>, ConfigError> {
        Ok(Windows::parse(&self.windows)?)
    }

    /// The database URL, or an error telling the operator how to give one.
    pub fn require_database_url(&self) -> Result<&str, ConfigError> {
        self.database_url.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "no database configured: set DATABASE_URL or database_url in lethe.toml".into(),
            )
        })
    }
}

impl WorkerSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// How long a masking batch's statements may wait and run.
    pub fn masking_limits(&self) -> crate::store::StatementLimits {
        crate::store::StatementLimits {
            lock_timeout: Duration::from_millis(self.lock_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }

    /// The idle poll interval on this backend (see `poll_interval_ms`).
    pub fn poll_interval(&self, backend: Backend) -> Duration {
        let default = match backend {
            Backend::Postgres => 5_000,
            Backend::Sqlite => 1_000,
        };
        Duration::from_millis(self.poll_interval_ms.unwrap_or(default).max(10))
    }
}

/// Debug output hides the database URL, which usually carries a password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("catalog", &self.catalog)
            .field("s3", &self.s3)
            .field("worker", &self.worker)
            .field("retry", &self.retry)
            .field("minimisation", &self.minimisation)
            .field("windows", &self.windows)
            .field("overdue_after", &self.overdue_after)
            .field("server", &self.server)
            .finish()
    }
}

/// Debug output hides the secret key.
impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("operation_timeout_secs", &self.operation_timeout_secs)
            .field("sdk_max_attempts", &self.sdk_max_attempts)
            .field("call_retries", &self.call_retries)
            .field("call_retry_backoff_ms", &self.call_retry_backoff_ms)
            .field("concurrency", &self.concurrency)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Debug output hides the hash secret.
impl fmt::Debug for MinimisationSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MinimisationSettings")
            .field(
                "subject_hash_secret",
                &self.subject_hash_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("manifest_retention_days", &self.manifest_retention_days)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_debug_hides_secrets() {
        let mut config: Config = toml::from_str(
            r#"
            database_url = "postgres://u:secret@db/file"
            [minimisation]
            subject_hash_secret = "hash-secret-from-the-file"
            [worker]
            batch_size = 100
            "#,
        )
        .unwrap();
        config
            .apply_env(|name| match name {
                "DATABASE_URL" => Some("postgres://u:secret@db/env".into()),
                "LETHE_S3_FORCE_PATH_STYLE" => Some("true".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            config.database_url.as_deref(),
            Some("postgres://u:secret@db/env")
        );
        assert!(config.s3.force_path_style);
        assert_eq!(config.worker.batch_size, 100);
        assert!(!format!("{config:?}").contains("u:secret"));
        assert!(!format!("{config:?}").contains("hash-secret-from-the-file"));
    }

    #[test]
    fn unknown_keys_and_bad_limits_are_refused() {
        assert!(toml::from_str::<Config>("[worker]\nbatchsize = 1").is_err());
        let mut config = Config::default();
        config.worker.delete_batch_size = 100_001;
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("100000")
        );
        let mut config = Config::default();
        config.minimisation.subject_hash_secret = Some("short".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("too short")
        );
        let config = Config {
            overdue_after: "5 days".into(),
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("overdue_after")
        );
    }

    #[test]
    fn the_poll_interval_defaults_per_backend_and_static_keys_go_together() {
        let defaults = WorkerSettings::default();
        assert_eq!(
            defaults.poll_interval(Backend::Postgres),
            Duration::from_secs(5)
        );
        assert_eq!(
            defaults.poll_interval(Backend::Sqlite),
            Duration::from_secs(1)
        );
        let set = WorkerSettings {
            poll_interval_ms: Some(250),
            ..WorkerSettings::default()
        };
        assert_eq!(
            set.poll_interval(Backend::Sqlite),
            Duration::from_millis(250)
        );
        let mut config = Config::default();
        config.s3.access_key_id = Some("k".into());
        assert!(config.validate().unwrap_err().to_string().contains("both"));
        config.s3.secret_access_key = Some("s3-secret-value".into());
        config.validate().unwrap();
        assert!(!format!("{config:?}").contains("s3-secret-value"));
    }

    #[test]
    fn windows_limits_and_deadline_read_from_the_file() {
        let config: Config = toml::from_str(
            r#"
            overdue_after = "3d"
            [[window]]
            cron = "0 0 2 * * *"
            duration = "3h"
            time_zone = "Asia/Seoul"
            [worker]
            max_objects_per_sec = 50
            max_rows_per_sec = 0
            pause_between_batches_ms = 1000
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.windows().unwrap().unwrap().windows().len(), 1);
        assert_eq!(
            config.overdue_after().unwrap(),
            Duration::from_secs(3 * 86_400)
        );
        assert_eq!(config.worker.max_objects_per_sec, 50);
        let defaults = Config::default();
        assert!(
            defaults.windows().unwrap().is_none(),
            "no windows: always open"
        );
        assert_eq!(
            defaults.overdue_after().unwrap(),
            Duration::from_secs(5 * 86_400)
        );
        let mut bad = Config::default();
        bad.windows.push(WindowSpec {
            cron: "0 0 2 * * *".into(),
            duration: "3h".into(),
            time_zone: "Seoul".into(),
        });
        assert!(bad.validate().unwrap_err().to_string().contains("IANA"));
    }
}
