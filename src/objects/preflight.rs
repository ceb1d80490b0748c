//! The preflight (`lethe check`, and `lethe worker` at start): before any
//! member is touched, check per catalogued bucket that the credentials can
//! do everything erasing from it needs, and name exactly the permission
//! that is missing.
//!
//! Every check is a harmless call on a key that cannot exist
//! (`lethe-preflight/<random>/absent`):
//! - HeadObject and GetObject must answer 404. Without `s3:ListBucket`, AWS
//!   answers 403 for a missing key instead, and then verification could
//!   never prove an object gone, a missing JSON manifest would be an error
//!   and the `+` check could not tell which object exists;
//! - GetBucketVersioning, where the catalog leaves versioning to `auto`;
//! - ListObjectVersions, in a versioned bucket;
//! - DeleteObjects of that key (a missing key is deleted without a word);
//!   in a versioned bucket that leaves a delete marker, which is then
//!   deleted by its version id — the check of `s3:DeleteObjectVersion`;
//! - GetObjectTagging and PutObjectTagging, in a tag-and-expire bucket
//!   (a missing key answers 404 when they are allowed).
//!
//! The rule this module keeps: a check names the bucket and the permission
//! (as an IAM action) and why lethe needs it, and never touches an object
//! that exists.

use std::fmt;

use aws_sdk_s3::types::{Tag, Tagging};

use super::{Buckets, ObjectError, ObjectStore, Versioning};
use crate::catalog::{ErasureMode, Storage};

/// What the preflight found about one bucket.
#[derive(Debug, Clone)]
pub struct BucketCheck {
    pub bucket: String,
    pub mode: ErasureMode,
    /// Whether it keeps versions, when that could be found out.
    pub versioned: Option<bool>,
    pub findings: Vec<Finding>,
}

/// One thing the preflight found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The credentials lack this IAM action on the bucket.
    Missing {
        permission: &'static str,
        why: &'static str,
    },
    /// S3 says the bucket does not exist (NoSuchBucket).
    BucketMissing,
    /// A check could not be made (a transient error, or an answer the
    /// preflight cannot read).
    Unchecked { what: &'static str, error: String },
}

/// The preflight's result, bucket by bucket.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub buckets: Vec<BucketCheck>,
}

impl Preflight {
    /// Every permission is there and every bucket exists.
    pub fn passed(&self) -> bool {
        self.buckets.iter().all(|b| b.findings.is_empty())
    }

    /// A permission is missing (as opposed to a bucket, or a check that
    /// could not be made): no worker should start.
    pub fn permission_missing(&self) -> bool {
        self.buckets.iter().any(|b| {
            b.findings
                .iter()
                .any(|f| matches!(f, Finding::Missing { .. }))
        })
    }

    /// No catalogued bucket exists here: almost surely the wrong endpoint,
    /// region or account, not buckets that were all removed.
    pub fn no_bucket_exists(&self) -> bool {
        !self.buckets.is_empty()
            && self
                .buckets
                .iter()
                .all(|b| b.findings.contains(&Finding::BucketMissing))
    }

    /// One line per problem, naming bucket and permission; empty when it
    /// passed.
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for bucket in &self.buckets {
            for finding in &bucket.findings {
                lines.push(match finding {
                    Finding::Missing { permission, why } => format!(
                        "bucket {:?}: missing permission {permission}: {why}",
                        bucket.bucket
                    ),
                    Finding::BucketMissing => format!(
                        "bucket {:?} does not exist (NoSuchBucket): its objects count as gone and each \
                         request that lists any records a bucket_missing anomaly; if it was renamed, \
                         or lives behind another endpoint or region, fix the catalog or s3 settings",
                        bucket.bucket
                    ),
                    Finding::Unchecked { what, error } => {
                        format!("bucket {:?}: could not check {what}: {error}", bucket.bucket)
                    }
                });
            }
        }
        lines
    }
}

impl fmt::Display for Preflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for bucket in &self.buckets {
            let versioning = match bucket.versioned {
                Some(true) => "versioned",
                Some(false) => "unversioned",
                None => "versioning unknown",
            };
            let mode = match bucket.mode {
                ErasureMode::Delete => "delete",
                ErasureMode::Tag => "tag-and-expire",
            };
            let verdict = if bucket.findings.is_empty() {
                "ok"
            } else {
                "PROBLEM"
            };
            writeln!(f, "{verdict:7} {} ({versioning}, {mode})", bucket.bucket)?;
        }
        for line in self.problems() {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

/// The buckets the catalog erases from: its buckets and their replicas.
pub fn catalogued_buckets(storage: &Storage) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for bucket in &storage.buckets {
        for name in std::iter::once(bucket).chain(
            storage
                .bucket_settings
                .get(bucket)
                .map(|s| s.replicas.as_slice())
                .unwrap_or_default(),
        ) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Checks every bucket the catalog erases from.
pub async fn check(storage: &Storage, buckets: &Buckets) -> Preflight {
    let mut checks = Vec::new();
    for bucket in catalogued_buckets(storage) {
        checks.push(check_bucket(buckets, &bucket).await);
    }
    Preflight { buckets: checks }
}

/// A key no member's object can have.
fn probe_key() -> String {
    format!("lethe-preflight/{}/absent", uuid::Uuid::new_v4().simple())
}

fn denied(err: &ObjectError) -> bool {
    err.status == Some(403)
        || matches!(
            err.code.as_deref(),
            Some("AccessDenied" | "AllAccessDisabled")
        )
}

async fn check_bucket(buckets: &Buckets, bucket: &str) -> BucketCheck {
    let settings = buckets.settings_of(bucket);
    let store = buckets.store_for(bucket);
    let key = probe_key();
    let mut check = BucketCheck {
        bucket: bucket.to_owned(),
        mode: settings.mode,
        versioned: None,
        findings: Vec::new(),
    };
    let findings = &mut check.findings;

    // Reading: a missing key must be "not found", not "forbidden".
    match store.get_bounded(bucket, &key, 0).await {
        Ok(_) => {}
        Err(err) if err.is_no_such_bucket() => {
            findings.push(Finding::BucketMissing);
            return check;
        }
        Err(err) if denied(&err) => findings.push(Finding::Missing {
            permission: "s3:ListBucket (and s3:GetObject)",
            why: "GetObject of a key that does not exist answered 403, not 404: without s3:ListBucket \
                  S3 will not say an object is missing, so a missing JSON manifest looks like an error",
        }),
        Err(err) => findings.push(unchecked("GetObject", err)),
    }
    match store.exists(bucket, &key).await {
        Ok(_) => {}
        Err(err) if denied(&err) => findings.push(Finding::Missing {
            permission: "s3:ListBucket",
            why: "HeadObject of a key that does not exist answered 403, not 404: without it \
                  verification can never prove a deleted object gone",
        }),
        Err(err) => findings.push(unchecked("HeadObject", err)),
    }

    // Versioning: asked of S3 unless the catalog says.
    let versioned = match settings.versioning {
        crate::catalog::Versioning::Enabled => Some(true),
        crate::catalog::Versioning::Disabled => Some(false),
        crate::catalog::Versioning::Auto => match store.versioning(bucket).await {
            Ok(answer) => Some(answer == Versioning::Versioned),
            Err(err) if denied(&err) => {
                findings.push(Finding::Missing {
                    permission: "s3:GetBucketVersioning",
                    why: "lethe asks whether the bucket keeps versions (or set versioning = \
                          \"enabled\" or \"disabled\" for it in the catalog)",
                });
                None
            }
            Err(err) => {
                findings.push(unchecked("GetBucketVersioning", err));
                None
            }
        },
    };
    check.versioned = versioned;
    let findings = &mut check.findings;
    if versioned == Some(true) {
        match store
            .versions_of(bucket, std::slice::from_ref(&key), None)
            .await
        {
            Ok(_) => {}
            Err(err) if denied(&err) => findings.push(Finding::Missing {
                permission: "s3:ListBucketVersions",
                why: "in a versioned bucket lethe lists every version and delete marker of a key \
                      to erase them all",
            }),
            Err(err) => findings.push(unchecked("ListObjectVersions", err)),
        }
    }

    match settings.mode {
        ErasureMode::Delete => check_delete(&store, bucket, &key, versioned, findings).await,
        ErasureMode::Tag => check_tagging(&store, bucket, &key, versioned, findings).await,
    }
    check
}

async fn check_delete(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    versioned: Option<bool>,
    findings: &mut Vec<Finding>,
) {
    let missing = Finding::Missing {
        permission: "s3:DeleteObject",
        why: "lethe deletes the member's objects with DeleteObjects",
    };
    match store.delete_keys(bucket, &[key.to_owned()]).await {
        Ok(refused) if refused.iter().any(|f| f.code == "AccessDenied") => findings.push(missing),
        Ok(refused) if !refused.is_empty() => findings.push(Finding::Unchecked {
            what: "DeleteObjects",
            error: format!("S3 refused the test key: {}", refused[0].code),
        }),
        Ok(_) => {}
        Err(err) if denied(&err) => {
            findings.push(missing);
            return;
        }
        Err(err) => {
            findings.push(unchecked("DeleteObjects", err));
            return;
        }
    }
    if versioned != Some(true) {
        return;
    }
    // The delete left a marker: removing it by version id is what erasing
    // every version needs.
    let markers = match store.versions_of(bucket, &[key.to_owned()], None).await {
        Ok(markers) => markers,
        // Already reported above.
        Err(_) => return,
    };
    let targets: Vec<(String, Option<String>)> = markers
        .into_iter()
        .map(|v| (v.key, Some(v.version_id)))
        .collect();
    let missing = Finding::Missing {
        permission: "s3:DeleteObjectVersion",
        why: "in a versioned bucket a plain delete only adds a delete marker; lethe deletes every \
              version and marker by version id (the check left a delete marker on its test key \
              under lethe-preflight/)",
    };
    match store.delete_targets(bucket, &targets).await {
        Ok(refused) if refused.iter().any(|f| f.code == "AccessDenied") => findings.push(missing),
        Ok(_) => {}
        Err(err) if denied(&err) => findings.push(missing),
        Err(err) => findings.push(unchecked("DeleteObjects by version", err)),
    }
}

async fn check_tagging(
    store: &ObjectStore,
    bucket: &str,
    key: &str,
    versioned: Option<bool>,
    findings: &mut Vec<Finding>,
) {
    let version_note = if versioned == Some(true) {
        " (and its Version form, in this versioned bucket)"
    } else {
        ""
    };
    let get = store
        .client()
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| ObjectError::from_sdk("GetObjectTagging", bucket, err));
    match get {
        Ok(_) => {}
        Err(err) if err.status == Some(404) => {}
        Err(err) if denied(&err) => findings.push(Finding::Missing {
            permission: if version_note.is_empty() {
                "s3:GetObjectTagging"
            } else {
                "s3:GetObjectTagging and s3:GetObjectVersionTagging"
            },
            why: "tag mode reads an object's tags to add lethe's tag to them",
        }),
        Err(err) => findings.push(unchecked("GetObjectTagging", err)),
    }
    let tagging = Tagging::builder()
        .tag_set(
            Tag::builder()
                .key("lethe-preflight")
                .value("absent")
                .build()
                .expect("key and value are set"),
        )
        .build()
        .expect("the tag set is set");
    let put = store
        .client()
        .put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(tagging)
        .send()
        .await
        .map_err(|err| ObjectError::from_sdk("PutObjectTagging", bucket, err));
    match put {
        Ok(_) => {}
        Err(err) if err.status == Some(404) => {}
        Err(err) if denied(&err) => findings.push(Finding::Missing {
            permission: if version_note.is_empty() {
                "s3:PutObjectTagging"
            } else {
                "s3:PutObjectTagging and s3:PutObjectVersionTagging"
            },
            why: "tag mode tags each object (every version) for the bucket's lifecycle rule to expire",
        }),
        Err(err) => findings.push(unchecked("PutObjectTagging", err)),
    }
}

fn unchecked(what: &'static str, err: ObjectError) -> Finding {
    Finding::Unchecked {
        what,
        error: err.to_string(),
    }
}
