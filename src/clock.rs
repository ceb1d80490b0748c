//! Time, injected. The off-peak windows, the pause between batches and the
//! rate limits read the time and sleep through a [`Clock`], so tests drive
//! them with a [`ManualClock`] in milliseconds instead of waiting for real
//! hours, and a daylight-saving night can be replayed at will.
//!
//! Not here, on purpose: lease expiry, the next attempt time of a retry and
//! how long an idle worker waits for the next due request use the
//! database's clock alone (computed in SQL, never compared with this
//! one), so that the hosts of many workers need not agree on the time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

/// A sleep in progress.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The time now, and a way to wait.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// Waits until `at` on `clock` (at once if it has passed).
pub fn sleep_until(clock: &dyn Clock, at: DateTime<Utc>) -> Sleep {
    clock.sleep((at - clock.now()).to_std().unwrap_or(Duration::ZERO))
}

/// The host's clock: wall-clock time, tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when told to (tests, replays).
///
/// Sleepers wake when [`ManualClock::advance`] or [`ManualClock::set`]
/// moves the time past their deadline. An auto-advancing clock instead
/// jumps forward by every sleep at once, so code that paces itself runs
/// instantly while the clock still adds up the time it would have taken.
#[derive(Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
    auto_advance: bool,
}

struct ManualState {
    now: DateTime<Utc>,
    sleepers: Vec<(DateTime<Utc>, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock standing at `start` until moved.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                now: start,
                sleepers: Vec::new(),
            })),
            auto_advance: false,
        }
    }

    /// A clock at `start` that jumps forward by each sleep.
    pub fn auto_advancing(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            auto_advance: true,
            ..ManualClock::new(start)
        }
    }

    /// Moves the time forward by `duration`, waking sleepers that are due.
    pub fn advance(&self, duration: Duration) {
        let mut state = self.lock();
        let to = state.now + duration;
        Self::move_to(&mut state, to);
    }

    /// Moves the time to `at` (never backwards), waking sleepers that are due.
    pub fn set(&self, at: DateTime<Utc>) {
        let mut state = self.lock();
        if at > state.now {
            Self::move_to(&mut state, at);
        }
    }

    /// How many sleeps are waiting (a test waits for the code under test to
    /// reach its sleep before moving the time).
    pub fn sleepers(&self) -> usize {
        let mut state = self.lock();
        state.sleepers.retain(|(_, tx)| !tx.is_closed());
        state.sleepers.len()
    }

    fn move_to(state: &mut ManualState, to: DateTime<Utc>) {
        state.now = to;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.sleepers)
            .into_iter()
            .partition(|(deadline, _)| *deadline <= to);
        state.sleepers = waiting;
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panic while holding this lock is a test failure already.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .field("auto_advance", &self.auto_advance)
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let mut state = self.lock();
        let deadline = state.now + duration;
        if self.auto_advance {
            Self::move_to(&mut state, deadline);
            return Box::pin(std::future::ready(()));
        }
        if deadline <= state.now {
            return Box::pin(std::future::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        state.sleepers.push((deadline, tx));
        Box::pin(async move {
            // A dropped clock never wakes its sleepers: neither does time
            // that no longer moves.
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 14, 6, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_the_time_passes_their_deadline() {
        let clock = ManualClock::new(start());
        let mut sleep = clock.sleep(Duration::from_secs(60));
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_secs(59));
        assert!(futures_poll(&mut sleep).is_pending(), "woke a second early");
        clock.advance(Duration::from_secs(1));
        assert!(futures_poll(&mut sleep).is_ready());
        assert_eq!(clock.now(), start() + Duration::from_secs(60));
    }

    #[tokio::test]
    async fn auto_advancing_clock_adds_up_sleeps_without_waiting() {
        let clock = ManualClock::auto_advancing(start());
        let real = std::time::Instant::now();
        for _ in 0..100 {
            clock.sleep(Duration::from_secs(3600)).await;
        }
        assert_eq!(clock.now(), start() + Duration::from_secs(100 * 3600));
        assert!(real.elapsed() < Duration::from_secs(1));
    }

    fn futures_poll(sleep: &mut Sleep) -> std::task::Poll<()> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        sleep.as_mut().poll(&mut cx)
    }
}
