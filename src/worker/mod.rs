//! Workers: claim due requests, advance them batch by batch under a lease,
//! and record what went wrong.
//!
//! Any number of worker processes, on any number of hosts, may run against
//! one database: claims use `FOR UPDATE SKIP LOCKED`, a lease with a
//! heartbeat holds a request (and, by the one-active-request-per-subject
//! index, its subject), an expired lease is taken over, and the lease epoch
//! fences a stale holder. An idle worker wakes on `NOTIFY` when a request is
//! inserted, and polls as a fallback.

mod heartbeat;

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Error;
use crate::retry::{Decision, RetryPolicy};
use crate::store::requests::Claimed;
use crate::workflow::state::State;
use crate::workflow::{self, Context, Step};

/// The channel the insert trigger notifies.
pub const NOTIFY_CHANNEL: &str = "lethe_erasure_requests";

/// How a worker runs.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// Exit when nothing is claimable instead of waiting for more work.
    pub once: bool,
}

/// What happened to one claimed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Stopped between batches because the worker is shutting down.
    Interrupted,
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
    pub lost: usize,
}

/// A worker process's loop.
pub struct Worker {
    ctx: Context,
    policy: RetryPolicy,
    id: String,
    options: WorkerOptions,
    shutdown: CancellationToken,
}

impl Worker {
    pub fn new(ctx: Context, policy: RetryPolicy, options: WorkerOptions) -> Worker {
        let id = ctx
            .settings
            .worker_id
            .clone()
            .unwrap_or_else(default_worker_id);
        Worker {
            ctx,
            policy,
            id,
            options,
            shutdown: CancellationToken::new(),
        }
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
    pub async fn run(self) -> Result<RunSummary, Error> {
        let concurrency = self.ctx.settings.concurrency.max(1) as usize;
        let poll = Duration::from_millis(self.ctx.settings.poll_interval_ms.max(10));
        let mut listener = self.listen().await;
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut summary = RunSummary::default();
        tracing::info!(worker = %self.id, concurrency, "worker started");

        while !self.shutdown.is_cancelled() {
            let mut claimed_any = false;
            while running.len() < concurrency {
                match self
                    .ctx
                    .store
                    .claim(&self.id, self.ctx.settings.lease())
                    .await
                {
                    Ok(Some(claimed)) => {
                        claimed_any = true;
                        running.spawn(process(
                            self.ctx.clone(),
                            self.policy.clone(),
                            claimed,
                            self.shutdown.clone(),
                        ));
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(worker = %self.id, "claiming work: {err}");
                        break;
                    }
                }
            }
            if self.options.once && running.is_empty() && !claimed_any {
                break;
            }
            let wait = self.idle_wait(poll).await;
            tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    tally(&mut summary, joined);
                }
                _ = wait_for_notification(&mut listener), if running.len() < concurrency => {}
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
        // Graceful: requests in hand stop after their current batch.
        while let Some(joined) = running.join_next().await {
            tally(&mut summary, joined);
        }
        tracing::info!(worker = %self.id, ?summary, "worker stopped");
        Ok(summary)
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = match PgListener::connect_with(self.ctx.store.pool()).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!("LISTEN unavailable, polling only: {err}");
                return None;
            }
        };
        match listener.listen(NOTIFY_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(err) => {
                tracing::warn!("LISTEN unavailable, polling only: {err}");
                None
            }
        }
    }

    /// How long to sleep when idle: the poll interval, or less if a waiting
    /// request falls due sooner.
    async fn idle_wait(&self, poll: Duration) -> Duration {
        match self.ctx.store.next_due_at().await {
            Ok(Some(due)) => {
                let until = (due - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                until.clamp(Duration::from_millis(10), poll)
            }
            _ => poll,
        }
    }
}

async fn wait_for_notification(listener: &mut Option<PgListener>) {
    match listener {
        Some(l) => {
            if let Err(err) = l.recv().await {
                // sqlx reconnects on the next recv; avoid a hot loop meanwhile.
                tracing::warn!("waiting for notifications: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

fn tally(summary: &mut RunSummary, joined: Result<Outcome, tokio::task::JoinError>) {
    match joined {
        Ok(Outcome::Done) => summary.done += 1,
        Ok(Outcome::RetryScheduled) => summary.retry_scheduled += 1,
        Ok(Outcome::Failed) => summary.failed += 1,
        Ok(Outcome::Interrupted) => summary.interrupted += 1,
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
) -> Outcome {
    let lease = claimed.lease.clone();
    let request_id = lease.request_id;
    match &claimed.took_over_from {
        Some(previous) => tracing::warn!(
            %request_id, state = %claimed.state, previous_worker = %previous, attempts = claimed.attempts,
            "took over an expired lease"
        ),
        None => tracing::info!(%request_id, state = %claimed.state, "claimed"),
    }
    if claimed.attempts as u32 >= policy.max_attempts {
        // Its workers keep dying mid-request (the attempt count rises on each
        // takeover): stop the loop and let an operator look.
        let message = format!(
            "{} attempts in a row ended with the worker lost mid-batch (crash or kill); \
             check the worker logs, then `lethe retry {request_id}`",
            claimed.attempts
        );
        return fail(&ctx, &policy, &claimed, claimed.state, &message, false).await;
    }

    let lost = CancellationToken::new();
    let heartbeat = tokio::spawn(heartbeat::run(
        ctx.store.pool().clone(),
        lease.clone(),
        lost.clone(),
    ));
    let outcome = drive(&ctx, &policy, &claimed, &shutdown, &lost).await;
    heartbeat.abort();
    if matches!(outcome, Outcome::Done | Outcome::Interrupted)
        && let Err(err) = lease.release(ctx.store.pool()).await
    {
        tracing::warn!(%request_id, "releasing lease: {err}; it expires on its own");
    }
    outcome
}

async fn drive(
    ctx: &Context,
    policy: &RetryPolicy,
    claimed: &Claimed,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
) -> Outcome {
    let lease = &claimed.lease;
    let request_id = lease.request_id;
    let mut state = claimed.state;
    let subject = match ctx.store.subject_of(request_id).await {
        Ok(subject) => subject,
        Err(err) => {
            return fail(
                ctx,
                policy,
                claimed,
                state,
                &err.to_string(),
                err.is_transient(),
            )
            .await;
        }
    };
    loop {
        if lost.is_cancelled() {
            return Outcome::LostLease;
        }
        if shutdown.is_cancelled() {
            tracing::info!(%request_id, %state, "stopping between batches for shutdown");
            return Outcome::Interrupted;
        }
        match workflow::step(ctx, lease, state, &subject).await {
            Ok(Step::Batch { .. }) => {}
            Ok(Step::Advanced(next)) => {
                tracing::info!(%request_id, from = %state, to = %next, "advanced");
                state = next;
                if state == State::Done {
                    return Outcome::Done;
                }
            }
            Err(Error::Fenced(_)) | Err(Error::StateChanged { .. }) => {
                tracing::warn!(%request_id, "the request was taken over or changed by an operator; stopping");
                return Outcome::LostLease;
            }
            Err(err) => {
                let transient = err.is_transient();
                return fail(ctx, policy, claimed, state, &err.to_string(), transient).await;
            }
        }
    }
}

async fn fail(
    ctx: &Context,
    policy: &RetryPolicy,
    claimed: &Claimed,
    state: State,
    message: &str,
    transient: bool,
) -> Outcome {
    let request_id = claimed.lease.request_id;
    match ctx
        .store
        .record_failure(&claimed.lease, state, message, transient, policy)
        .await
    {
        Ok(Some(Decision::RetryAfter(delay))) => {
            tracing::warn!(%request_id, %state, retry_in_ms = delay.as_millis() as u64, "attempt failed: {message}");
            Outcome::RetryScheduled
        }
        Ok(Some(Decision::GiveUp)) => {
            tracing::error!(%request_id, %state, "request failed: {message}");
            Outcome::Failed
        }
        Ok(None) => Outcome::LostLease,
        Err(err) => {
            // Could not even record it (database down): the lease expires and
            // the takeover counts the attempt.
            tracing::error!(%request_id, "recording a failure ({message}): {err}");
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
