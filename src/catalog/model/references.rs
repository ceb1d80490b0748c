//! The catalog's file format for file references: which columns hold
//! them, at which JSON paths, in which form (a URL, a `{bucket, key}`
//! object, a bare key in a bucket the catalog fixes), which paths are not
//! the service's files, and which referenced objects are JSON documents
//! listing more.

use serde::{Deserialize, Serialize};

use super::super::ident::Ident;
use super::super::jsonpath::JsonPath;

/// How a value found at a path names an object.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefForm {
    /// Inferred: a string is a URL (or `s3://` URI), an object is
    /// `{bucket, key}` (which wins) or `{url}`.
    #[default]
    Auto,
    /// A URL or `s3://` URI string.
    Url,
    /// A `{bucket, key}` object (a `url` beside them is ignored).
    BucketKeyObject,
    /// A bare S3 key string, in the bucket the catalog fixes (`bucket`),
    /// after an optional `prefix`.
    Key,
}

/// Where inside a column references hide, and how they are spelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPath {
    pub path: JsonPath,
    pub form: RefForm,
    /// For `form = "key"`: the bucket, and the prefix put before the key.
    pub bucket: Option<String>,
    pub prefix: String,
}

/// A JSON (or text) column and the paths inside it where file references
/// live, newest shape first. Every path is read: a row may carry several
/// shapes at once, and the results are deduplicated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSource {
    pub column: Ident,
    /// Paths, each a string (taking `form`, `bucket` and `prefix` below) or
    /// `{ path, form, bucket, prefix }`. Default: `["$"]`, the column itself.
    #[serde(default = "root_only")]
    pub paths: Vec<PathEntry>,
    /// The form of values at the plain string paths (default: inferred).
    #[serde(default)]
    pub form: RefForm,
    /// For `form = "key"`: the bucket the keys are in.
    #[serde(default)]
    pub bucket: Option<String>,
    /// For `form = "key"`: put before each key (e.g. `"renders/"`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Paths whose values are not the service's files (a callback URL):
    /// never resolved, never reported.
    #[serde(
        default,
        deserialize_with = "parse_paths",
        serialize_with = "show_paths",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exclude: Vec<JsonPath>,
    /// The referenced object is itself a JSON document in S3 that lists
    /// more objects (a PDF extraction's images). Discovery reads it and adds
    /// the listed objects to the manifest ahead of it, so they are deleted
    /// before the document that names them.
    #[serde(default)]
    pub expand: Option<Expansion>,
}

/// One entry of `paths`: a path, or a path with its own form.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "RawPathEntry", into = "RawPathEntry")]
pub enum PathEntry {
    Plain(JsonPath),
    Full {
        path: JsonPath,
        form: Option<RefForm>,
        bucket: Option<String>,
        prefix: Option<String>,
    },
}

/// `paths` entries as written, before the path is parsed (so that a bad
/// path's error says what is wrong with it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum RawPathEntry {
    Plain(String),
    Full {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        form: Option<RefForm>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bucket: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
}

impl TryFrom<RawPathEntry> for PathEntry {
    type Error = String;
    fn try_from(raw: RawPathEntry) -> Result<Self, String> {
        Ok(match raw {
            RawPathEntry::Plain(path) => {
                PathEntry::Plain(JsonPath::parse(&path).map_err(|e| e.to_string())?)
            }
            RawPathEntry::Full {
                path,
                form,
                bucket,
                prefix,
            } => PathEntry::Full {
                path: JsonPath::parse(&path).map_err(|e| e.to_string())?,
                form,
                bucket,
                prefix,
            },
        })
    }
}

impl From<PathEntry> for RawPathEntry {
    fn from(entry: PathEntry) -> Self {
        match entry {
            PathEntry::Plain(path) => RawPathEntry::Plain(path.as_str().to_owned()),
            PathEntry::Full {
                path,
                form,
                bucket,
                prefix,
            } => RawPathEntry::Full {
                path: path.as_str().to_owned(),
                form,
                bucket,
                prefix,
            },
        }
    }
}

fn root_only() -> Vec<PathEntry> {
    vec![PathEntry::Plain(JsonPath::root())]
}

impl ReferenceSource {
    /// Every path with its form settled (plain paths take the source's).
    pub fn ref_paths(&self) -> Vec<RefPath> {
        self.paths
            .iter()
            .map(|entry| match entry {
                PathEntry::Plain(path) => RefPath {
                    path: path.clone(),
                    form: self.form,
                    bucket: self.bucket.clone(),
                    prefix: self.prefix.clone().unwrap_or_default(),
                },
                PathEntry::Full {
                    path,
                    form,
                    bucket,
                    prefix,
                } => RefPath {
                    path: path.clone(),
                    form: form.unwrap_or(self.form),
                    bucket: bucket.clone().or_else(|| self.bucket.clone()),
                    prefix: prefix
                        .clone()
                        .or_else(|| self.prefix.clone())
                        .unwrap_or_default(),
                },
            })
            .collect()
    }
}

/// How to read a JSON manifest object.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expansion {
    /// Where the listed objects are in the document, e.g. `fileKeyList[*]`.
    /// Each is a key (in `bucket`), a URL, or a `{bucket, key}` object.
    #[serde(deserialize_with = "parse_path", serialize_with = "show_path")]
    pub list: JsonPath,
    /// How the listed values are spelled (default: a string that is not a
    /// URL is a key; anything else is inferred as for a column).
    #[serde(default)]
    pub form: RefForm,
    /// The bucket of bare keys; default: the manifest's own bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Put before each bare key.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The largest document lethe reads, in bytes (default 16 MiB); a
    /// larger one is an anomaly, not an out-of-memory worker.
    #[serde(default = "default_max_manifest_bytes")]
    pub max_bytes: u64,
}

fn default_max_manifest_bytes() -> u64 {
    16 * 1024 * 1024
}

fn parse_path<'de, D: serde::Deserializer<'de>>(d: D) -> Result<JsonPath, D::Error> {
    let raw = String::deserialize(d)?;
    JsonPath::parse(&raw).map_err(serde::de::Error::custom)
}

fn show_path<S: serde::Serializer>(path: &JsonPath, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(path.as_str())
}

fn parse_paths<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<JsonPath>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|path| JsonPath::parse(path).map_err(serde::de::Error::custom))
        .collect()
}

fn show_paths<S: serde::Serializer>(paths: &[JsonPath], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(JsonPath::as_str))
}
