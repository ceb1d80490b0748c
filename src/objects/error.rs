//! S3 failures, classified once: transient (throttling, 5xx, timeouts,
//! connection trouble: back off and try again) or permanent (access denied,
//! no such bucket, bad request: an operator must act).
//!
//! The rule this module keeps: an error's text is one short clause an
//! operator can read in `lethe status` — the operation, the bucket, the S3
//! code and the innermost cause (e.g. "Connection refused") — never the
//! SDK's nested debug dump, and never a promise about what happens next
//! (whether lethe retries is the worker's to say, see `crate::worker`). The
//! full SDK error is kept as the source, for logs.

use std::fmt;
use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectErrorKind {
    Transient,
    Permanent,
}

/// A failed S3 call. Names the operation and bucket, never the key.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ObjectError {
    pub operation: &'static str,
    pub bucket: String,
    pub kind: ObjectErrorKind,
    /// The S3 error code (`SlowDown`, `AccessDenied`), when S3 gave one.
    pub code: Option<String>,
    /// The HTTP status, when S3 answered.
    pub status: Option<u16>,
    /// One short clause: S3's message, or the innermost cause.
    pub message: String,
    /// The SDK's error, for logs; shared so that the error stays `Clone`.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// S3 error codes that mean "try again later".
const TRANSIENT_CODES: [&str; 8] = [
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "Throttling",
    "ThrottlingException",
    "OperationAborted",
];

/// Longest message kept from a server or a cause: enough for a sentence.
const MAX_MESSAGE_CHARS: usize = 200;

impl ObjectErrorKind {
    /// Classifies by S3 error code, and by HTTP status when there is one.
    pub fn of_code(code: &str, status: Option<u16>) -> Self {
        if TRANSIENT_CODES.contains(&code) || status.is_some_and(|s| s >= 500 || s == 429) {
            ObjectErrorKind::Transient
        } else {
            ObjectErrorKind::Permanent
        }
    }
}

impl ObjectError {
    pub fn from_sdk<E>(
        operation: &'static str,
        bucket: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (kind, code, status, message) = match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().map(str::to_owned);
                let kind = ObjectErrorKind::of_code(code.as_deref().unwrap_or(""), Some(status));
                let message = service
                    .err()
                    .message()
                    .filter(|m| !m.trim().is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        // HeadObject answers carry no body, so no code or message.
                        match status {
                            403 => "access denied".to_owned(),
                            404 => "not found".to_owned(),
                            _ => "no message".to_owned(),
                        }
                    });
                (kind, code, Some(status), message)
            }
            // Could not build the request: retrying will not help.
            SdkError::ConstructionFailure(_) => (
                ObjectErrorKind::Permanent,
                None,
                None,
                format!("could not build the request: {}", innermost(&err)),
            ),
            SdkError::TimeoutError(_) => (
                ObjectErrorKind::Transient,
                None,
                None,
                format!("timed out: {}", innermost(&err)),
            ),
            SdkError::DispatchFailure(_) => (
                ObjectErrorKind::Transient,
                None,
                None,
                format!("could not reach S3: {}", innermost(&err)),
            ),
            // Unreadable or cut-off responses, and anything new.
            _ => (
                ObjectErrorKind::Transient,
                None,
                None,
                format!("unreadable response: {}", innermost(&err)),
            ),
        };
        ObjectError {
            operation,
            bucket: bucket.to_owned(),
            kind,
            code,
            status,
            message: clip(&message),
            source: Some(Arc::new(err)),
        }
    }

    pub fn construction(operation: &'static str, bucket: &str, err: impl fmt::Display) -> Self {
        ObjectError {
            operation,
            bucket: bucket.to_owned(),
            kind: ObjectErrorKind::Permanent,
            code: None,
            status: None,
            message: clip(&err.to_string()),
            source: None,
        }
    }

    pub fn transient(operation: &'static str, bucket: &str, message: String) -> Self {
        ObjectError {
            operation,
            bucket: bucket.to_owned(),
            kind: ObjectErrorKind::Transient,
            code: None,
            status: None,
            message: clip(&message),
            source: None,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ObjectErrorKind::Transient
    }

    /// S3 says the bucket does not exist.
    pub fn is_no_such_bucket(&self) -> bool {
        self.code.as_deref() == Some("NoSuchBucket")
    }

    /// What an operator should do about a permanent error (`None` for a
    /// transient one: that is the retry policy's business).
    pub fn advice(&self) -> Option<&'static str> {
        if self.is_transient() {
            return None;
        }
        Some(match self.code.as_deref() {
            Some(
                "AccessDenied"
                | "AllAccessDisabled"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch",
            ) => {
                "check lethe's credentials and permissions on this bucket (`lethe check` names the missing one)"
            }
            _ if self.status == Some(403) => {
                "check lethe's credentials and permissions on this bucket (`lethe check` names the missing one)"
            }
            Some("NoSuchBucket") => {
                "check the bucket name in the catalog and the S3 endpoint and region"
            }
            _ => "fix the cause",
        })
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S3 {} on bucket {:?} failed: ",
            self.operation, self.bucket
        )?;
        match (&self.code, self.status) {
            (Some(code), Some(status)) => write!(f, "{code} (HTTP {status}): ")?,
            (Some(code), None) => write!(f, "{code}: ")?,
            (None, Some(status)) => write!(f, "HTTP {status}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

/// The deepest cause in an error's chain: "Connection refused (os error
/// 111)" rather than the five layers around it.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// One line, at most [`MAX_MESSAGE_CHARS`] characters.
fn clip(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_short_line() {
        let long = format!("first line\n{}", "x".repeat(500));
        let clipped = clip(&long);
        assert!(!clipped.contains('\n'));
        assert!(clipped.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn display_names_operation_bucket_code_and_status_without_retry_promises() {
        let err = ObjectError {
            operation: "HeadObject",
            bucket: "b".into(),
            kind: ObjectErrorKind::Transient,
            code: Some("SlowDown".into()),
            status: Some(503),
            message: "Please reduce your request rate.".into(),
            source: None,
        };
        assert_eq!(
            err.to_string(),
            "S3 HeadObject on bucket \"b\" failed: SlowDown (HTTP 503): Please reduce your request rate."
        );
        assert_eq!(err.advice(), None);
    }
}
