//! The retry policy: exponential backoff with jitter, bounded by a number of
//! consecutive failed attempts. It is our own small policy rather than a
//! crate's, because lethe's retries are durable: the next attempt time is
//! stored on the request in the database (any worker may make the attempt,
//! after any restart), so an in-process retry loop would be the wrong shape.
//! Inside one attempt, each S3 call also gets the AWS SDK's standard retry,
//! and lethe sends a call the SDK gave up on again
//! ([`crate::objects::Resend`], the same backoff shape).
//!
//! The rule this module keeps: only attempts that made no progress count.
//! An attempt (one lease) that committed a batch or advanced a phase and
//! then failed on a transient error is retried after the first backoff and
//! leaves the count at zero; `max_attempts` is a number of attempts *in a
//! row* that achieved nothing.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::config::RetrySettings;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after this long.
    RetryAfter(Duration),
    /// Stop: park the request in Failed.
    GiveUp,
}

/// A decision, and the count of attempts in a row without progress to
/// store with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub attempts: u32,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_settings(settings: &RetrySettings) -> Self {
        RetryPolicy {
            max_attempts: settings.max_attempts,
            initial: Duration::from_millis(settings.initial_backoff_ms),
            max: Duration::from_millis(settings.max_backoff_ms.max(settings.initial_backoff_ms)),
        }
    }

    /// Decides after the `attempt`-th consecutive failure (1-based).
    /// Permanent errors give up at once; transient ones back off until
    /// `max_attempts` failures.
    pub fn decide(&self, attempt: u32, transient: bool) -> Decision {
        if !transient || attempt >= self.max_attempts {
            Decision::GiveUp
        } else {
            Decision::RetryAfter(self.backoff(attempt, random_unit()))
        }
    }

    /// Decides after a failed attempt. `failures` counts the attempts in a
    /// row before this one that made no progress; `progressed` says whether
    /// this one committed anything. Returns the decision and the new count.
    pub fn after_failure(&self, failures: u32, progressed: bool, transient: bool) -> Verdict {
        let attempts = if progressed && transient {
            0
        } else {
            failures.saturating_add(1)
        };
        let decision = if progressed && transient {
            Decision::RetryAfter(self.backoff(1, random_unit()))
        } else {
            self.decide(attempts, transient)
        };
        Verdict { decision, attempts }
    }

    /// "Equal jitter": half the exponential delay, plus up to the other half
    /// at random, so retries of many requests spread out but never come
    /// sooner than half the nominal delay. `unit` is in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let nominal = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let half = nominal / 2;
        half + half.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A random number in [0, 1), from the standard library's randomly keyed
/// hasher: enough for jitter, without a dependency.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(2));
        assert_eq!(p.backoff(20, 1.0), Duration::from_secs(10));
        for attempt in 1..10 {
            let d = p.backoff(attempt, random_unit());
            let nominal = Duration::from_secs(1 << (attempt - 1)).min(p.max);
            assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn permanent_errors_and_exhausted_attempts_give_up() {
        let p = policy();
        assert_eq!(p.decide(1, false), Decision::GiveUp);
        assert!(matches!(p.decide(4, true), Decision::RetryAfter(_)));
        assert_eq!(p.decide(5, true), Decision::GiveUp);
    }

    #[test]
    fn only_attempts_without_progress_count() {
        let p = policy();
        // Progress then a transient failure: not counted, however many.
        for _ in 0..20 {
            let verdict = p.after_failure(0, true, true);
            assert_eq!(verdict.attempts, 0);
            assert!(matches!(verdict.decision, Decision::RetryAfter(d) if d <= p.initial));
        }
        // Without progress they add up to max_attempts.
        assert_eq!(p.after_failure(3, false, true).attempts, 4);
        assert!(matches!(
            p.after_failure(3, false, true).decision,
            Decision::RetryAfter(_)
        ));
        assert_eq!(p.after_failure(4, false, true).decision, Decision::GiveUp);
        // A permanent error gives up whatever came before.
        assert_eq!(p.after_failure(0, true, false).decision, Decision::GiveUp);
        assert_eq!(p.after_failure(0, true, false).attempts, 1);
    }

    #[test]
    fn jitter_source_stays_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
