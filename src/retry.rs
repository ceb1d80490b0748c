//! The retry policy: exponential backoff with jitter, bounded by a number of
//! consecutive failed attempts. It is our own small policy rather than a
//! crate's, because lethe's retries are durable: the next attempt time is
//! stored on the request in the database (any worker may make the attempt,
//! after any restart), so an in-process retry loop would be the wrong shape.
//! Inside one attempt, each S3 call also gets the AWS SDK's standard retry.

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
    fn jitter_source_stays_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
