//! Reference resolution: turning what a row says about a file (a URL, an
//! `s3://`/`s3a://`/`s3n://` URI, or a `{bucket, key, url}` object) into the
//! S3 object it means, or a reason why it means none of ours; and naming the
//! form that matched, for `explain-ref`.
//!
//! The rules this module keeps (DESIGN "References resolve to (bucket, key)"):
//! `bucket` + `key` fields win over a URL; S3 URLs in every host form AWS
//! serves a bucket on ([`aws_hosts`]) and configured CloudFront domains
//! resolve; an access point's bucket is its ARN ([`arn`]); a bucket is
//! compared exactly, as written (a path-style URL's bucket keeps its case);
//! keys are byte-exact; a literal `+` is reported as ambiguous, never
//! guessed; objects under a protected key or prefix are retained; everything
//! else is foreign and reported, with a reason that repeats nothing of the
//! reference beyond its host and bucket.

pub mod arn;
pub mod aws_hosts;
mod forms;
pub mod percent;
pub mod s3_url;

pub use forms::Found;

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

/// A resolution and the form of reference that matched, for `explain-ref`:
/// every outcome names its form, a foreign one too ("not recognised" when
/// none matched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The form: "S3 URL (FIPS dualstack, virtual-hosted)", "S3 access
    /// point hostname", "s3a:// URI (Hadoop)", "bucket+key fields", ...
    pub form: String,
    #[serde(flatten)]
    pub resolution: Resolution,
}

impl Explanation {
    fn new(form: String, resolution: Resolution) -> Self {
        Explanation { form, resolution }
    }

    fn foreign(form: &str, reason: String) -> Self {
        Explanation {
            form: form.to_owned(),
            resolution: Resolution::Foreign { reason },
        }
    }
}

/// Resolves references against the catalog's storage facts.
#[derive(Debug, Clone)]
pub struct Resolver {
    buckets: BTreeSet<String>,
    cloudfront: Vec<CloudFrontOrigin>,
    protected: Vec<Protected>,
    /// Every bucket counts as the service's (`catalog init`, which is out
    /// to learn which buckets a service uses).
    any_bucket: bool,
}

impl Resolver {
    pub fn new(storage: &Storage) -> Self {
        Resolver {
            buckets: storage.buckets.iter().cloned().collect(),
            cloudfront: storage.cloudfront.clone(),
            protected: storage.protected.clone(),
            any_bucket: false,
        }
    }

    /// A resolver for which every bucket is the service's, with these CDN
    /// domains: what object a URL names, whatever its bucket.
    pub fn accepting_any_bucket(cloudfront: Vec<CloudFrontOrigin>) -> Self {
        Resolver {
            buckets: BTreeSet::new(),
            cloudfront,
            protected: Vec::new(),
            any_bucket: true,
        }
    }

    /// Resolves one JSON value found at a catalog path: a string is a URL; an
    /// object is `{bucket, key}` (which wins) or `{url}`. Empty strings and
    /// nulls mean "no file" and give nothing.
    pub fn resolve_value(&self, value: &Value) -> Option<Resolution> {
        self.explain_value(value)
            .map(|explanation| explanation.resolution)
    }

    /// Resolves a URL or `s3://` URI.
    pub fn resolve_url(&self, url: &str) -> Resolution {
        self.explain_url(url).resolution
    }

    /// [`Self::resolve_value`], with the form that matched, for
    /// `explain-ref`.
    pub fn explain_value(&self, value: &Value) -> Option<Explanation> {
        match value {
            Value::Null => None,
            Value::String(text) if text.trim().is_empty() => None,
            Value::String(text) => Some(self.explain_url(text)),
            Value::Object(map) => {
                let field = |name: &str| {
                    map.get(name)
                        .and_then(Value::as_str)
                        .filter(|text| !text.is_empty())
                };
                match (field("bucket"), field("key"), field("url")) {
                    (Some(bucket), Some(key), _) => {
                        let form = "bucket+key fields".to_owned();
                        let object = ObjectRef {
                            bucket: bucket.to_owned(),
                            key: key.to_owned(),
                        };
                        Some(Explanation::new(form.clone(), self.classify(object, form)))
                    }
                    (_, _, Some(url)) => Some(self.explain_url(url)),
                    // An object with none of the reference fields is not a
                    // reference (e.g. a whole option object read at `$`).
                    (None, None, None) => None,
                    _ => Some(Explanation::foreign(
                        "file object",
                        "a file object with a bucket or a key but not both, and no url".to_owned(),
                    )),
                }
            }
            other => Some(Explanation::foreign(
                &format!("JSON {}", json_kind(other)),
                format!(
                    "a JSON {} where a file reference was expected",
                    json_kind(other)
                ),
            )),
        }
    }

    /// [`Self::resolve_url`], with the form that matched, for `explain-ref`.
    pub fn explain_url(&self, url: &str) -> Explanation {
        // Leading whitespace is never part of a URL. Trailing whitespace is
        // junk after an http(s) URL (a literal space is not valid there),
        // but part of the key in an s3:// URI, which is raw.
        let url = url.trim_start();
        let url = if s3_url::is_s3_uri(url) {
            url
        } else {
            url.trim_end()
        };
        let parsed = match s3_url::parse(url) {
            Ok(parsed) => parsed,
            Err(err) => return Explanation::foreign(NOT_RECOGNISED, err.to_string()),
        };
        match parsed {
            ParsedUrl::S3Uri(uri) => {
                let form = uri.form();
                if uri.bucket.is_empty() {
                    return Explanation::foreign(&form, "the URI names no bucket".to_owned());
                }
                if uri.key.is_empty() {
                    return Explanation::foreign(
                        &form,
                        "the URI names a bucket but no object".to_owned(),
                    );
                }
                let object = ObjectRef {
                    bucket: uri.bucket,
                    key: uri.key.to_owned(),
                };
                Explanation::new(form.clone(), self.classify(object, form))
            }
            ParsedUrl::Http { host, path } => self.explain_http(&host, path),
        }
    }

    fn explain_http(&self, host: &str, path: &str) -> Explanation {
        if let Some(origin) = self
            .cloudfront
            .iter()
            .find(|o| o.domain.eq_ignore_ascii_case(host))
        {
            let prefix = origin.origin_path.trim_matches('/');
            let form = format!("CloudFront domain {host}");
            return Explanation::new(
                form.clone(),
                self.resolve_encoded_path(&origin.bucket, prefix, path, form),
            );
        }
        match s3_url::classify_host(host) {
            Some(S3Host::VirtualHosted { bucket, form }) => Explanation::new(
                form.clone(),
                self.resolve_encoded_path(&bucket, "", path, form),
            ),
            Some(S3Host::PathStyle { form }) => {
                let Some((segment, key_path)) = path.split_once('/') else {
                    return Explanation::foreign(
                        &form,
                        "the path-style URL names a bucket but no object".to_owned(),
                    );
                };
                let bucket = match path_style_bucket(segment) {
                    Ok(bucket) => bucket,
                    Err(reason) => return Explanation::foreign(&form, reason),
                };
                Explanation::new(
                    form.clone(),
                    self.resolve_encoded_path(&bucket, "", key_path, form),
                )
            }
            Some(S3Host::Unaddressable { form, reason }) => {
                Explanation::foreign(&form, reason.to_owned())
            }
            None => Explanation::foreign(
                NOT_RECOGNISED,
                format!("host {host} is neither an S3 endpoint nor a configured CloudFront domain"),
            ),
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
    /// Buckets compare exactly, as written: a path-style URL's bucket keeps
    /// its case, and an access point is its ARN.
    pub fn classify(&self, object: ObjectRef, via: String) -> Resolution {
        if !self.owns(&object.bucket) {
            return Resolution::Foreign {
                reason: format!(
                    "{} is not one of the service's buckets (storage.buckets)",
                    describe_bucket(&object.bucket)
                ),
            };
        }
        match self.protection_rule(&object) {
            Some(rule) => Resolution::Protected { object, via, rule },
            None => Resolution::Object { object, via },
        }
    }

    fn owns(&self, bucket: &str) -> bool {
        self.any_bucket || self.buckets.contains(bucket)
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

/// The bucket a path-style URL's first segment names: percent-decoded
/// (`my%2Dbucket` is `my-bucket`), case kept as written.
fn path_style_bucket(segment: &str) -> Result<String, String> {
    let decoded = percent::decode_path(segment).map_err(|err| err.to_string())?;
    if decoded.text.is_empty() {
        return Err("the path-style URL names no bucket".to_owned());
    }
    if decoded.text.contains('/') {
        return Err("the path-style URL's bucket holds an encoded '/'".to_owned());
    }
    Ok(decoded.text)
}

/// A bucket for a message: quoted when it could be a bucket name or an
/// access point ARN, described otherwise, so that a message never repeats
/// text that may be a member's data.
fn describe_bucket(bucket: &str) -> String {
    let plausible = (1..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        || bucket.starts_with("arn:")
            && bucket.len() <= 200
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'/'));
    if plausible {
        format!("bucket {bucket:?}")
    } else {
        "a bucket that is not a valid bucket name".to_owned()
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

/// The form of a reference that matched none.
const NOT_RECOGNISED: &str = "not recognised";

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

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resolution {
            // The other outcomes print the form as their `via`.
            Resolution::Foreign { reason } => write!(
                f,
                "foreign: {reason}\n  form: {}\n  never deleted; reported as an anomaly",
                self.form
            ),
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests;
