//! The catalog's file format: what a `workflows/<name>/` directory says, as
//! plain data. `catalog.toml` holds the storage facts and the client tables;
//! `features/*.toml` hold one feature type each, so adding a feature is
//! adding a file, not code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ident::{Ident, TableName};
use super::jsonpath::JsonPath;
use super::policy::{Policy, RowErasure};

/// `catalog.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// A name for operators and the destruction record.
    pub name: String,
    #[serde(default)]
    pub storage: Storage,
    /// The client tables to union: the current one and the legacy copies.
    #[serde(rename = "clients")]
    pub client_tables: Vec<ClientTable>,
}

/// Where the service's files live and which of them are not the member's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Buckets that hold the service's files. A reference to any other
    /// bucket is foreign: never deleted, reported as an anomaly.
    pub buckets: Vec<String>,
    /// CloudFront (or custom) domains in front of a bucket.
    #[serde(default)]
    pub cloudfront: Vec<CloudFrontOrigin>,
    /// Shared objects (samples, presets) that are never deleted.
    #[serde(default)]
    pub protected: Vec<Protected>,
    /// Per-bucket settings, `[storage.bucket."name"]`: versioning, replicas,
    /// tag-and-expire. A bucket without a table is erased by deletion, its
    /// versioning detected.
    #[serde(default, rename = "bucket")]
    pub bucket_settings: BTreeMap<String, BucketSettings>,
    /// What becomes of the rows referencing an object S3 refuses to erase
    /// for good (object lock, legal hold, access denied).
    #[serde(default)]
    pub locked_object_rows: LockedObjectRows,
}

/// How one bucket is erased.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    /// Whether the bucket keeps versions: `"auto"` asks S3
    /// (GetBucketVersioning) per bucket, and a suspended bucket counts as
    /// versioned, since it may still hold old versions.
    #[serde(default)]
    pub versioning: Versioning,
    /// Buckets holding copies of this one's objects under the same keys
    /// (replication does not replicate version deletes): each object is
    /// erased and verified there too.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// `"delete"`, or `"tag"` to tag objects for a lifecycle rule to expire.
    #[serde(default)]
    pub mode: ErasureMode,
    /// The tag of tag mode; default `lethe-erasure = "expire"`.
    #[serde(default)]
    pub tag: Option<ExpiryTag>,
    /// The bucket's region, when it differs from the client's.
    #[serde(default)]
    pub region: Option<String>,
    /// In a versioned bucket, keys are listed (ListObjectVersions) once per
    /// group of keys sharing their first `list_prefix_depth` path segments,
    /// with the group's common prefix. Unset: once per directory.
    #[serde(default)]
    pub list_prefix_depth: Option<usize>,
}

/// A bucket's versioning, as configured.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// Ask S3.
    #[default]
    Auto,
    Enabled,
    Disabled,
}

/// How a bucket's objects are erased.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErasureMode {
    /// Delete every version and delete marker of each object.
    #[default]
    Delete,
    /// Tag each object (every version) for the bucket's lifecycle rule to
    /// expire; the record says "scheduled for expiry", not "destroyed".
    Tag,
}

/// The tag that tag mode puts on objects.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExpiryTag {
    pub key: String,
    pub value: String,
}

impl Default for ExpiryTag {
    fn default() -> Self {
        ExpiryTag {
            key: "lethe-erasure".to_owned(),
            value: "expire".to_owned(),
        }
    }
}

/// Rows referencing an object that S3 refused to erase.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LockedObjectRows {
    /// Mask them as usual; the object is reported as retained.
    #[default]
    Mask,
    /// Leave the row that referenced the object unmasked, so that the
    /// object can still be found when its lock ends (the member's client
    /// rows, which hold their key, are masked regardless).
    Keep,
}

impl Storage {
    /// The settings of a bucket (the defaults when it has no table).
    pub fn settings_of(&self, bucket: &str) -> BucketSettings {
        self.bucket_settings
            .get(bucket)
            .cloned()
            .unwrap_or_default()
    }

    /// The replica buckets of a bucket.
    pub fn replicas_of(&self, bucket: &str) -> &[String] {
        self.bucket_settings
            .get(bucket)
            .map(|settings| settings.replicas.as_slice())
            .unwrap_or_default()
    }
}

/// A CDN domain serving a bucket, optionally under an origin path.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontOrigin {
    /// e.g. `d111111abcdef8.cloudfront.net` or `cdn.example.com`.
    pub domain: String,
    pub bucket: String,
    /// The distribution's origin path, e.g. `images` when the URL path
    /// `/a.png` maps to the key `images/a.png`.
    #[serde(default)]
    pub origin_path: String,
}

/// Objects in one bucket that must never be deleted.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Protected {
    pub bucket: String,
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
}

/// A table with one row per request a member made.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTable {
    pub table: TableName,
    /// Primary key; feature rows point at it.
    pub id: Ident,
    /// The column holding the member's key (the erasure subject).
    pub subject: Ident,
    /// The column naming the request's feature type.
    pub feature_type: Ident,
    #[serde(default)]
    pub erase: RowErasure,
    /// Column -> policy.
    #[serde(default)]
    pub mask: BTreeMap<Ident, Policy>,
}

/// `features/<name>.toml`: one feature type.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFile {
    /// The values of the client table's feature-type column this file handles.
    pub types: Vec<String>,
    /// The feature's tables may be absent from this database (a retired
    /// feature, a deployment without it). Then lethe starts anyway, and each
    /// client row of this type becomes a `missing_table` anomaly instead of
    /// being erased silently incompletely. Default: a missing table stops
    /// start-up.
    #[serde(default)]
    pub optional: bool,
    pub feature: FeatureTable,
    pub task: Option<TaskTable>,
}

/// The table holding the request itself (its options and inputs).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureTable {
    pub table: TableName,
    pub id: Ident,
    /// The column pointing at the client row.
    pub client_id: Ident,
    #[serde(default)]
    pub erase: RowErasure,
    #[serde(default)]
    pub mask: BTreeMap<Ident, Policy>,
    #[serde(default)]
    pub references: Vec<ReferenceSource>,
}

/// The table holding what the request produced.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTable {
    pub table: TableName,
    pub id: Ident,
    /// The column pointing at the feature row.
    pub feature_id: Ident,
    #[serde(default)]
    pub erase: RowErasure,
    #[serde(default)]
    pub mask: BTreeMap<Ident, Policy>,
    #[serde(default)]
    pub references: Vec<ReferenceSource>,
}

/// A JSON (or text) column and the paths inside it where file references
/// live, newest shape first. Every path is read: a row may carry several
/// shapes at once, and the results are deduplicated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSource {
    pub column: Ident,
    #[serde(deserialize_with = "parse_paths", serialize_with = "show_paths")]
    pub paths: Vec<JsonPath>,
    /// The referenced object is itself a JSON document in S3 that lists
    /// more objects (a PDF extraction's images). Discovery reads it and adds
    /// the listed objects to the manifest ahead of it, so they are deleted
    /// before the document that names them.
    #[serde(default)]
    pub expand: Option<Expansion>,
}

/// How to read a JSON manifest object.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expansion {
    /// Where the listed objects are in the document, e.g. `fileKeyList[*]`.
    /// Each is a key (in `bucket`), a URL, or a `{bucket, key}` object.
    #[serde(deserialize_with = "parse_path", serialize_with = "show_path")]
    pub list: JsonPath,
    /// The bucket of bare keys; default: the manifest's own bucket.
    #[serde(default)]
    pub bucket: Option<String>,
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
