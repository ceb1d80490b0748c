//! The command line's grammar: every command, its arguments and its help
//! text, as clap reads them. `main.rs` runs what it parses.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use lethe::State;

pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  error (the message says what to do)
  2  bad command line
  3  refused (e.g. cancel after S3 deletion started, retry of a request that is not failed)
  4  no such request
  5  the catalog is unsafe (`catalog check`: the report says what to fix)

Configuration: --config FILE (default ./lethe.toml if present), then the
environment: DATABASE_URL, LETHE_CATALOG, LETHE_S3_FORCE_PATH_STYLE,
LETHE_SUBJECT_HASH_SECRET (required by workers), and the standard AWS chain
for S3 (AWS_ENDPOINT_URL_S3, AWS_REGION, credentials).";

/// lethe erases the personal data of members who have left a service: their
/// rows in its database (PostgreSQL or SQLite) are masked and their files in
/// S3 deleted, as a durable workflow that survives crashes and leaves a
/// record. New here? Run `lethe demo`.
#[derive(Debug, Parser)]
#[command(name = "lethe", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    Json,
    Csv,
}

pub(crate) fn parse_day(text: &str) -> Result<NaiveDate, String> {
    lethe::report::parse_day(text).map_err(|err| err.to_string())
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or upgrade lethe's tables in the service's database.
    Migrate,
    /// Submit the erasure of one member (by their key in the service).
    ///
    /// Returns at once with the request id; a worker does the work. A second
    /// submission for a member with an active erasure is folded into it.
    /// `INSERT INTO erasure_requests (subject_key) VALUES ('...')` does the same.
    Submit {
        /// The member's key in the service (e.g. the client key).
        subject: String,
        /// Your reference for this submission; submitting it again returns
        /// the same request instead of a new one.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a worker: claim requests and advance them batch by batch.
    ///
    /// Works only while an off-peak window ([[window]] in the config) is
    /// open; at the close it finishes the batch in flight, releases its
    /// leases and waits for the next window. Runs until SIGINT/SIGTERM (it
    /// finishes or gives up the batch in flight, releases its leases and
    /// exits 0; a second signal exits at once, which is safe: work resumes
    /// from the last checkpoint). Run as many workers, on as many hosts, as
    /// you like against one database. On a terminal, a status line shows
    /// each request in hand, its phase, batch k of n and rate.
    Worker {
        /// Exit when no request is claimable, instead of waiting for more.
        #[arg(long)]
        once: bool,
        /// Work now even if no off-peak window is open.
        #[arg(long)]
        ignore_window: bool,
        /// Requests this worker advances at a time (overrides worker.concurrency).
        #[arg(long)]
        concurrency: Option<u32>,
    },
    /// Show one request (or every request of one member).
    Status {
        /// The request id.
        #[arg(required_unless_present = "subject", conflicts_with = "subject")]
        id: Option<Uuid>,
        /// Every request for this member key instead.
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List requests, newest first, and whether the off-peak window is open.
    List {
        /// Only requests in this state (requested, targets_found, s3_cleared,
        /// db_masked, done, failed, cancelled, coalesced).
        #[arg(long)]
        state: Option<State>,
        /// Only requests not done within `overdue_after` (default 5 days) of
        /// their submission.
        #[arg(long)]
        overdue: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Dry run: what erasing this member would touch, now. Reads the
    /// member's rows (and JSON manifests in S3) exactly as an erasure would;
    /// writes nothing, deletes nothing.
    Plan {
        /// The member's key in the service.
        subject: String,
        #[arg(long)]
        json: bool,
    },
    /// How one URL or file reference resolves, and why: the bucket and key
    /// lethe would delete, or why it would keep it (protected, foreign).
    /// Needs only the catalog, not the database.
    ExplainRef {
        /// A URL (`https://...`, `s3://...`) or a JSON file object such as
        /// '{"bucket": "b", "key": "k", "url": "..."}'.
        value: String,
        #[arg(long)]
        json: bool,
    },
    /// Check that the S3 credentials can do everything the catalog needs,
    /// bucket by bucket, and name any permission that is missing. Makes
    /// only harmless calls on a key that cannot exist (under
    /// lethe-preflight/): reads that must answer 404 (403 means no
    /// s3:ListBucket), GetBucketVersioning, ListObjectVersions, a delete
    /// (and of the delete marker it leaves, in a versioned bucket), tagging
    /// in tag mode. `lethe worker` runs it at start and refuses to start
    /// when a permission is missing. Needs no database. Exit code 1 when
    /// anything is wrong.
    Check,
    /// Resume a failed request from its last checkpoint.
    Retry { id: Uuid },
    /// Cancel a request that has not started deleting objects.
    Cancel { id: Uuid },
    /// The destruction record (ISMS-P 파기 관리대장) of one request, or with
    /// --from/--to the register of every request done in that period.
    ///
    /// It names the request, your reference, times of each phase, counts per
    /// table and per bucket with their method (masked, deleted, kept,
    /// scheduled, retained: protected/locked/denied/foreign), anomalies, the
    /// verification result and the engine version. It holds no personal data:
    /// no member key and no object key.
    Report {
        /// The request id.
        #[arg(required_unless_present = "from", conflicts_with_all = ["from", "to"])]
        id: Option<Uuid>,
        /// First day of the period (YYYY-MM-DD, UTC), inclusive.
        #[arg(long, requires = "to", value_parser = parse_day)]
        from: Option<NaiveDate>,
        /// Last day of the period (YYYY-MM-DD, UTC), inclusive.
        #[arg(long, requires = "from", value_parser = parse_day)]
        to: Option<NaiveDate>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
    },
    /// Serve the HTTP API (/v1, for other teams' systems) and the operator
    /// and auditor pages (/, in a browser), until SIGINT/SIGTERM.
    ///
    /// Every endpoint but /healthz needs a token from [[server.token]] (make
    /// one with `lethe token new`), by role: submit, operate, audit. Binds
    /// server.listen (default 127.0.0.1:8080, loopback only): put TLS in front
    /// with a reverse proxy before exposing it. With --workers N, N requests
    /// are also worked on in this process (as `lethe worker --concurrency N`).
    #[cfg(feature = "serve")]
    Serve {
        /// The address to bind, instead of server.listen (port 0: any free
        /// port; the address bound is printed).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Requests to work on in this process too; 0 serves only.
        #[arg(long, default_value_t = 0, value_name = "N")]
        workers: u32,
        /// With --workers: work now even if no off-peak window is open.
        #[arg(long)]
        ignore_window: bool,
        /// Print the OpenAPI document and exit (docs/openapi.json is this).
        #[arg(long, exclusive = true)]
        openapi: bool,
    },
    /// API tokens for `lethe serve`.
    #[cfg(feature = "serve")]
    #[command(subcommand)]
    Token(TokenCommand),
    /// Prune the per-object manifests of requests done longer ago than
    /// minimisation.manifest_retention_days to counts (workers also do this
    /// whenever a request is done). Destruction records keep working.
    Prune,
    /// Check the catalog against the database, or draft one from it.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// The example service, for trying lethe.
    #[cfg(feature = "demo")]
    #[command(subcommand)]
    Example(ExampleCommand),
    /// A full erasure on this machine, nothing to install: a SQLite file and
    /// an S3-protocol server on loopback (in this process), the example
    /// service with 20 members, three of them erased (one submitted by plain
    /// SQL) by a worker with live progress, and the counts before and after.
    /// Leaves its files in --dir, with a lethe.toml for trying the other
    /// commands on them. Ignores --config and the environment.
    #[cfg(feature = "demo")]
    Demo {
        /// Where to put the demo's files (an earlier demo's are replaced).
        #[arg(long, default_value = "lethe-demo")]
        dir: PathBuf,
        /// Kill the worker process mid-batch (SIGKILL) and resume, to show
        /// the checkpoint at work.
        #[arg(long)]
        crash: bool,
        /// Only serve an earlier demo's S3 folder again, on its port, until
        /// Ctrl-C (for `lethe plan`, which reads S3, after a demo).
        #[arg(long, conflicts_with = "crash")]
        serve: bool,
    },
}

#[cfg(feature = "serve")]
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a new random token: prints it once, and the [[server.token]]
    /// lines (with its SHA-256, never the token) to add to lethe.toml.
    New {
        /// Who will hold it (a system or a person); shown in logs and kept
        /// on the requests it submits.
        #[arg(long)]
        name: String,
        /// submit: submit and read its own submissions; operate: everything
        /// but destruction records; audit: read-only, with records and the
        /// register.
        #[arg(long, value_parser = ["submit", "operate", "audit"])]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Validate the catalog against the live database: tables, columns,
    /// types, keys, the uniqueness of every link, the indexes behind every
    /// lookup, and the data behind declared casts. Prints what each feature
    /// will read, how each row is reached and proven to be the member's, and
    /// what will be masked or deleted. Exits 5 on anything unsafe.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Draft a catalog from the live database: client tables, links
    /// (foreign keys, names, and sampled values), JSON and text columns
    /// sampled for URLs, keys and buckets, and a masking policy per column,
    /// each guess with a comment, and `TODO(lethe)` where only you can say.
    /// Edit it, then run `lethe catalog check`.
    Init {
        /// Where to write the draft (a directory; refused if it exists
        /// unless --force).
        #[arg(long, default_value = "workflows/draft")]
        out: PathBuf,
        #[arg(long)]
        force: bool,
        /// Rows sampled per table.
        #[arg(long, default_value_t = 200)]
        sample: i64,
    },
}

#[cfg(feature = "demo")]
#[derive(Debug, Subcommand)]
pub(crate) enum ExampleCommand {
    /// Create the example service's tables and buckets and fill them with
    /// N members of M requests each (rows in the database, files in S3).
    Load {
        #[arg(long, default_value_t = 5)]
        members: usize,
        #[arg(long, default_value_t = 20)]
        requests: usize,
        /// Member keys are PREFIX-00001, PREFIX-00002, ... (the example
        /// service; atelier's members are uuids).
        #[arg(long, default_value = "member")]
        prefix: String,
        /// Which example service: `example` (shaped like the seed's, catalog
        /// workflows/example) or `atelier` (written to another plan, catalog
        /// workflows/atelier).
        #[arg(long, value_enum, default_value_t = ExampleService::Example)]
        service: ExampleService,
    },
}

#[cfg(feature = "demo")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExampleService {
    Example,
    Atelier,
}
