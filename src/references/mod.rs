//! Reference resolution: turning what a row says about a file (a URL, an
//! `s3://` URI, or a `{bucket, key, url}` object) into the S3 object it
//! means, or a reason why it means none of ours.
//!
//! The rules this module keeps (DESIGN "References resolve to (bucket, key)"):
//! `bucket` + `key` fields win over a URL; S3 URLs in every AWS style and
//! configured CloudFront domains resolve; keys are byte-exact; a literal `+`
//! is reported as ambiguous, never guessed; objects under a protected key or
//! prefix are retained; everything else is foreign and reported.

pub mod arn;
pub mod aws_hosts;
pub mod percent;
pub mod s3_url;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::{CloudFrontOrigin, Protected, Storage};
use s3_url::{ParsedUrl, S3Host};

/// An S3 object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// What a reference resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Resolution {
    /// One of the service's objects: to be deleted.
    Object { object: ObjectRef, via: String },
    /// One of the service's objects, but shared: never deleted.
    Protected {
        object: ObjectRef,
        via: String,
        rule: String,
    },
    /// A URL path with a literal `+`: the object is `plus` or `space`
    /// (console-copied URLs write a space as `+`). Which exists decides.
    Ambiguous {
        plus: ObjectRef,
        space: ObjectRef,
        via: String,
    },
    /// Not one of the service's objects: never deleted, reported.
    Foreign { reason: String },
}

/// Resolves references against the catalog's storage facts.
#[derive(Debug, Clone)]
pub struct Resolver {
    buckets: BTreeSet<String>,
    cloudfront: Vec<CloudFrontOrigin>,
    protected: Vec<Protected>,
}

impl Resolver {
    pub fn new(storage: &Storage) -> Self {
        Resolver {
            buckets: storage.buckets.iter().cloned().collect(),
            cloudfront: storage.cloudfront.clone(),
            protected: storage.protected.clone(),
        }
    }

    /// Resolves one JSON value found at a catalog path: a string is a URL; an
    /// object is `{bucket, key}` (which wins) or `{url}`. Empty strings and
    /// nulls mean "no file" and give nothing.
    pub fn resolve_value(&self, value: &Value) -> Option<Resolution> {
        match value {
            Value::Null => None,
            Value::String(text) if text.trim().is_empty() => None,
            Value::String(text) => Some(self.resolve_url(text)),
            Value::Object(map) => {
                let field = |name: &str| {
                    map.get(name)
                        .and_then(Value::as_str)
                        .filter(|text| !text.is_empty())
                };
                match (field("bucket"), field("key"), field("url")) {
                    (Some(bucket), Some(key), _) => Some(self.classify(
                        ObjectRef {
                            bucket: bucket.to_owned(),
                            key: key.to_owned(),
                        },
                        "bucket+key fields".to_owned(),
                    )),
                    (_, _, Some(url)) => Some(self.resolve_url(url)),
                    // An object with none of the reference fields is not a
                    // reference (e.g. a whole option object read at `$`).
                    (None, None, None) => None,
                    _ => Some(Resolution::Foreign {
                        reason: "a file object with a bucket or a key but not both, and no url"
                            .to_owned(),
                    }),
                }
            }
            other => Some(Resolution::Foreign {
                reason: format!(
                    "a JSON {} where a file reference was expected",
                    json_kind(other)
                ),
            }),
        }
    }

    /// Resolves a URL or `s3://` URI.
    pub fn resolve_url(&self, url: &str) -> Resolution {
        // Leading whitespace is never part of a URL. Trailing whitespace is
        // junk after an http(s) URL (a literal space is not valid there),
        // but part of the key in an s3:// URI, which is raw.
        let url = url.trim_start();
        let url = if url
            .get(..5)
            .is_some_and(|head| head.eq_ignore_ascii_case("s3://"))
        {
            url
        } else {
            url.trim_end()
        };
        let Some(parsed) = s3_url::parse(url) else {
            return Resolution::Foreign {
                reason: "not an http(s) URL or s3:// URI".to_owned(),
            };
        };
        match parsed {
            ParsedUrl::S3Uri { bucket, key } => {
                if key.is_empty() {
                    return foreign("the s3:// URI names a bucket but no object");
                }
                self.classify(
                    ObjectRef {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    },
                    "s3:// URI".to_owned(),
                )
            }
            ParsedUrl::Http { host, path } => {
                if let Some(origin) = self
                    .cloudfront
                    .iter()
                    .find(|o| o.domain.eq_ignore_ascii_case(&host))
                {
                    let prefix = origin.origin_path.trim_matches('/');
                    return self.resolve_encoded_path(
                        &origin.bucket,
                        prefix,
                        path,
                        format!("CloudFront domain {host}"),
                    );
                }
                match s3_url::classify_host(&host) {
                    Some(S3Host::VirtualHosted { bucket, style }) => self.resolve_encoded_path(
                        &bucket,
                        "",
                        path,
                        format!("S3 URL ({style}, virtual-hosted)"),
                    ),
                    Some(S3Host::PathStyle { style }) => {
                        let Some((bucket, key_path)) = path.split_once('/') else {
                            return foreign("the path-style S3 URL names a bucket but no object");
                        };
                        self.resolve_encoded_path(
                            bucket,
                            "",
                            key_path,
                            format!("S3 URL ({style}, path-style)"),
                        )
                    }
                    None => foreign(&format!(
                        "host {host} is neither an S3 endpoint nor a configured CloudFront domain"
                    )),
                }
            }
        }
    }

    /// Builds the object from a still-encoded URL path, flagging a literal `+`.
    fn resolve_encoded_path(
        &self,
        bucket: &str,
        prefix: &str,
        path: &str,
        via: String,
    ) -> Resolution {
        let decoded = match percent::decode_path(path) {
            Ok(decoded) => decoded,
            Err(err) => return foreign(&err.to_string()),
        };
        if decoded.text.is_empty() {
            return foreign("the URL names a bucket but no object");
        }
        let join = |key: &str| {
            if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}/{key}")
            }
        };
        let object = ObjectRef {
            bucket: bucket.to_owned(),
            key: join(&decoded.text),
        };
        if decoded.has_literal_plus && self.owns(bucket) {
            let space = ObjectRef {
                bucket: bucket.to_owned(),
                key: join(&space_for_literal_plus(path)),
            };
            return Resolution::Ambiguous {
                plus: object,
                space,
                via,
            };
        }
        self.classify(object, via)
    }

    /// Decides whether an object is ours, protected, or foreign.
    pub fn classify(&self, object: ObjectRef, via: String) -> Resolution {
        if !self.owns(&object.bucket) {
            return Resolution::Foreign {
                reason: format!(
                    "bucket {:?} is not one of the service's buckets (storage.buckets)",
                    object.bucket
                ),
            };
        }
        match self.protection_rule(&object) {
            Some(rule) => Resolution::Protected { object, via, rule },
            None => Resolution::Object { object, via },
        }
    }

    fn owns(&self, bucket: &str) -> bool {
        self.buckets.contains(bucket)
    }

    /// The protection rule covering an object, if any.
    pub fn protection_rule(&self, object: &ObjectRef) -> Option<String> {
        self.protected
            .iter()
            .filter(|rule| rule.bucket == object.bucket)
            .find_map(|rule| {
                if rule.keys.iter().any(|key| key == &object.key) {
                    Some(format!("protected key in bucket {}", rule.bucket))
                } else {
                    rule.prefixes
                        .iter()
                        .find(|prefix| object.key.starts_with(prefix.as_str()))
                        .map(|prefix| {
                            format!("protected prefix {prefix:?} in bucket {}", rule.bucket)
                        })
                }
            })
    }
}

/// The path decoded with every literal `+` read as a space (encoded `%2B`
/// stays a plus).
fn space_for_literal_plus(path: &str) -> String {
    let spaced = path.replace('+', "%20");
    percent::decode_path(&spaced)
        .map(|decoded| decoded.text)
        .unwrap_or_default()
}

fn foreign(reason: &str) -> Resolution {
    Resolution::Foreign {
        reason: reason.to_owned(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolution::Object { object, via } => {
                write!(f, "object {object}\n  via {via}\n  will be deleted")
            }
            Resolution::Protected { object, via, rule } => {
                write!(f, "object {object}\n  via {via}\n  retained: {rule}")
            }
            Resolution::Ambiguous { plus, space, via } => write!(
                f,
                "ambiguous: {plus} or {space}\n  via {via}\n  a literal '+' in a URL path is a plus, or a space in console-copied URLs; \
                 lethe checks which object exists and reports an anomaly if both do"
            ),
            Resolution::Foreign { reason } => write!(
                f,
                "foreign: {reason}\n  never deleted; reported as an anomaly"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
