//! The gate a worker asks before it claims a request and before each batch,
//! and the alarm that wakes it when a window opens or closes.
//!
//! Whether the gate is open is always computed from the windows and the
//! clock at the moment of asking ([`super::Windows::is_open`]), so it is
//! exact whichever alarm is used. The alarm only wakes a waiting worker: in
//! production a one-shot tokio-cron-scheduler job armed at the next instant
//! computed by [`super::window`] and re-armed after each fire (the crate
//! checks the wall clock every 500 ms, so a wake-up is at most half a second
//! late, and a host that slept or had its clock stepped still wakes on
//! time); with an injected clock, a sleep on that clock.

use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::{WindowState, Windows, local_and_utc};
use crate::clock::{Clock, sleep_until};

/// What wakes a worker at a window's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeups {
    /// tokio-cron-scheduler one-shot jobs on the wall clock (production).
    Scheduler,
    /// Sleeps on the gate's clock (an injected clock in tests).
    Clock,
}

/// Asks whether work may run now; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gate {
    windows: Option<Arc<Windows>>,
    clock: Arc<dyn Clock>,
    /// Bumped at each opening and closing.
    edges: watch::Receiver<u64>,
}

/// The task behind a gate's wake-ups; stop it when the worker stops.
pub struct GateDriver {
    task: JoinHandle<()>,
    scheduler: Option<JobScheduler>,
}

impl Gate {
    /// A gate that is always open (no windows, or `--ignore-window`).
    pub fn always_open(clock: Arc<dyn Clock>) -> Gate {
        let (_, edges) = watch::channel(0);
        Gate {
            windows: None,
            clock,
            edges,
        }
    }

    /// A gate over `windows`, with its alarm running.
    pub async fn start(
        windows: Windows,
        clock: Arc<dyn Clock>,
        wakeups: Wakeups,
    ) -> (Gate, GateDriver) {
        let windows = Arc::new(windows);
        let (tx, edges) = watch::channel(0);
        let scheduler = match wakeups {
            Wakeups::Clock => None,
            Wakeups::Scheduler => match start_scheduler().await {
                Ok(scheduler) => Some(scheduler),
                Err(err) => {
                    // The gate stays exact (it reads the clock); only the
                    // wake-up falls back to tokio's timer.
                    tracing::warn!(
                        "starting tokio-cron-scheduler: {err}; waking at window edges with tokio's timer instead"
                    );
                    None
                }
            },
        };
        let task = tokio::spawn(run_alarm(
            windows.clone(),
            clock.clone(),
            scheduler.clone(),
            tx,
        ));
        let gate = Gate {
            windows: Some(windows),
            clock,
            edges,
        };
        (gate, GateDriver { task, scheduler })
    }

    /// Whether work may run now.
    pub fn is_open(&self) -> bool {
        match &self.windows {
            None => true,
            Some(windows) => windows.is_open(self.clock.now()),
        }
    }

    /// The windows' state now; `None` when there are no windows.
    pub fn state(&self) -> Option<WindowState> {
        self.windows
            .as_ref()
            .map(|windows| windows.state_at(self.clock.now()))
    }

    /// A copy whose [`Gate::edge`] waits for edges after now only (a clone
    /// also sees an edge its original has not yet waited for).
    pub fn from_now(&self) -> Gate {
        let mut gate = self.clone();
        gate.edges.borrow_and_update();
        gate
    }

    /// Resolves at the next opening or closing not yet waited for (never,
    /// without windows).
    pub async fn edge(&mut self) {
        if self.windows.is_none() || self.edges.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl GateDriver {
    pub async fn stop(self) {
        self.task.abort();
        if let Some(mut scheduler) = self.scheduler
            && let Err(err) = scheduler.shutdown().await
        {
            tracing::debug!("stopping tokio-cron-scheduler: {err}");
        }
    }
}

async fn start_scheduler() -> Result<JobScheduler, tokio_cron_scheduler::JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    scheduler.start().await?;
    Ok(scheduler)
}

/// Announces each edge, then sleeps until the next one.
async fn run_alarm(
    windows: Arc<Windows>,
    clock: Arc<dyn Clock>,
    scheduler: Option<JobScheduler>,
    edges: watch::Sender<u64>,
) {
    let mut was_open = None;
    loop {
        let state = windows.state_at(clock.now());
        if was_open != Some(state.open) {
            if was_open.is_some() {
                edges.send_modify(|n| *n += 1);
            }
            announce(&state);
            was_open = Some(state.open);
        }
        let Some(at) = state.next_change() else {
            return;
        };
        match &scheduler {
            Some(scheduler) => wake_at(scheduler, clock.as_ref(), at).await,
            None => sleep_until(clock.as_ref(), at).await,
        }
    }
}

fn announce(state: &WindowState) {
    match (state.open, state.closes_at, state.next_opens_at) {
        (true, Some(close), _) => tracing::info!(
            closes_at = %close,
            "off-peak window open until {}",
            local_and_utc(close, state.time_zone)
        ),
        (true, None, _) => tracing::info!("off-peak window open"),
        (false, _, Some(next)) => tracing::info!(
            next_opens_at = %next,
            "off-peak window closed: no new batches until {}",
            local_and_utc(next, state.time_zone)
        ),
        (false, _, None) => tracing::warn!(
            "off-peak window closed and no window opens again; check the [[window]] settings"
        ),
    }
}

/// One tokio-cron-scheduler one-shot job at `at`; the clock's own sleep if
/// the job cannot be added.
async fn wake_at(scheduler: &JobScheduler, clock: &dyn Clock, at: chrono::DateTime<chrono::Utc>) {
    let wait = (at - clock.now()).to_std().unwrap_or_default();
    let (tx, rx) = oneshot::channel::<()>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let job = Job::new_one_shot_async(wait, move |_, _| {
        let tx = tx.clone();
        Box::pin(async move {
            if let Some(tx) = tx.lock().ok().and_then(|mut slot| slot.take()) {
                let _ = tx.send(());
            }
        })
    });
    let added = match job {
        Ok(job) => scheduler.add(job).await,
        Err(err) => Err(err),
    };
    match added {
        Ok(_) => {
            if rx.await.is_err() {
                sleep_until(clock, at).await;
            }
        }
        Err(err) => {
            tracing::warn!("arming the window alarm: {err}; using tokio's timer");
            sleep_until(clock, at).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::clock::{ManualClock, SystemClock};
    use crate::schedule::WindowSpec;

    fn every_other_second() -> Windows {
        Windows::parse(&[WindowSpec {
            cron: "*/2 * * * * *".into(),
            duration: "1s".into(),
            time_zone: "Asia/Seoul".into(),
        }])
        .unwrap()
        .unwrap()
    }

    /// The production alarm, on the real clock: tokio-cron-scheduler
    /// one-shot jobs at the computed edges wake the gate within its 500 ms
    /// tick, open at even seconds and closed at odd ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokio_cron_scheduler_wakes_the_gate_at_each_edge() {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (mut gate, driver) =
            Gate::start(every_other_second(), clock.clone(), Wakeups::Scheduler).await;
        let mut opened = 0;
        let mut closed = 0;
        for _ in 0..4 {
            let expected = gate.state().unwrap().next_change().unwrap();
            tokio::time::timeout(Duration::from_secs(3), gate.edge())
                .await
                .expect("an edge within 3 s");
            let late = Utc::now() - expected;
            assert!(
                // 500 ms is the crate's tick; the rest is a busy machine.
                late >= chrono::TimeDelta::zero() && late < chrono::TimeDelta::milliseconds(1000),
                "woke {late} after the edge"
            );
            if gate.is_open() {
                opened += 1;
            } else {
                closed += 1;
            }
        }
        driver.stop().await;
        assert_eq!((opened, closed), (2, 2));
    }

    #[tokio::test]
    async fn with_an_injected_clock_the_gate_wakes_when_the_clock_moves() {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 1).unwrap());
        let (mut gate, driver) = Gate::start(
            every_other_second(),
            Arc::new(clock.clone()),
            Wakeups::Clock,
        )
        .await;
        assert!(!gate.is_open());
        let edge = tokio::spawn(async move {
            gate.edge().await;
            gate
        });
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(1));
        let gate = tokio::time::timeout(Duration::from_secs(5), edge)
            .await
            .expect("woken by the clock")
            .unwrap();
        assert!(gate.is_open());
        driver.stop().await;
        assert!(Gate::always_open(Arc::new(clock)).is_open());
    }
}
