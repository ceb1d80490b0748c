//! S3 failures, classified once: transient (throttling, 5xx, timeouts,
//! connection trouble: back off and try again) or permanent (access denied,
//! no such bucket, bad request: an operator must act).

use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

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
    pub code: Option<String>,
    pub message: String,
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
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (kind, code) = match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().map(str::to_owned);
                let kind = ObjectErrorKind::of_code(code.as_deref().unwrap_or(""), Some(status));
                (kind, code.or_else(|| Some(format!("HTTP {status}"))))
            }
            // Could not build the request: retrying will not help.
            SdkError::ConstructionFailure(_) => (ObjectErrorKind::Permanent, None),
            // Connection refused or reset, timeouts, unreadable responses.
            _ => (ObjectErrorKind::Transient, None),
        };
        let message = match &err {
            SdkError::ServiceError(service) => service
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
            _ => DisplayErrorContext(&err).to_string(),
        };
        ObjectError {
            operation,
            bucket: bucket.to_owned(),
            kind,
            code,
            message,
        }
    }

    pub fn construction(operation: &'static str, bucket: &str, err: impl fmt::Display) -> Self {
        ObjectError {
            operation,
            bucket: bucket.to_owned(),
            kind: ObjectErrorKind::Permanent,
            code: None,
            message: err.to_string(),
        }
    }

    pub fn transient(operation: &'static str, bucket: &str, message: String) -> Self {
        ObjectError {
            operation,
            bucket: bucket.to_owned(),
            kind: ObjectErrorKind::Transient,
            code: None,
            message,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ObjectErrorKind::Transient
    }

    /// What an operator should do about it.
    fn advice(&self) -> &'static str {
        match (self.kind, self.code.as_deref()) {
            (ObjectErrorKind::Transient, _) => "will retry with backoff",
            (
                _,
                Some(
                    "AccessDenied"
                    | "AllAccessDisabled"
                    | "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch",
                ),
            ) => {
                "check lethe's credentials and its s3:DeleteObject/s3:GetObject permissions on this bucket, then `lethe retry`"
            }
            (_, Some("NoSuchBucket")) => {
                "check the bucket name in the catalog and the S3 endpoint/region, then `lethe retry`"
            }
            _ => "fix the cause, then `lethe retry`",
        }
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ObjectErrorKind::Transient => "transient",
            ObjectErrorKind::Permanent => "permanent",
        };
        write!(f, "S3 {} on bucket {:?}", self.operation, self.bucket)?;
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        write!(f, ": {} ({kind}; {})", self.message, self.advice())
    }
}
