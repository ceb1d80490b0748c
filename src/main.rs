//! The `lethe` command: parses the command line, sets up logging, and calls
//! the library. Every command here is a library call too (see `lethe::Engine`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use lethe::{Board, ListFilter, WorkerOptions};
use terminal::{Terminal, TerminalLogs};

mod terminal;
use lethe::{Config, Engine, Error, State};

const EXIT_CODES: &str = "\
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
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Json,
    Csv,
}

fn parse_day(text: &str) -> Result<NaiveDate, String> {
    lethe::report::parse_day(text).map_err(|err| err.to_string())
}

#[derive(Debug, Subcommand)]
enum Command {
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

#[derive(Debug, Subcommand)]
enum CatalogCommand {
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
enum ExampleCommand {
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
enum ExampleService {
    Example,
    Atelier,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A worker on a terminal gets a live status line below its logs.
    let terminal = (matches!(cli.command, Command::Worker { .. })
        && std::io::stderr().is_terminal())
    .then(|| Terminal::new(Board::new()));
    // The demo narrates on stdout; its worker's per-batch logs would drown
    // that (LETHE_LOG still turns them on).
    #[cfg(feature = "demo")]
    let quiet = matches!(cli.command, Command::Demo { .. });
    #[cfg(not(feature = "demo"))]
    let quiet = false;
    init_logging(cli.log_format, terminal.clone(), quiet);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli, terminal.clone()));
    if let Some(terminal) = &terminal {
        terminal.clear();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let code = match err.downcast_ref::<Error>() {
                Some(Error::Refused { .. }) => 3,
                Some(Error::NotFound(_)) => 4,
                _ if err.is::<Unsafe>() => 5,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}

/// `catalog check` found the catalog unsafe (the report said why).
#[derive(Debug, thiserror::Error)]
#[error("the catalog is unsafe to erase with; fix the problems listed above")]
struct Unsafe;

fn init_logging(format: LogFormat, terminal: Option<Arc<Terminal>>, quiet: bool) {
    let default = if quiet {
        "warn,sqlx=error,aws=error,s3s=off"
    } else {
        "info,sqlx=warn,aws=warn,tokio_cron_scheduler=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LETHE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    match (format, terminal) {
        (LogFormat::Text, None) => builder.with_writer(std::io::stderr).init(),
        (LogFormat::Json, None) => builder.json().with_writer(std::io::stderr).init(),
        (LogFormat::Text, Some(t)) => builder.with_writer(TerminalLogs(t)).init(),
        (LogFormat::Json, Some(t)) => builder.json().with_writer(TerminalLogs(t)).init(),
    }
}

async fn run(cli: Cli, terminal: Option<Arc<Terminal>>) -> anyhow::Result<()> {
    #[cfg(feature = "demo")]
    if let Command::Demo { dir, crash, serve } = &cli.command {
        if *serve {
            return Ok(lethe::demo::serve(dir).await?);
        }
        let options = lethe::demo::DemoOptions {
            dir: dir.clone(),
            crash: *crash,
        };
        return Ok(lethe::demo::run(&options).await?);
    }
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    if let Command::Worker {
        concurrency: Some(n),
        ..
    } = &cli.command
    {
        config.worker.concurrency = (*n).max(1);
    }
    if let Command::ExplainRef { value, json } = &cli.command {
        return explain_ref(&config, value, *json);
    }
    if let Command::Check = &cli.command {
        return check(&config).await;
    }
    let engine = Engine::connect(config).await?;
    match cli.command {
        Command::ExplainRef { .. } | Command::Check => {
            unreachable!("handled before connecting")
        }
        #[cfg(feature = "demo")]
        Command::Demo { .. } => unreachable!("handled before connecting"),
        Command::Plan { subject, json } => {
            let report = engine.dry_run(&subject).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::Migrate => {
            engine.migrate().await?;
            println!("migrations applied");
        }
        Command::Submit {
            subject,
            idempotency_key,
            json,
        } => {
            let submission = engine.submit(&subject, idempotency_key.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&submission)?);
            } else {
                match (submission.coalesced_into, submission.replayed) {
                    (Some(active), _) => println!(
                        "{}\ncoalesced into active request {active} (this member already has an erasure in progress)",
                        submission.id
                    ),
                    (None, true) => println!(
                        "{}\n(already submitted with this idempotency key)",
                        submission.id
                    ),
                    (None, false) => println!("{}", submission.id),
                }
                if let Some(last) = submission.previously_done.first() {
                    println!(
                        "(this member was erased before, by request {last}; this request erases whatever was found since)"
                    );
                }
            }
        }
        Command::Worker {
            once,
            ignore_window,
            ..
        } => run_worker(&engine, once, ignore_window, terminal).await?,
        Command::Status { id, subject, json } => {
            let statuses = match (id, subject) {
                (Some(id), _) => vec![engine.status(id).await?],
                (None, Some(subject)) => engine.status_for_subject(&subject).await?,
                (None, None) => unreachable!("clap requires one"),
            };
            if json {
                let value = if statuses.len() == 1 && id.is_some() {
                    serde_json::to_value(&statuses[0])?
                } else {
                    serde_json::to_value(&statuses)?
                };
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else if statuses.is_empty() {
                println!("no requests for this member");
                println!(
                    "{}",
                    lethe::status::window_line(engine.window_state()?.as_ref())
                );
            } else {
                let texts: Vec<String> = statuses.iter().map(ToString::to_string).collect();
                println!("{}", texts.join("\n\n"));
            }
        }
        Command::List {
            state,
            overdue,
            limit,
            json,
        } => {
            let filter = ListFilter {
                state,
                limit: Some(limit),
                ..ListFilter::default()
            };
            let records = if overdue {
                engine.list_overdue(&filter).await?
            } else {
                engine.list(&filter).await?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                println!(
                    "{}",
                    lethe::status::window_line(engine.window_state()?.as_ref())
                );
                print!("{}", lethe::status::list_table(&records));
            }
        }
        Command::Retry { id } => {
            let record = engine.retry(id).await?;
            println!("{id}: resumed at {} from its last checkpoint", record.state);
        }
        Command::Cancel { id } => {
            engine.cancel(id).await?;
            println!("{id}: cancelled");
        }
        Command::Report {
            id,
            from,
            to,
            format,
        } => match (id, from, to) {
            (Some(id), _, _) => {
                let record = engine.report(id).await?;
                match format {
                    ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&record)?),
                    ReportFormat::Csv => print!("{}", lethe::report::record_csv(&record)),
                }
            }
            (None, Some(from), Some(to)) => {
                let register = engine.register(from, to).await?;
                match format {
                    ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&register)?),
                    ReportFormat::Csv => print!("{}", lethe::report::register_csv(&register)),
                }
            }
            _ => unreachable!("clap requires an id or a period"),
        },
        Command::Prune => {
            let summary = engine.prune().await?;
            println!(
                "pruned the manifests of {} request(s) to counts; hashed the key of {} earlier request(s)",
                summary.manifests_pruned.len(),
                summary.subjects_minimised
            );
        }
        Command::Catalog(CatalogCommand::Check { json }) => {
            let report = engine.check_catalog().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if !report.safe {
                return Err(Unsafe.into());
            }
        }
        Command::Catalog(CatalogCommand::Init { out, force, sample }) => {
            let draft = engine.draft_catalog(sample).await?;
            draft
                .write(&out, force)
                .with_context(|| format!("writing the draft to {}", out.display()))?;
            println!(
                "wrote a draft catalog to {} ({} client table(s), {} feature(s), {} TODO(s) to settle); edit it, then `lethe --config ... catalog check` with catalog = {:?}",
                out.display(),
                draft.clients,
                draft.features.len(),
                draft.todos,
                out.display().to_string()
            );
        }
        #[cfg(feature = "demo")]
        Command::Example(ExampleCommand::Load {
            members,
            requests,
            service: ExampleService::Atelier,
            ..
        }) => {
            eprintln!("loading atelier: {members} member(s) x {requests} request(s) ...");
            let spec = lethe::example::atelier::AtelierSpec {
                members,
                requests_per_member: requests,
                member_seed: 1,
            };
            let summary = engine.load_atelier(&spec).await?;
            println!(
                "atelier loaded: {} members, {} rows, {} objects (+{} shared)",
                summary.members.len(),
                summary.rows,
                summary.objects,
                summary.shared.len()
            );
            let keys: Vec<&str> = summary.members.iter().map(|m| m.key.as_str()).collect();
            println!("members: {}", keys.join(" "));
        }
        #[cfg(feature = "demo")]
        Command::Example(ExampleCommand::Load {
            members,
            requests,
            prefix,
            ..
        }) => {
            let spec = lethe::example::ExampleSpec {
                members,
                requests_per_member: requests,
                member_prefix: prefix,
                every_feature: false,
            };
            eprintln!("loading {members} member(s) x {requests} request(s) ...");
            let summary = engine.load_example(&spec).await?;
            println!(
                "example service loaded: {} members, {} rows, {} objects (+{} shared)",
                summary.members.len(),
                summary.rows,
                summary.objects,
                summary.shared.len()
            );
            let keys: Vec<&str> = summary.members.iter().map(|m| m.key.as_str()).collect();
            println!("members: {}", keys.join(" "));
        }
    }
    Ok(())
}

/// Prints how one reference resolves through the catalog's storage facts.
fn explain_ref(config: &Config, value: &str, json: bool) -> anyhow::Result<()> {
    let explanation =
        lethe::explain_reference(config, value).context("explaining the reference")?;
    match (explanation, json) {
        (Some(explanation), true) => println!("{}", serde_json::to_string_pretty(&explanation)?),
        (Some(explanation), false) => println!("{explanation}"),
        (None, true) => println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"outcome": "none", "form": "no file reference"})
            )?
        ),
        (None, false) => {
            println!("no file reference: empty, or an object without bucket/key/url fields")
        }
    }
    Ok(())
}

/// `lethe check`: the preflight, bucket by bucket.
async fn check(config: &Config) -> anyhow::Result<()> {
    let report = lethe::preflight(config)
        .await
        .context("running the preflight")?;
    print!("{report}");
    if report.passed() {
        println!(
            "all checks passed: the credentials can do what the catalog needs on {} bucket(s)",
            report.buckets.len()
        );
        Ok(())
    } else {
        anyhow::bail!(
            "the preflight found {} problem(s), listed above",
            report.problems().len()
        )
    }
}

/// Runs a worker until it is done (`--once`) or signalled. The first
/// SIGINT/SIGTERM stops it gracefully; a second exits at once.
async fn run_worker(
    engine: &Engine,
    once: bool,
    ignore_window: bool,
    terminal: Option<Arc<Terminal>>,
) -> anyhow::Result<()> {
    // Installed first, so a signal during start-up is not fatal either.
    let mut signals = Signals::install()?;
    // The preflight: a worker without a permission it needs would fail
    // every member, or worse, fail to prove any erasure.
    let preflight = engine.check().await.context("running the preflight")?;
    if preflight.permission_missing() || preflight.no_bucket_exists() {
        anyhow::bail!(
            "not starting: {} (`lethe check` shows every check)",
            preflight.problems().join("; ")
        );
    }
    for problem in preflight.problems() {
        tracing::warn!("preflight: {problem}");
    }
    let progress = terminal.as_ref().map(|t| t.board());
    let worker = engine
        .worker(WorkerOptions {
            once,
            ignore_window,
            progress,
        })
        .await
        .context("starting the worker")?;
    let redraw = terminal.as_ref().map(|t| t.spawn_redraw());
    let shutdown = worker.shutdown_token();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!(
            "signal received: finishing the batch in flight, then stopping (signal again to exit at once)"
        );
        shutdown.cancel();
        signals.next().await;
        tracing::warn!("second signal: exiting now; work resumes from the last checkpoint");
        std::process::exit(130);
    });
    let summary = worker.run().await;
    if let Some(redraw) = redraw {
        redraw.abort();
    }
    if let Some(terminal) = &terminal {
        terminal.clear();
    }
    let summary = summary?;
    eprintln!(
        "worker stopped: {} done, {} to retry later, {} failed, {} interrupted, {} paused at a window's close",
        summary.done, summary.retry_scheduled, summary.failed, summary.interrupted, summary.paused
    );
    Ok(())
}

/// SIGTERM and SIGINT, listened to for the whole run: a second signal is
/// seen even if it comes while the first is being handled.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
