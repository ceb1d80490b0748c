//! What a failed attempt leaves in a request's `last_error`: one sentence
//! an operator can act on — what failed, then what happens next, decided by
//! the retry policy and nothing else. A request that will be retried says
//! when; one parked in Failed says why it stopped and to run `lethe retry`
//! once the cause is fixed. Never a promise the verdict does not keep.

use std::time::Duration;

use uuid::Uuid;

use crate::error::Error;
use crate::retry::{Decision, Verdict};

/// A failed attempt, before the retry policy has judged it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What failed: one clause, naming request ids, tables and buckets only.
    pub what: String,
    pub transient: bool,
    /// What to fix before `lethe retry`, for a permanent failure.
    pub advice: Option<&'static str>,
}

impl Failure {
    pub fn of(err: &Error) -> Failure {
        Failure {
            what: err.to_string(),
            transient: err.is_transient(),
            advice: err.advice(),
        }
    }

    /// A failure that needs an operator, whatever the policy.
    pub fn permanent(what: String, advice: Option<&'static str>) -> Failure {
        Failure {
            what,
            transient: false,
            advice,
        }
    }

    /// The sentence stored as `last_error` under this verdict.
    pub fn describe(&self, request_id: Uuid, verdict: &Verdict) -> String {
        let what = self.what.trim_end_matches(['.', ' ']);
        match (verdict.decision, self.transient) {
            (Decision::RetryAfter(delay), _) if verdict.attempts == 0 => format!(
                "{what}; retrying in {} (the attempt made progress, so it does not count)",
                seconds(delay)
            ),
            (Decision::RetryAfter(delay), _) => format!(
                "{what}; retrying in {} ({} attempt(s) in a row without progress so far)",
                seconds(delay),
                verdict.attempts
            ),
            (Decision::GiveUp, true) => format!(
                "{what}; gave up after {} attempts in a row without progress: once the cause is \
                 fixed, `lethe retry {request_id}` resumes from the last checkpoint",
                verdict.attempts
            ),
            (Decision::GiveUp, false) => match self.advice {
                Some(advice) => format!(
                    "{what}; this does not go away by waiting: {advice}, then `lethe retry {request_id}`"
                ),
                None => what.to_owned(),
            },
        }
    }
}

fn seconds(delay: Duration) -> String {
    if delay < Duration::from_secs(1) {
        format!("{} ms", delay.as_millis())
    } else {
        format!("{:.1} s", delay.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(transient: bool) -> Failure {
        Failure {
            what: "S3 HeadObject on bucket \"b\" failed: SlowDown (HTTP 503): reduce your rate"
                .into(),
            transient,
            advice: Some("check the permissions"),
        }
    }

    #[test]
    fn a_request_that_will_not_be_retried_is_not_told_it_will() {
        let id = Uuid::nil();
        let gave_up = Verdict {
            decision: Decision::GiveUp,
            attempts: 8,
        };
        let text = failure(true).describe(id, &gave_up);
        assert!(!text.contains("retrying in"), "{text}");
        assert!(text.contains("gave up after 8 attempts"), "{text}");
        assert!(text.contains(&format!("lethe retry {id}")), "{text}");
        assert!(!text.contains('\n'));

        let text = failure(false).describe(id, &gave_up);
        assert!(
            text.contains("check the permissions, then `lethe retry"),
            "{text}"
        );

        let retrying = Verdict {
            decision: Decision::RetryAfter(Duration::from_millis(1500)),
            attempts: 2,
        };
        let text = failure(true).describe(id, &retrying);
        assert!(text.contains("retrying in 1.5 s"), "{text}");
        assert!(!text.contains("lethe retry"), "{text}");
    }
}
