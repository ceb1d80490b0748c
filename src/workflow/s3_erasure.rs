//! Erasing a bucket's share of a batch the way that bucket wants it, and
//! reading back what is left. Shared by deletion (S3Cleared) and
//! verification (Done).
//!
//! - delete, unversioned: DeleteObjects on the keys;
//! - delete, versioned: every version and delete marker of each key, listed
//!   once per prefix group, deleted by version id;
//! - tag: the objects (every version, in a versioned bucket) are tagged for
//!   the bucket's lifecycle rule to expire.
//!
//! A catalogued bucket that no longer exists (NoSuchBucket) holds none of
//! its objects: they count as erased, and the caller records the missing
//! bucket as an anomaly, rather than failing every member for ever.
//!
//! The rule this module keeps: a permanent per-object refusal (object lock,
//! legal hold, access denied) is returned as a [`Refusal`] for the caller to
//! record as an anomaly, never retried forever; a transient one (S3's
//! per-key `InternalError` or `SlowDown` inside a DeleteObjects answer) is
//! sent again for those keys alone, as the store's [`Resend`] says, and only
//! if it persists makes the caller retry the batch. Refusal reasons name no
//! object key.
//!
//! [`Resend`]: crate::objects::Resend

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::catalog::ErasureMode;
use crate::objects::buckets::Freshness;
use crate::objects::{
    BucketView, Buckets, KeyFailure, MAX_KEYS_PER_DELETE, ObjectError, ObjectErrorKind, TagState,
    Version,
};
use crate::store::manifest::ManifestObject;

/// How an object ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Nothing of it is left (or nothing was there).
    Deleted,
    /// Tagged for expiry by the bucket's lifecycle rule.
    Scheduled,
    /// Retained: object lock or legal hold.
    Locked,
    /// Retained: S3 refused otherwise (access denied).
    Denied,
}

impl ObjectOutcome {
    /// The name stored in `erasure_manifest_objects.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOutcome::Deleted => "deleted",
            ObjectOutcome::Scheduled => "scheduled",
            ObjectOutcome::Locked => "locked",
            ObjectOutcome::Denied => "denied",
        }
    }
}

/// An object erased (or scheduled).
#[derive(Debug, Clone)]
pub struct Erased {
    /// Where its key is in the keys given: the caller finds its own record
    /// of the object there, with no map from keys back to objects.
    pub index: usize,
    pub outcome: ObjectOutcome,
    /// Versions and markers removed (or versions tagged); `None` in an
    /// unversioned bucket.
    pub versions: Option<i32>,
}

/// An object S3 refused to erase.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub key: String,
    pub code: String,
    /// Code and message, with the key blanked out.
    pub reason: String,
    pub transient: bool,
}

impl Refusal {
    /// Locked or denied, for a permanent refusal.
    pub fn outcome(&self) -> ObjectOutcome {
        let reason = self.reason.to_ascii_lowercase();
        if reason.contains("object lock")
            || reason.contains("legal hold")
            || reason.contains("retention")
            || self.code == "ObjectLocked"
        {
            ObjectOutcome::Locked
        } else {
            ObjectOutcome::Denied
        }
    }
}

/// What erasing a bucket's keys did.
#[derive(Debug, Default)]
pub struct BucketResult {
    pub erased: Vec<Erased>,
    pub refused: Vec<Refusal>,
    /// S3 says the bucket does not exist: its objects are gone with it
    /// (each counted as erased), which the caller records as an anomaly.
    pub bucket_missing: bool,
}

/// Erases these keys of the named bucket, the way its settings say. A
/// bucket that no longer exists (NoSuchBucket) holds nothing: its keys are
/// erased, and the result says the bucket is missing. `of` is how many
/// keys are being erased side by side with these (these included): the
/// bucket's calls take that share of the request's `s3.concurrency`.
pub async fn erase_in<K: AsRef<str>>(
    buckets: &Buckets,
    bucket: &str,
    keys: &[K],
    of: usize,
    freshness: Freshness,
) -> Result<BucketResult, ObjectError> {
    let attempt = async {
        let mut view = buckets.view(bucket, freshness).await?;
        view.store = view.store.with_share(keys.len(), of);
        erase(&view, keys).await
    };
    match attempt.await {
        Err(err) if err.is_no_such_bucket() => Ok(BucketResult {
            erased: (0..keys.len())
                .map(|index| Erased {
                    index,
                    outcome: ObjectOutcome::Deleted,
                    versions: None,
                })
                .collect(),
            refused: Vec::new(),
            bucket_missing: true,
        }),
        other => other,
    }
}

/// Erases these keys of one bucket.
pub async fn erase<K: AsRef<str>>(
    bucket: &BucketView,
    keys: &[K],
) -> Result<BucketResult, ObjectError> {
    match (bucket.mode, bucket.versioned) {
        (ErasureMode::Delete, false) => delete_unversioned(bucket, keys).await,
        (ErasureMode::Delete, true) => delete_versions(bucket, &owned(keys)).await,
        (ErasureMode::Tag, versioned) => tag(bucket, &owned(keys), versioned).await,
    }
}

/// The keys as owned strings, for the calls that list versions first.
fn owned<K: AsRef<str>>(keys: &[K]) -> Vec<String> {
    keys.iter().map(|key| key.as_ref().to_owned()).collect()
}

/// The keys of which something is left: the object (a listing or
/// HeadObject, [`crate::objects::listing`]), any
/// version or delete marker (versioned), or, in tag mode, an untagged
/// object or version.
pub async fn survivors(bucket: &BucketView, keys: &[String]) -> Result<Vec<String>, ObjectError> {
    match (bucket.mode, bucket.versioned) {
        (ErasureMode::Delete, false) => {
            bucket
                .store
                .still_present(&bucket.name, keys, bucket.list_prefix_depth)
                .await
        }
        (ErasureMode::Delete, true) => {
            let versions = list(bucket, keys).await?;
            let keys: BTreeSet<String> = versions.into_iter().map(|v| v.key).collect();
            Ok(keys.into_iter().collect())
        }
        (ErasureMode::Tag, versioned) => {
            let targets = tag_targets(bucket, keys, versioned).await?;
            let tag = Arc::new(bucket.tag.clone());
            let name: Arc<str> = Arc::from(bucket.name.as_str());
            let untagged = bucket
                .store
                .concurrently(targets, move |store, (key, version)| {
                    let (tag, name) = (tag.clone(), name.clone());
                    async move {
                        let state = store
                            .tag_state(&name, &key, version.as_deref(), &tag)
                            .await?;
                        Ok((state == TagState::Untagged).then_some(key))
                    }
                })
                .await?;
            let keys: BTreeSet<String> = untagged.into_iter().flatten().collect();
            Ok(keys.into_iter().collect())
        }
    }
}

/// Adds each object's copies in its bucket's replicas, right after it, with
/// the same protection (a replica of a shared object is shared too) or the
/// replica bucket's own protection rules.
pub fn with_replicas(
    objects: Vec<ManifestObject>,
    replicas_of: impl Fn(&str) -> Vec<String>,
    protected: impl Fn(&crate::references::ObjectRef) -> bool,
) -> Vec<ManifestObject> {
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
        let copies = replicas_of(&object.object.bucket);
        let primary = object.clone();
        out.push(object);
        for replica in copies {
            let mut copy = primary.clone();
            copy.object.bucket = replica;
            copy.protected = primary.protected || protected(&copy.object);
            copy.replica_of = Some(primary.object.bucket.clone());
            out.push(copy);
        }
    }
    out
}

async fn delete_unversioned<K: AsRef<str>>(
    bucket: &BucketView,
    keys: &[K],
) -> Result<BucketResult, ObjectError> {
    let mut refused = BTreeMap::new();
    // The batch's calls go out together, up to the request's concurrency.
    let chunks: Vec<Vec<(String, Option<String>)>> = keys
        .chunks(MAX_KEYS_PER_DELETE)
        .map(|chunk| {
            chunk
                .iter()
                .map(|key| (key.as_ref().to_owned(), None))
                .collect()
        })
        .collect();
    let view = Arc::new(bucket.clone());
    let answers = bucket
        .store
        .concurrently(chunks, move |_, targets| {
            let view = view.clone();
            async move { delete_resending(&view, targets).await }
        })
        .await?;
    for failure in answers.into_iter().flatten() {
        refused
            .entry(failure.key.clone())
            .or_insert_with(|| refusal(failure));
    }
    Ok(BucketResult {
        erased: keys
            .iter()
            .enumerate()
            .filter(|(_, key)| !refused.contains_key(key.as_ref()))
            .map(|(index, _)| Erased {
                index,
                outcome: ObjectOutcome::Deleted,
                versions: None,
            })
            .collect(),
        refused: refused.into_values().collect(),
        bucket_missing: false,
    })
}

async fn delete_versions(
    bucket: &BucketView,
    keys: &[String],
) -> Result<BucketResult, ObjectError> {
    let versions = list(bucket, keys).await?;
    let targets: Vec<(String, Option<String>)> = versions
        .into_iter()
        .map(|v| (v.key, Some(v.version_id)))
        .collect();
    let mut removed: BTreeMap<&str, i32> = keys.iter().map(|k| (k.as_str(), 0)).collect();
    let mut refused: BTreeMap<String, Refusal> = BTreeMap::new();
    // The calls go out together, up to the request's concurrency; each
    // answer comes back with the chunk it answers for.
    let chunks: Vec<Vec<(String, Option<String>)>> = targets
        .chunks(MAX_KEYS_PER_DELETE)
        .map(<[_]>::to_vec)
        .collect();
    let view = Arc::new(bucket.clone());
    let answers = bucket
        .store
        .concurrently(chunks, move |_, chunk| {
            let view = view.clone();
            async move {
                let failures = delete_resending(&view, chunk.clone()).await?;
                Ok((chunk, failures))
            }
        })
        .await?;
    for (chunk, failures) in answers {
        let failed: BTreeSet<(String, Option<String>)> = failures
            .iter()
            .map(|f| (f.key.clone(), f.version_id.clone()))
            .collect();
        for failure in failures {
            refused
                .entry(failure.key.clone())
                .or_insert_with(|| refusal(failure));
        }
        for (key, version) in &chunk {
            // Servers that leave the version out of an error entry fail the
            // whole key: count none of its versions as removed.
            let failed_here = failed.contains(&(key.clone(), version.clone()))
                || failed.contains(&(key.clone(), None));
            if !failed_here && let Some(count) = removed.get_mut(key.as_str()) {
                *count += 1;
            }
        }
    }
    Ok(BucketResult {
        erased: keys
            .iter()
            .enumerate()
            .filter(|(_, key)| !refused.contains_key(*key))
            .map(|(index, key)| Erased {
                index,
                outcome: ObjectOutcome::Deleted,
                versions: removed.get(key.as_str()).copied(),
            })
            .collect(),
        refused: refused.into_values().collect(),
        bucket_missing: false,
    })
}

async fn tag(
    bucket: &BucketView,
    keys: &[String],
    versioned: bool,
) -> Result<BucketResult, ObjectError> {
    let targets = tag_targets(bucket, keys, versioned).await?;
    let tag = Arc::new(bucket.tag.clone());
    let name: Arc<str> = Arc::from(bucket.name.as_str());
    let states = bucket
        .store
        .concurrently(targets, move |store, (key, version)| {
            let (tag, name) = (tag.clone(), name.clone());
            async move {
                let state = store.add_tag(&name, &key, version.as_deref(), &tag).await?;
                Ok((key, state))
            }
        })
        .await?;
    let mut tagged: BTreeMap<&str, i32> = keys.iter().map(|k| (k.as_str(), 0)).collect();
    for (key, state) in &states {
        if *state == TagState::Tagged
            && let Some(count) = tagged.get_mut(key.as_str())
        {
            *count += 1;
        }
    }
    Ok(BucketResult {
        erased: keys
            .iter()
            .enumerate()
            .map(|(index, key)| (index, tagged[key.as_str()]))
            .map(|(index, count)| Erased {
                index,
                // Nothing there to tag: nothing left to expire either.
                outcome: if count > 0 {
                    ObjectOutcome::Scheduled
                } else {
                    ObjectOutcome::Deleted
                },
                versions: versioned.then_some(count),
            })
            .collect(),
        refused: Vec::new(),
        bucket_missing: false,
    })
}

/// What tag mode tags: each key, or each version (not delete markers,
/// which carry no data and cannot be tagged) in a versioned bucket.
async fn tag_targets(
    bucket: &BucketView,
    keys: &[String],
    versioned: bool,
) -> Result<Vec<(String, Option<String>)>, ObjectError> {
    if !versioned {
        return Ok(keys.iter().map(|key| (key.clone(), None)).collect());
    }
    Ok(list(bucket, keys)
        .await?
        .into_iter()
        .filter(|v| !v.delete_marker)
        .map(|v| (v.key, Some(v.version_id)))
        .collect())
}

/// Deletes up to 1,000 targets, sending the ones S3 refused for now (a
/// per-key transient error) again, alone, while re-sends are left. Returns
/// the refusals that remain: the permanent ones, and transient ones that
/// outlasted the re-sends.
async fn delete_resending(
    bucket: &BucketView,
    mut targets: Vec<(String, Option<String>)>,
) -> Result<Vec<KeyFailure>, ObjectError> {
    let resend = bucket.store.resend().clone();
    let mut settled = Vec::new();
    let mut round = 0;
    loop {
        let failures = bucket.store.delete_targets(&bucket.name, &targets).await?;
        let (transient, permanent): (Vec<KeyFailure>, Vec<KeyFailure>) = failures
            .into_iter()
            .partition(|failure| failure.kind == ObjectErrorKind::Transient);
        settled.extend(permanent);
        round += 1;
        if transient.is_empty() || round > resend.retries() {
            settled.extend(transient);
            return Ok(settled);
        }
        tracing::debug!(
            bucket = %bucket.name, keys = transient.len(), resend = round,
            "DeleteObjects refused some keys for now; sending those again"
        );
        tokio::time::sleep(resend.backoff(round)).await;
        // A refusal without a version id names the whole key.
        targets.retain(|(key, version)| {
            transient
                .iter()
                .any(|f| f.key == *key && (f.version_id.is_none() || f.version_id == *version))
        });
    }
}

async fn list(bucket: &BucketView, keys: &[String]) -> Result<Vec<Version>, ObjectError> {
    bucket
        .store
        .versions_of(&bucket.name, keys, bucket.list_prefix_depth)
        .await
}

fn refusal(failure: KeyFailure) -> Refusal {
    let message = if failure.key.is_empty() {
        failure.message
    } else {
        failure.message.replace(&failure.key, "<key>")
    };
    Refusal {
        reason: format!("{}: {message}", failure.code),
        code: failure.code,
        transient: failure.kind == ObjectErrorKind::Transient,
        key: failure.key,
    }
}
