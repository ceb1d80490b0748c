//! The catalog's file format: what a `workflows/<name>/` directory says, as
//! plain data. `catalog.toml` holds the storage facts and the client tables;
//! `features/*.toml` hold one feature type each, so adding a feature is
//! adding a file, not code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ident::{Ident, TableName};
use super::policy::{Policy, RowErasure};

mod references;

pub use references::{Expansion, PathEntry, RefForm, RefPath, ReferenceSource};

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
    /// Keys are listed once per group of keys sharing their first
    /// `list_prefix_depth` path segments, with the group's common prefix:
    /// to erase a versioned bucket (ListObjectVersions) and to read an
    /// unversioned one back (ListObjectsV2). Unset: once per directory.
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

/// One column or several: `key = "id"` or `key = ["id", "created_at"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "Vec<Ident>")]
pub struct Columns(pub Vec<Ident>);

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(Ident),
            Many(Vec<Ident>),
        }
        let columns = match Raw::deserialize(d)? {
            Raw::One(column) => vec![column],
            Raw::Many(columns) => columns,
        };
        if columns.is_empty() {
            return Err(serde::de::Error::custom("a key needs at least one column"));
        }
        Ok(Columns(columns))
    }
}

impl From<Columns> for Vec<Ident> {
    fn from(columns: Columns) -> Self {
        columns.0
    }
}

impl Columns {
    /// The one column, when the key has exactly one.
    pub fn single(&self) -> Option<&Ident> {
        match self.0.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    pub fn contains(&self, column: &Ident) -> bool {
        self.0.contains(column)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Ident> {
        self.0.iter()
    }
}

impl std::fmt::Display for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(Ident::as_str).collect();
        match names.as_slice() {
            [only] => f.write_str(only),
            _ => write!(f, "({})", names.join(", ")),
        }
    }
}

/// A table with one row per request a member made.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTable {
    pub table: TableName,
    /// The table's primary key (or the columns of a unique index): how
    /// lethe addresses its rows. `id = "..."` is the one-column spelling.
    #[serde(alias = "id")]
    pub key: Columns,
    /// The column holding the member's key (the erasure subject), of any
    /// type; the member's key is cast to it.
    pub subject: Ident,
    /// The column naming the request's feature type.
    pub feature_type: Ident,
    /// How this table's rows reach feature rows, for every feature that
    /// does not say otherwise (see [`LinkSpec`]).
    #[serde(default)]
    pub link: Option<LinkSpec>,
    #[serde(default)]
    pub erase: RowErasure,
    /// Column -> policy.
    #[serde(default)]
    pub mask: BTreeMap<Ident, Policy>,
}

/// How a client row and a feature row are linked. Every field is optional
/// where it appears: a client table's `link` gives defaults for all
/// features, a feature's `link` (or `links`, scoped with `clients`)
/// overrides them field by field.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub kind: Option<LinkKind>,
    /// The client table's column in the link (default: its key, when that
    /// is one column).
    pub client_column: Option<Ident>,
    /// The feature table's column in the link (default: the feature's
    /// `client_id` for `feature_to_client`, else its key when that is one
    /// column).
    pub feature_column: Option<Ident>,
    /// For `kind = "join"`: the table holding (client, feature) pairs.
    pub join: Option<JoinTable>,
    /// The type both columns are compared as, when their types differ
    /// (e.g. `"bigint"` for a text column holding digits). Values that are
    /// not of this type are reported, never guessed at.
    pub cast: Option<String>,
    /// What lethe does when the link's target is not provably unique (no
    /// primary key or unique index on it).
    pub duplicates: Option<Duplicates>,
    /// On a feature's link: the client tables it applies to (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<TableName>,
}

/// Which way a link points.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The feature row holds the client row's id (`feature.client_id =
    /// client.id`).
    FeatureToClient,
    /// The client (request-log) row holds the feature row's id; its type
    /// column chooses the feature table.
    ClientToFeature,
    /// A join table holds (client id, feature id) pairs.
    Join,
}

/// A join table between client and feature rows.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JoinTable {
    pub table: TableName,
    /// Its column holding the client side's value.
    pub client: Ident,
    /// Its column holding the feature side's value.
    pub feature: Ident,
}

/// How a link whose target is not provably unique is resolved.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Duplicates {
    /// A row reached through a value that several rows carry is erased only
    /// when every client row carrying it is the member's; otherwise it is a
    /// `shared_row` anomaly, untouched.
    MemberOnly,
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
    /// The tables holding what the request produced: `[task]`, or several
    /// `[[task]]`.
    #[serde(default, rename = "task", deserialize_with = "one_or_many")]
    pub tasks: Vec<TaskTable>,
}

/// The table holding the request itself (its options and inputs).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureTable {
    pub table: TableName,
    /// Its primary key; `id = "..."` is the one-column spelling.
    #[serde(alias = "id")]
    pub key: Columns,
    /// Shorthand for `link = { kind = "feature_to_client", feature_column
    /// = "..." }`: the column pointing at the client row.
    #[serde(default)]
    pub client_id: Option<Ident>,
    /// How client rows reach this feature's rows (overrides the client
    /// table's `link`).
    #[serde(default)]
    pub link: Option<LinkSpec>,
    /// Several links, each scoped to some client tables with `clients`.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    #[serde(default)]
    pub erase: RowErasure,
    #[serde(default)]
    pub mask: BTreeMap<Ident, Policy>,
    #[serde(default)]
    pub references: Vec<ReferenceSource>,
}

/// A table holding what the request produced.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTable {
    pub table: TableName,
    /// Its primary key; `id = "..."` is the one-column spelling.
    #[serde(alias = "id")]
    pub key: Columns,
    /// The column pointing at the feature row.
    pub feature_id: Ident,
    /// The feature row's column it holds (default: the feature's key, when
    /// that is one column). Must be unique in the feature table.
    #[serde(default)]
    pub feature_column: Option<Ident>,
    /// The type both are compared as, when their types differ.
    #[serde(default)]
    pub cast: Option<String>,
    #[serde(default)]
    pub erase: RowErasure,
    #[serde(default)]
    pub mask: BTreeMap<Ident, Policy>,
    #[serde(default)]
    pub references: Vec<ReferenceSource>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TaskTable>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(Box<TaskTable>),
        Many(Vec<TaskTable>),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        None => Vec::new(),
        Some(Raw::One(task)) => vec![*task],
        Some(Raw::Many(tasks)) => tasks,
    })
}
