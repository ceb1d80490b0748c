//! Sending a failed call again. The AWS SDK retries each call itself
//! (`s3.sdk_max_attempts`, a second or so in all); when it gives up on a
//! transient error (throttling, 5xx, a dropped connection), lethe waits and
//! sends that same call again, up to `s3.call_retries` times with doubling,
//! jittered backoff from `s3.call_retry_backoff_ms`.
//!
//! The rule this module keeps: only the call that failed is sent again —
//! the batch around it keeps what its other calls did — so a batch of a
//! thousand calls under a steady error rate still finishes. A call that
//! fails even so fails its batch, which lethe retries durably (the request's
//! backoff, `retry.*`), keeping every checkpoint already committed.

use std::future::Future;
use std::time::Duration;

use super::ObjectError;
use crate::config::S3Settings;
use crate::retry::{Decision, RetryPolicy};

/// The ceiling of one wait between re-sends.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a failed call is sent again.
#[derive(Debug, Clone)]
pub struct Resend {
    policy: RetryPolicy,
}

impl Resend {
    pub fn from_settings(settings: &S3Settings) -> Resend {
        let initial = Duration::from_millis(settings.call_retry_backoff_ms);
        Resend {
            policy: RetryPolicy {
                max_attempts: settings.call_retries.saturating_add(1),
                initial,
                max: MAX_BACKOFF.max(initial),
            },
        }
    }

    /// How many times a failed call is sent again.
    pub fn retries(&self) -> u32 {
        self.policy.max_attempts - 1
    }

    /// The wait before the `retry`-th re-send (1-based), jittered.
    pub fn backoff(&self, retry: u32) -> Duration {
        match self.policy.decide(retry, true) {
            Decision::RetryAfter(delay) => delay,
            Decision::GiveUp => self.policy.max,
        }
    }

    /// Runs `call`, sending it again after a transient failure while
    /// re-sends are left. A permanent failure returns at once.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, ObjectError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ObjectError>>,
    {
        let mut sent = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(err) => match self.policy.decide(sent, err.is_transient()) {
                    Decision::GiveUp => return Err(err),
                    Decision::RetryAfter(delay) => {
                        tracing::debug!(
                            operation = err.operation, bucket = %err.bucket, resend = sent,
                            delay_ms = delay.as_millis() as u64,
                            "{err}; sending the call again"
                        );
                        tokio::time::sleep(delay).await;
                        sent += 1;
                    }
                },
            }
        }
    }
}

impl Default for Resend {
    fn default() -> Self {
        Resend::from_settings(&S3Settings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn quick(retries: u32) -> Resend {
        Resend::from_settings(&S3Settings {
            call_retries: retries,
            call_retry_backoff_ms: 1,
            ..S3Settings::default()
        })
    }

    #[tokio::test]
    async fn a_transient_failure_is_sent_again_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let result = quick(4)
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                    Err(ObjectError::transient("HeadObject", "b", "503".into()))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn re_sends_are_bounded_and_permanent_failures_are_not_repeated() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(2)
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ObjectError::transient("HeadObject", "b", "503".into()))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one send and two re-sends");

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = quick(5)
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(ObjectError::construction("HeadObject", "b", "bad"))
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
