//! The `lethe` command: parses the command line, sets up logging, and calls
//! the library. Every command here is a library call too (see `lethe::Engine`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

use args::{CatalogCommand, Cli, Command, LogFormat, ReportFormat};
#[cfg(feature = "demo")]
use args::{ExampleCommand, ExampleService};
use lethe::{Board, ListFilter, WorkerOptions};
use terminal::{Terminal, TerminalLogs};

mod args;
mod malloc_arenas;
#[cfg(feature = "serve")]
mod serve_command;
mod terminal;
use lethe::{Config, Engine, Error};

fn main() -> ExitCode {
    malloc_arenas::limit();
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
    #[cfg(feature = "serve")]
    match &cli.command {
        Command::Serve { openapi: true, .. } => {
            print!("{}", lethe::server::openapi_document());
            return Ok(());
        }
        Command::Token(args::TokenCommand::New { name, role }) => {
            return serve_command::new_token(name, role);
        }
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    #[cfg(feature = "serve")]
    if let Command::Serve { workers, .. } = &cli.command
        && *workers > 0
    {
        config.worker.concurrency = *workers;
    }
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
        #[cfg(feature = "serve")]
        Command::Serve {
            listen,
            workers,
            ignore_window,
            ..
        } => serve_command::serve(&engine, listen.as_deref(), workers, ignore_window).await?,
        #[cfg(feature = "serve")]
        Command::Token(_) => unreachable!("handled before connecting"),
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
    let progress = terminal.as_ref().map(|t| t.board());
    let options = WorkerOptions {
        once,
        ignore_window,
        progress,
    };
    let worker = start_worker(engine, options).await?;
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

/// A worker, after the preflight: a worker without a permission it needs
/// would fail every member, or worse, fail to prove any erasure.
pub(crate) async fn start_worker(
    engine: &Engine,
    options: WorkerOptions,
) -> anyhow::Result<lethe::Worker> {
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
    engine.worker(options).await.context("starting the worker")
}

/// SIGTERM and SIGINT, listened to for the whole run: a second signal is
/// seen even if it comes while the first is being handled.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    pub(crate) async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
