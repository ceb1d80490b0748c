//! A value found at a catalog path, read in the form the catalog declares
//! for that path: inferred (`auto`: a string is a URL, an object is
//! `{bucket, key}` or `{url}`), a URL, a `{bucket, key}` object, or a bare
//! key whose bucket (and prefix) the catalog fixes.
//!
//! The rule this module keeps: a value of another shape than its form is
//! [`Found::Unrecognised`] — reported by discovery, never guessed at — and
//! an empty value (null, `""`) is no reference.

use serde_json::Value;

use super::{ObjectRef, Resolution, Resolver};
use crate::catalog::RefForm;

/// What a value at a catalog path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A reference, resolved.
    Reference(Resolution),
    /// No reference (empty, or a whole document read at `$`).
    Nothing,
    /// A value of a shape the form does not allow, and why.
    Unrecognised(String),
}

impl Resolver {
    /// Reads `value` as a reference of `form`. `bucket` and `prefix` are
    /// the catalog's, for bare keys; `at_root` says the value is a whole
    /// column read at `$`, where a JSON object or array is a document,
    /// not a reference.
    pub fn resolve_form(
        &self,
        value: &Value,
        form: RefForm,
        bucket: Option<&str>,
        prefix: &str,
        at_root: bool,
    ) -> Found {
        match value {
            Value::Null => return Found::Nothing,
            Value::String(text) if text.trim().is_empty() => return Found::Nothing,
            _ => {}
        }
        match form {
            RefForm::Auto => match value {
                Value::String(_) | Value::Object(_) => match self.resolve_value(value) {
                    Some(resolution) => Found::Reference(resolution),
                    None if at_root => Found::Nothing,
                    None => Found::Unrecognised(
                        "an object with none of the fields bucket, key or url".to_owned(),
                    ),
                },
                Value::Array(_) if at_root => Found::Nothing,
                other => Found::Unrecognised(format!(
                    "a JSON {} where a file reference was expected",
                    super::json_kind(other)
                )),
            },
            RefForm::Url => match value {
                Value::String(text) => Found::Reference(self.resolve_url(text)),
                other => Found::Unrecognised(format!(
                    "a JSON {} where a URL was expected",
                    super::json_kind(other)
                )),
            },
            RefForm::BucketKeyObject => {
                let field = |name: &str| {
                    value
                        .get(name)
                        .and_then(Value::as_str)
                        .filter(|text| !text.is_empty())
                };
                match (field("bucket"), field("key")) {
                    (Some(bucket), Some(key)) => Found::Reference(self.classify(
                        ObjectRef {
                            bucket: bucket.to_owned(),
                            key: key.to_owned(),
                        },
                        "bucket+key fields".to_owned(),
                    )),
                    _ => Found::Unrecognised(
                        "expected an object with bucket and key fields".to_owned(),
                    ),
                }
            }
            RefForm::Key => match (value, bucket) {
                (Value::String(key), Some(bucket)) => Found::Reference(self.classify(
                    ObjectRef {
                        bucket: bucket.to_owned(),
                        key: format!("{prefix}{key}"),
                    },
                    format!("bare key, in bucket {bucket} as the catalog says"),
                )),
                (Value::String(_), None) => {
                    Found::Unrecognised("a bare key, but the catalog names no bucket".to_owned())
                }
                (other, _) => Found::Unrecognised(format!(
                    "a JSON {} where a bare key (a string) was expected",
                    super::json_kind(other)
                )),
            },
        }
    }

    /// Whether a string found where the catalog lists no path names one of
    /// the service's objects (an S3 or CloudFront URL of its buckets, or an
    /// `s3://` URI): such a string is a reference the catalog missed.
    pub fn names_our_object(&self, text: &str) -> bool {
        if !super::s3_url::is_url(text) {
            return false;
        }
        matches!(
            self.resolve_url(text),
            Resolution::Object { .. } | Resolution::Protected { .. } | Resolution::Ambiguous { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::Storage;

    fn resolver() -> Resolver {
        Resolver::new(&Storage {
            buckets: vec!["renders".into()],
            ..Storage::default()
        })
    }

    #[test]
    fn bare_keys_take_the_catalog_bucket_and_prefix() {
        let found = resolver().resolve_form(
            &json!("a/b c.png"),
            RefForm::Key,
            Some("renders"),
            "out/",
            false,
        );
        let Found::Reference(Resolution::Object { object, .. }) = found else {
            panic!("{found:?}")
        };
        assert_eq!(object.bucket, "renders");
        assert_eq!(object.key, "out/a/b c.png");
    }

    #[test]
    fn values_of_the_wrong_shape_are_unrecognised() {
        let r = resolver();
        assert!(matches!(
            r.resolve_form(&json!({"k": 1}), RefForm::Key, Some("renders"), "", false),
            Found::Unrecognised(_)
        ));
        assert!(matches!(
            r.resolve_form(&json!({"name": "x"}), RefForm::Auto, None, "", false),
            Found::Unrecognised(_)
        ));
        assert_eq!(
            r.resolve_form(&json!({"name": "x"}), RefForm::Auto, None, "", true),
            Found::Nothing
        );
        assert!(matches!(
            r.resolve_form(&json!(7), RefForm::Url, None, "", false),
            Found::Unrecognised(_)
        ));
        assert_eq!(
            r.resolve_form(&json!(""), RefForm::Key, Some("renders"), "", false),
            Found::Nothing
        );
    }

    #[test]
    fn only_urls_of_our_buckets_are_missed_references() {
        let r = resolver();
        assert!(r.names_our_object("https://renders.s3.amazonaws.com/a.png"));
        assert!(r.names_our_object("s3://renders/a.png"));
        assert!(!r.names_our_object("https://hooks.example.com/done"));
        assert!(!r.names_our_object("renders/a.png"));
    }
}
