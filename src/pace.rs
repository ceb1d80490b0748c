//! Load control: how hard one worker process may push the production
//! database and S3. At most `max_objects_per_sec` objects deleted and
//! `max_rows_per_sec` rows masked per second, shared by every request the
//! process advances, and a pause between one request's batches.
//!
//! The rule this module keeps: a limit is paid *before* the work. A batch of
//! n items waits until n / rate seconds after the previous allowance ended
//! (or after now, if the worker was idle), then runs. So from a worker's
//! start, items done never exceed rate × elapsed time, and the excess over
//! any shorter stretch is at most one batch. The wait comes before the
//! batch's side effects, so a shutdown during it, or the off-peak window
//! closing, gives the batch up at a safe point: nothing of it has happened
//! yet, and it has not started, so no batch starts after a window's close.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock, sleep_until};
use crate::config::WorkerSettings;
use crate::schedule::Gate;

/// Whether a batch may start after its wait: control flow, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Given up before any of its side effects.
    Stop(StopReason),
}

/// Why a worker stops before a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The worker is shutting down (SIGINT/SIGTERM).
    Shutdown,
    /// The off-peak window closed while the batch waited.
    WindowClosed,
}

/// One rate limit, shared by the tasks of a worker process.
#[derive(Debug)]
pub struct RateLimit {
    /// Items per second; `None` is no limit.
    per_sec: Option<f64>,
    /// When the allowance handed out so far runs out.
    paid_until: Mutex<Option<DateTime<Utc>>>,
}

impl RateLimit {
    /// `0` means no limit.
    pub fn per_second(rate: u32) -> RateLimit {
        RateLimit {
            per_sec: (rate > 0).then_some(f64::from(rate)),
            paid_until: Mutex::new(None),
        }
    }

    /// Reserves `n` items and returns when they may go.
    fn reserve(&self, clock: &dyn Clock, n: u64) -> Option<DateTime<Utc>> {
        let per_sec = self.per_sec?;
        if n == 0 {
            return None;
        }
        let now = clock.now();
        let mut paid = self
            .paid_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let from = paid.map_or(now, |until| until.max(now));
        let cost = Duration::from_secs_f64(n as f64 / per_sec);
        let until = from + cost;
        *paid = Some(until);
        Some(until)
    }
}

/// The load limits of one worker process, with its clock and its shutdown.
#[derive(Debug, Clone)]
pub struct Pace {
    objects: Arc<RateLimit>,
    rows: Arc<RateLimit>,
    pause: Duration,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
    /// The off-peak windows: a batch whose allowance comes after the close
    /// does not start.
    gate: Option<Gate>,
}

impl Pace {
    pub fn new(settings: &WorkerSettings, clock: Arc<dyn Clock>, stop: CancellationToken) -> Pace {
        Pace {
            objects: Arc::new(RateLimit::per_second(settings.max_objects_per_sec)),
            rows: Arc::new(RateLimit::per_second(settings.max_rows_per_sec)),
            pause: Duration::from_millis(settings.pause_between_batches_ms),
            clock,
            stop,
            gate: None,
        }
    }

    /// No limits at all (for callers that do no erasing, e.g. a dry run).
    pub fn unlimited() -> Pace {
        Pace {
            objects: Arc::new(RateLimit::per_second(0)),
            rows: Arc::new(RateLimit::per_second(0)),
            pause: Duration::ZERO,
            clock: Arc::new(SystemClock),
            stop: CancellationToken::new(),
            gate: None,
        }
    }

    /// The same limits (still shared), with waits cut short by `stop`.
    pub fn with_stop(mut self, stop: CancellationToken) -> Pace {
        self.stop = stop;
        self
    }

    /// The same limits (still shared), giving up a waiting batch when the
    /// off-peak window closes.
    pub fn with_gate(mut self, gate: Gate) -> Pace {
        self.gate = Some(gate);
        self
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Waits until `n` more objects may be deleted.
    pub async fn objects(&self, n: usize) -> Admission {
        self.wait(&self.objects, n).await
    }

    /// Waits until `n` more rows may be masked.
    pub async fn rows(&self, n: usize) -> Admission {
        self.wait(&self.rows, n).await
    }

    /// The pause after a batch; cut short by a shutdown (returns false then).
    pub async fn pause_between_batches(&self) -> bool {
        if self.pause.is_zero() {
            return !self.stop.is_cancelled();
        }
        tokio::select! {
            _ = self.clock.sleep(self.pause) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    async fn wait(&self, limit: &RateLimit, n: usize) -> Admission {
        let Some(until) = limit.reserve(self.clock.as_ref(), n as u64) else {
            return Admission::Go;
        };
        let mut gate = self.gate.as_ref().map(Gate::from_now);
        let edge = async {
            match gate.as_mut() {
                Some(gate) => gate.edge().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep_until(self.clock.as_ref(), until) => {}
            _ = edge => {}
            _ = self.stop.cancelled() => return Admission::Stop(StopReason::Shutdown),
        }
        match &self.gate {
            Some(gate) if !gate.is_open() => Admission::Stop(StopReason::WindowClosed),
            _ => Admission::Go,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    fn settings(objects: u32, rows: u32) -> WorkerSettings {
        WorkerSettings {
            max_objects_per_sec: objects,
            max_rows_per_sec: rows,
            pause_between_batches_ms: 200,
            ..WorkerSettings::default()
        }
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
    }

    /// Items done by each moment never exceed rate × time since the start.
    #[tokio::test]
    async fn objects_never_outrun_the_rate_from_the_start() {
        let clock = ManualClock::auto_advancing(start());
        let pace = Pace::new(
            &settings(200, 0),
            Arc::new(clock.clone()),
            CancellationToken::new(),
        );
        let mut done = 0u64;
        for batch in [1000, 1, 250, 999, 50] {
            assert_eq!(pace.objects(batch).await, Admission::Go);
            done += batch as u64;
            let elapsed = (clock.now() - start()).to_std().unwrap().as_secs_f64();
            assert!(
                done as f64 <= 200.0 * elapsed + 1e-6,
                "{done} objects after {elapsed} s"
            );
        }
        // And not slower than needed: 2,300 objects at 200/s is 11.5 s.
        assert_eq!(
            clock.now() - start(),
            chrono::TimeDelta::milliseconds(11_500)
        );
    }

    #[tokio::test]
    async fn one_limit_is_shared_by_concurrent_requests() {
        let clock = ManualClock::new(start());
        let pace = Pace::new(
            &settings(0, 1000),
            Arc::new(clock.clone()),
            CancellationToken::new(),
        );
        // Two requests ask for 500 rows each at the same moment: the second
        // goes a second after the first, not together with it.
        let (a, b) = (pace.clone(), pace.clone());
        let first = tokio::spawn(async move { a.rows(500).await });
        let second = tokio::spawn(async move { b.rows(500).await });
        while clock.sleepers() < 2 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_millis(500));
        assert_eq!(first.await.unwrap(), Admission::Go);
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "the second batch went early");
        clock.advance(Duration::from_millis(500));
        assert_eq!(second.await.unwrap(), Admission::Go);
    }

    #[tokio::test]
    async fn a_batch_waiting_when_the_window_closes_is_given_up() {
        use crate::schedule::{Wakeups, WindowSpec, Windows};
        // Open at midnight UTC for 10 s.
        let windows = Windows::parse(&[WindowSpec {
            cron: "0 0 0 * * *".into(),
            duration: "10s".into(),
            time_zone: "UTC".into(),
        }])
        .unwrap()
        .unwrap();
        let clock = ManualClock::new(start() - Duration::from_secs(1));
        let (mut gate, driver) =
            crate::schedule::Gate::start(windows, Arc::new(clock.clone()), Wakeups::Clock).await;
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(1));
        gate.edge().await;
        assert!(gate.is_open());
        let pace = Pace::new(
            &settings(0, 10),
            Arc::new(clock.clone()),
            CancellationToken::new(),
        )
        .with_gate(gate.clone());

        // The opening edge, already past, does not cut a wait short.
        let waiting = tokio::spawn({
            let pace = pace.clone();
            async move { pace.rows(20).await }
        });
        while clock.sleepers() < 2 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(1));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "went a second early");
        clock.advance(Duration::from_secs(1));
        assert_eq!(waiting.await.unwrap(), Admission::Go);

        // 100 rows take 10 s; the window closes 8 s from now.
        let waiting = tokio::spawn({
            let pace = pace.clone();
            async move { pace.rows(100).await }
        });
        while clock.sleepers() < 2 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(8));
        assert_eq!(
            waiting.await.unwrap(),
            Admission::Stop(StopReason::WindowClosed)
        );
        driver.stop().await;
    }

    #[tokio::test]
    async fn no_limit_means_no_wait_and_shutdown_cuts_a_wait_short() {
        let clock = ManualClock::new(start());
        let stop = CancellationToken::new();
        let pace = Pace::new(&settings(0, 10), Arc::new(clock.clone()), stop.clone());
        assert_eq!(pace.objects(1_000_000).await, Admission::Go);
        let waiting = tokio::spawn({
            let pace = pace.clone();
            async move { pace.rows(100).await }
        });
        while clock.sleepers() < 1 {
            tokio::task::yield_now().await;
        }
        stop.cancel();
        assert_eq!(
            waiting.await.unwrap(),
            Admission::Stop(StopReason::Shutdown)
        );
        assert!(
            !pace.pause_between_batches().await,
            "a stopped pause says so"
        );
    }
}
