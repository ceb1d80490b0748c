//! Workers: claim due requests, advance them batch by batch under a lease,
//! and record what went wrong.
//!
//! Any number of worker processes, on any number of hosts, may run against
//! one database: claims use `FOR UPDATE SKIP LOCKED`, a lease with a
//! heartbeat holds a request (and, by the one-active-request-per-subject
//! index, its subject), an expired lease is taken over, and the lease epoch
//! fences a stale holder. An idle worker wakes on `NOTIFY` when a request is
//! inserted, and polls as a fallback.
//!
//! On SQLite (the embedded backend: one host) claims and every fenced commit
//! are serialised by SQLite's write lock instead, taken at BEGIN IMMEDIATE,
//! so any number of workers in one process or in several processes on the
//! host stay correct; there is no NOTIFY, so a worker is woken by
//! submissions through its own process and otherwise polls.
//!
//! Off-peak windows ([`crate::schedule`]) are kept here: a worker claims only
//! while the gate is open, and checks it again before every batch (and a
//! batch still waiting for its rate-limit allowance at the close is given
//! up). When the window closes, each request in hand finishes the batch in
//! flight, releases its lease and waits for the next window: past the close,
//! a worker works at most one batch's own time (its queries, or its S3
//! calls; the rate-limit wait comes before the start). Load limits
//! ([`crate::pace`]) are paid at the start of each batch, and the pause
//! between batches is taken here.

mod failure;
mod heartbeat;
pub mod progress;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::Error;
use crate::pace::StopReason;
use crate::retry::{Decision, RetryPolicy};
use crate::schedule::{Gate, Wakeups, Windows};
use crate::store::requests::Claimed;
use crate::workflow::state::State;
use crate::workflow::{self, Checkpoint, Context, Step};
use failure::Failure;
use progress::Board;
use report::BatchReport;

/// The channel the PostgreSQL insert trigger notifies.
pub use crate::store::wake::NOTIFY_CHANNEL;

/// How a worker runs.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// Exit when nothing is claimable instead of waiting for more work.
    pub once: bool,
    /// Work outside the off-peak windows too (`--ignore-window`).
    pub ignore_window: bool,
    /// Where to show live progress (a terminal), if anywhere.
    pub progress: Option<Arc<Board>>,
}

/// What happened to one claimed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Stopped between batches because the worker is shutting down.
    Interrupted,
    /// Stopped between batches because the off-peak window closed.
    WindowClosed,
    /// A transient failure; retried after the stored backoff.
    RetryScheduled,
    Failed,
    /// The lease was lost or the request changed under us (cancelled).
    LostLease,
}

/// Counts of outcomes over a worker's run.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub done: usize,
    pub retry_scheduled: usize,
    pub failed: usize,
    pub interrupted: usize,
    /// Put back at a window's close, to resume in the next window.
    pub paused: usize,
    pub lost: usize,
}

/// A worker process's loop.
pub struct Worker {
    ctx: Context,
    policy: RetryPolicy,
    id: String,
    options: WorkerOptions,
    shutdown: CancellationToken,
    /// The off-peak windows; `None` is always open.
    windows: Option<Windows>,
    wakeups: Wakeups,
}

impl Worker {
    pub fn new(mut ctx: Context, policy: RetryPolicy, options: WorkerOptions) -> Worker {
        let id = ctx
            .settings
            .worker_id
            .clone()
            .unwrap_or_else(default_worker_id);
        let shutdown = CancellationToken::new();
        // Rate-limit waits end early at shutdown: the batch is given up
        // before any of its side effects.
        ctx.pace = ctx.pace.with_stop(shutdown.clone());
        Worker {
            ctx,
            policy,
            id,
            options,
            shutdown,
            windows: None,
            wakeups: Wakeups::Scheduler,
        }
    }

    /// Works only while one of `windows` is open (unless the options say
    /// to ignore them); `wakeups` says what wakes it at a window's edge.
    pub fn with_windows(mut self, windows: Option<Windows>, wakeups: Wakeups) -> Worker {
        self.windows = windows;
        self.wakeups = wakeups;
        self
    }

    /// This worker's name in leases and events.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Cancelling this token stops the worker: it claims nothing more, lets
    /// each request in hand finish its current batch, releases the leases
    /// and returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until shut down (or, with `once`, until nothing is claimable).
    pub async fn run(mut self) -> Result<RunSummary, Error> {
        let concurrency = self.ctx.settings.concurrency.max(1) as usize;
        let poll = self.ctx.settings.poll_interval(self.ctx.store.backend());
        let clock = self.ctx.pace.clock().clone();
        let (mut gate, driver) = match self.windows.take() {
            Some(windows) if !self.options.ignore_window => {
                let (gate, driver) = Gate::start(windows, clock, self.wakeups).await;
                (gate, Some(driver))
            }
            _ => (Gate::always_open(clock), None),
        };
        // A batch still waiting for its allowance at the close does not start.
        self.ctx.pace = self.ctx.pace.clone().with_gate(gate.clone());
        let mut wakeups = self.ctx.store.wakeups().await;
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut summary = RunSummary::default();
        let window = match gate.state() {
            Some(state) => state.to_string(),
            None if self.options.ignore_window => "ignored (--ignore-window)".to_owned(),
            None => "none configured: always open".to_owned(),
        };
        tracing::info!(worker = %self.id, concurrency, %window, "worker started");

        while !self.shutdown.is_cancelled() {
            let open = gate.is_open();
            let mut claimed_any = false;
            while open && running.len() < concurrency {
                match self
                    .ctx
                    .store
                    .claim(&self.id, self.ctx.settings.lease())
                    .await
                {
                    Ok(Some(claimed)) => {
                        claimed_any = true;
                        // Every line logged for the request carries its id
                        // (never its subject key).
                        let span =
                            tracing::info_span!("request", request_id = %claimed.lease.request_id);
                        running.spawn(
                            process(
                                self.ctx.clone(),
                                self.policy.clone(),
                                claimed,
                                self.shutdown.clone(),
                                gate.clone(),
                                self.options.progress.clone(),
                            )
                            .instrument(span),
                        );
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(worker = %self.id, "claiming work: {err}");
                        break;
                    }
                }
            }
            if self.options.once && running.is_empty() && !claimed_any {
                if !open && let Some(state) = gate.state() {
                    tracing::info!(
                        "off-peak window {state}: nothing claimed; run `lethe worker --once --ignore-window` to work outside it"
                    );
                }
                break;
            }
            // With every slot busy, nothing can be claimed until a request in
            // hand ends, so there is no timer: only that (or a signal, or a
            // window's edge) wakes the loop. With a slot free and the window
            // open, sleep until the next request falls due (by the database's
            // clock), at most the poll interval; closed, the gate's alarm is
            // what wakes it.
            let free = running.len() < concurrency;
            let wait = if free && open {
                Some(self.idle_wait(poll).await)
            } else {
                None
            };
            tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    tally(&mut summary, joined);
                }
                _ = wakeups.next(), if free => {}
                _ = sleep_for(wait) => {}
                _ = gate.edge() => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
        // Graceful: requests in hand stop after their current batch.
        while let Some(joined) = running.join_next().await {
            tally(&mut summary, joined);
        }
        if let Some(driver) = driver {
            driver.stop().await;
        }
        tracing::info!(worker = %self.id, ?summary, "worker stopped");
        Ok(summary)
    }

    /// How long to sleep with a slot free: the poll interval, or less if a
    /// waiting request falls due sooner (by the database's clock).
    async fn idle_wait(&self, poll: Duration) -> Duration {
        match self.ctx.store.next_due_in().await {
            Ok(Some(until)) => until.clamp(Duration::from_millis(10), poll),
            _ => poll,
        }
    }
}

/// Sleeps for `wait`, or for ever when there is nothing to wait for.
async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

fn tally(summary: &mut RunSummary, joined: Result<Outcome, tokio::task::JoinError>) {
    match joined {
        Ok(Outcome::Done) => summary.done += 1,
        Ok(Outcome::RetryScheduled) => summary.retry_scheduled += 1,
        Ok(Outcome::Failed) => summary.failed += 1,
        Ok(Outcome::Interrupted) => summary.interrupted += 1,
        Ok(Outcome::WindowClosed) => summary.paused += 1,
        Ok(Outcome::LostLease) => summary.lost += 1,
        Err(err) => {
            tracing::error!("a request task panicked: {err}");
            summary.failed += 1;
        }
    }
}

/// Advances one claimed request until it is done, fails, or the worker stops.
async fn process(
    ctx: Context,
    policy: RetryPolicy,
    claimed: Claimed,
    shutdown: CancellationToken,
    gate: Gate,
    progress: Option<Arc<Board>>,
) -> Outcome {
    let lease = claimed.lease.clone();
    let request_id = lease.request_id;
    match &claimed.took_over_from {
        Some(previous) => tracing::warn!(
            state = %claimed.state, previous_worker = %previous, attempts = claimed.attempts,
            "took over an expired lease"
        ),
        None => tracing::info!(state = %claimed.state, "claimed"),
    }
    if claimed.attempts as u32 >= policy.max_attempts {
        // Its workers keep dying mid-request (the attempt count rises on each
        // takeover): stop the loop and let an operator look.
        let failure = Failure::permanent(
            format!(
                "{} attempts in a row ended with the worker lost mid-batch (crash or kill) before \
                 any progress",
                claimed.attempts
            ),
            Some("check the worker logs"),
        );
        return fail(&ctx, &policy, &claimed, claimed.state, failure).await;
    }

    // Versioning answers kept for this request's read-backs live only as
    // long as this claim: a request taken up again (a retry, a takeover) may
    // have deleted since (objects/buckets.rs).
    ctx.buckets.forget_verifying(request_id);

    let lost = CancellationToken::new();
    // The heartbeat lives exactly as long as this function: stopped when the
    // work ends, however it ends.
    let heartbeat = heartbeat::Beating::start(ctx.store.clone(), lease.clone(), lost.clone());
    // The work runs in a task of its own, so that a panic in it (a bug) is
    // caught here, recorded on the request, and its lease released, instead
    // of leaving the request held by a heartbeat with no work behind it.
    let work = AbortOnDrop(tokio::spawn(
        {
            let (ctx, policy, claimed, progress) = (
                ctx.clone(),
                policy.clone(),
                claimed.clone(),
                progress.clone(),
            );
            async move {
                drive(
                    &ctx,
                    &policy,
                    &claimed,
                    &shutdown,
                    &lost,
                    &gate,
                    progress.as_deref(),
                )
                .await
            }
        }
        // The task logs inside the request's span.
        .instrument(tracing::Span::current()),
    ));
    let outcome = match work.await {
        Ok(outcome) => {
            heartbeat.stop();
            outcome
        }
        Err(err) if err.is_panic() => {
            heartbeat.stop();
            let message = panic_message(err.into_panic());
            tracing::error!("the request's work panicked: {message}");
            fail_after_panic(&ctx, &policy, &claimed, &message).await
        }
        Err(_) => {
            heartbeat.stop();
            Outcome::Interrupted
        }
    };
    ctx.buckets.forget_verifying(request_id);
    if let Some(board) = &progress {
        board.finish(request_id);
    }
    // Done released the lease in its own commit.
    if matches!(outcome, Outcome::Interrupted | Outcome::WindowClosed)
        && let Err(err) = lease.release(&ctx.store).await
    {
        tracing::warn!("releasing lease: {err}; it expires on its own");
    }
    outcome
}

/// A task handle that aborts its task when dropped (this function's
/// future dropped mid-way must not leave the work running unwatched).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The text a panic carried, when it is text.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

/// Parks a request whose work panicked in Failed (a panic is a bug: it
/// would panic again), releasing its lease. The state is read afresh: the
/// work may have advanced it before panicking.
async fn fail_after_panic(
    ctx: &Context,
    policy: &RetryPolicy,
    claimed: &Claimed,
    message: &str,
) -> Outcome {
    let request_id = claimed.lease.request_id;
    let state = match ctx.store.get(request_id).await {
        Ok(record) => record.state,
        Err(err) => {
            tracing::error!(
                "reading the request after a panic: {err}; its lease expires on its own"
            );
            return Outcome::Failed;
        }
    };
    let failure = Failure::permanent(
        format!("lethe panicked while the request was {state}: {message}"),
        Some("this is a bug in lethe: report it with the worker's log, and upgrade"),
    );
    fail(ctx, policy, claimed, state, failure).await
}

async fn drive(
    ctx: &Context,
    policy: &RetryPolicy,
    claimed: &Claimed,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
    gate: &Gate,
    progress: Option<&Board>,
) -> Outcome {
    let lease = &claimed.lease;
    let request_id = lease.request_id;
    let mut state = claimed.state;
    // Read with the claim on PostgreSQL; otherwise read now.
    let resumption = match &claimed.resumption {
        Some(resumption) => resumption.clone(),
        None => match ctx.store.resumption(request_id).await {
            Ok(resumption) => resumption,
            Err(err) => return fail(ctx, policy, claimed, state, Failure::of(&err)).await,
        },
    };
    let subject = resumption.subject;
    let mut counters = resumption.counters;
    // The checkpoint the next step starts from, when known without a read:
    // as read with the key, and after each advance (a phase not started).
    let mut known = Some(Checkpoint::stored(request_id, resumption.checkpoint));
    // The next batch, when the last one prepared it while it committed.
    let mut ahead = None;
    loop {
        if lost.is_cancelled() {
            return Outcome::LostLease;
        }
        if shutdown.is_cancelled() {
            tracing::info!(%state, "stopping between batches for shutdown");
            return Outcome::Interrupted;
        }
        if !gate.is_open() {
            tracing::info!(
                %state,
                "off-peak window closed: stopping between batches; the request resumes in the next window"
            );
            return Outcome::WindowClosed;
        }
        let started = Instant::now();
        match workflow::step(ctx, lease, state, &subject, known.take(), &mut ahead).await {
            Ok(Step::Batch {
                phase,
                batch,
                total,
                advanced,
                counters: committed,
                checkpoint,
            }) => {
                let after = match committed {
                    Some(after) => after,
                    None => ctx.store.counters(request_id).await.unwrap_or(counters),
                };
                let report = BatchReport {
                    phase,
                    batch,
                    total,
                    elapsed: started.elapsed(),
                    before: counters,
                    after,
                };
                report.log();
                if let Some(board) = progress {
                    board.update(request_id, report.progress());
                }
                counters = after;
                known = checkpoint;
                if let Some(next) = advanced {
                    tracing::info!(from = %state, to = %next, "advanced");
                    state = next;
                    known = Some(Checkpoint::fresh(request_id));
                }
                // Cut short by a shutdown, which the top of the loop sees.
                ctx.pace.pause_between_batches().await;
            }
            Ok(Step::Stopped(StopReason::Shutdown)) => {
                tracing::info!(%state, "stopping before the next batch for shutdown");
                return Outcome::Interrupted;
            }
            Ok(Step::Stopped(StopReason::WindowClosed)) => {
                tracing::info!(
                    %state,
                    "off-peak window closed before the next batch started; the request resumes in the next window"
                );
                return Outcome::WindowClosed;
            }
            Ok(Step::Advanced(next)) => {
                tracing::info!(from = %state, to = %next, "advanced");
                state = next;
                known = Some(Checkpoint::fresh(request_id));
                if state == State::Done {
                    return Outcome::Done;
                }
            }
            Err(Error::Fenced(_)) | Err(Error::StateChanged { .. }) => {
                tracing::warn!("the request was taken over or changed by an operator; stopping");
                return Outcome::LostLease;
            }
            Err(err) => {
                tracing::debug!("attempt failed: {err:?}");
                return fail(ctx, policy, claimed, state, Failure::of(&err)).await;
            }
        }
    }
}

async fn fail(
    ctx: &Context,
    policy: &RetryPolicy,
    claimed: &Claimed,
    state: State,
    failure: Failure,
) -> Outcome {
    let request_id = claimed.lease.request_id;
    let recorded = ctx
        .store
        .record_failure(
            &claimed.lease,
            state,
            failure.transient,
            policy,
            |verdict| failure.describe(request_id, verdict),
        )
        .await;
    match recorded {
        Ok(Some(verdict)) => {
            let message = failure.describe(request_id, &verdict);
            match verdict.decision {
                Decision::RetryAfter(_) => {
                    tracing::warn!(%state, attempts = verdict.attempts, "attempt failed: {message}");
                    Outcome::RetryScheduled
                }
                Decision::GiveUp => {
                    tracing::error!(%state, "request failed: {message}");
                    Outcome::Failed
                }
            }
        }
        Ok(None) => Outcome::LostLease,
        Err(err) => {
            // Could not even record it (database down): the lease expires and
            // the takeover counts the attempt.
            tracing::error!("recording a failure ({}): {err}", failure.what);
            Outcome::RetryScheduled
        }
    }
}

/// `host:pid:random`, unique enough to tell workers apart in events.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "lethe".into());
    let suffix = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &suffix[..6])
}
