//! Versioned buckets. A plain delete there only adds a delete marker and
//! the data stays as a noncurrent version, so erasure lists every version
//! and marker of each key (ListObjectVersions) and deletes them by version
//! id. Listing goes once per group of keys sharing a prefix: one listing
//! covers a member's directory, and a listing is filtered to the exact keys
//! asked for, so nothing outside them is ever touched.
//!
//! The rule this module keeps: the work and the memory of a listing are
//! bounded by the keys asked for, not by the bucket. Pages are filtered as
//! they stream in (only the wanted keys' versions are kept), a listing stops
//! once past the last wanted key, and a prefix that turns out to hold many
//! other objects (keys at the bucket root, a directory everyone's files
//! share) is abandoned for one small listing per key.

use std::collections::BTreeSet;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::BucketVersioningStatus;

use super::{ObjectError, ObjectStore};

/// What GetBucketVersioning says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Never enabled: a delete removes the object.
    Unversioned,
    /// Enabled, or suspended (old versions may still be there).
    Versioned,
}

/// One version of a key, or one delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
}

impl ObjectStore {
    /// Whether a bucket keeps versions. A server that does not implement
    /// versioning (501 NotImplemented, as some S3-compatible servers answer)
    /// cannot hold versions: unversioned. An answer that cannot be read
    /// counts as versioned, the erasure that is right in both cases.
    pub async fn versioning(&self, bucket: &str) -> Result<Versioning, ObjectError> {
        self.resend
            .run(move || async move { self.versioning_once(bucket).await })
            .await
    }

    async fn versioning_once(&self, bucket: &str) -> Result<Versioning, ObjectError> {
        match self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(output) => Ok(match output.status() {
                Some(BucketVersioningStatus::Enabled | BucketVersioningStatus::Suspended) => {
                    Versioning::Versioned
                }
                _ => Versioning::Unversioned,
            }),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.code() == Some("NotImplemented")) =>
            {
                Ok(Versioning::Unversioned)
            }
            // The server said yes (2xx) in a shape the SDK cannot read (some
            // S3-compatible servers name the XML root differently). Erasing as
            // if versioned is right either way: an unversioned bucket lists
            // each object once, as version "null", and deletes it by that id.
            Err(SdkError::ServiceError(service)) if service.raw().status().is_success() => {
                tracing::debug!(
                    bucket,
                    "unreadable GetBucketVersioning answer; erasing as if versioned"
                );
                Ok(Versioning::Versioned)
            }
            Err(err) => Err(ObjectError::from_sdk("GetBucketVersioning", bucket, err)),
        }
    }

    /// One page of ListObjectVersions under `prefix`, from `from` (a key
    /// and version marker), sent again if it fails for now.
    async fn versions_page(
        &self,
        bucket: &str,
        prefix: &str,
        from: &Option<(String, Option<String>)>,
    ) -> Result<VersionsPage, ObjectError> {
        let (key_marker, version_marker) = match from {
            Some((key, version)) => (Some(key.clone()), version.clone()),
            None => (None, None),
        };
        let (key_from, version_from) = (&key_marker, &version_marker);
        let page = self
            .resend
            .run(move || async move {
                self.client
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_key_marker(key_from.clone())
                    .set_version_id_marker(version_from.clone())
                    .send()
                    .await
                    .map_err(|err| ObjectError::from_sdk("ListObjectVersions", bucket, err))
            })
            .await?;
        let mut entries = Vec::new();
        for version in page.versions() {
            if let (Some(key), Some(id)) = (version.key(), version.version_id()) {
                entries.push(Version {
                    key: key.to_owned(),
                    version_id: id.to_owned(),
                    delete_marker: false,
                });
            }
        }
        for marker in page.delete_markers() {
            if let (Some(key), Some(id)) = (marker.key(), marker.version_id()) {
                entries.push(Version {
                    key: key.to_owned(),
                    version_id: id.to_owned(),
                    delete_marker: true,
                });
            }
        }
        let next = if page.is_truncated() == Some(true) {
            let Some(key) = page.next_key_marker() else {
                // A truncated page without a marker would loop forever.
                return Err(ObjectError::construction(
                    "ListObjectVersions",
                    bucket,
                    "the server said the listing is truncated but gave no marker to continue from",
                ));
            };
            Some((
                key.to_owned(),
                page.next_version_id_marker().map(str::to_owned),
            ))
        } else {
            None
        };
        Ok(VersionsPage { entries, next })
    }

    /// Every version and delete marker of the `wanted` keys under `prefix`,
    /// streamed page by page and filtered as it goes: only the wanted keys'
    /// entries are kept. Listing stops once it has passed the last wanted
    /// key (S3 lists in key order), and gives up, returning what is
    /// complete so far, once more than `budget` entries of other keys have
    /// gone by.
    async fn list_wanted(
        &self,
        bucket: &str,
        prefix: &str,
        wanted: &BTreeSet<&str>,
        budget: usize,
    ) -> Result<Listing, ObjectError> {
        let Some(last_wanted) = wanted.last() else {
            return Ok(Listing::Complete(Vec::new()));
        };
        let mut found = Vec::new();
        let mut others = 0usize;
        let mut from = None;
        loop {
            let page = self.versions_page(bucket, prefix, &from).await?;
            for entry in page.entries {
                if wanted.contains(entry.key.as_str()) {
                    found.push(entry);
                } else {
                    others += 1;
                }
            }
            let Some(next) = page.next else {
                return Ok(Listing::Complete(found));
            };
            // Everything up to the last wanted key has been listed.
            if next.0.as_str() > *last_wanted {
                return Ok(Listing::Complete(found));
            }
            if others > budget {
                // Keys before the marker are complete; the marker's own key
                // may have more versions on the next page.
                found.retain(|v| v.key < next.0);
                return Ok(Listing::TooBroad {
                    complete: found,
                    resume_at: next.0,
                });
            }
            from = Some(next);
        }
    }

    /// Every version and delete marker of exactly these keys. Keys are
    /// listed together by the prefix their group shares ([`prefix_groups`]:
    /// a member's directory is one listing); a group whose prefix turns out
    /// to be shared with many other objects (keys at the bucket root, or in
    /// a directory of everyone's files) is finished key by key instead, each
    /// listed by its own key as prefix. So the work is bounded by the keys
    /// asked for, never by the size of the bucket, and only their versions
    /// are held in memory.
    pub async fn versions_of(
        &self,
        bucket: &str,
        keys: &[String],
        depth: Option<usize>,
    ) -> Result<Vec<Version>, ObjectError> {
        // Groups are listed `concurrency` at a time.
        let name: std::sync::Arc<str> = std::sync::Arc::from(bucket);
        let listed = self
            .concurrently(prefix_groups(keys, depth), move |store, group| {
                let name = name.clone();
                async move { store.versions_of_group(&name, group).await }
            })
            .await?;
        Ok(listed.into_iter().flatten().collect())
    }

    /// Every version and delete marker of one group's keys.
    async fn versions_of_group(
        &self,
        bucket: &str,
        group: PrefixGroup,
    ) -> Result<Vec<Version>, ObjectError> {
        let mut found = Vec::new();
        let wanted: BTreeSet<&str> = group.keys.iter().map(String::as_str).collect();
        let budget = OTHER_ENTRIES_PER_GROUP.max(wanted.len().saturating_mul(2));
        let rest: Vec<&str> = match self
            .list_wanted(bucket, &group.prefix, &wanted, budget)
            .await?
        {
            Listing::Complete(versions) => return Ok(versions),
            Listing::TooBroad {
                complete,
                resume_at,
            } => {
                found.extend(complete);
                wanted
                    .iter()
                    .copied()
                    .filter(|key| *key >= resume_at.as_str())
                    .collect()
            }
        };
        tracing::debug!(
            bucket,
            prefix_len = group.prefix.len(),
            keys = rest.len(),
            "a shared prefix holds many other objects; listing these keys one by one"
        );
        for key in rest {
            let one: BTreeSet<&str> = [key].into_iter().collect();
            // A key's own listing starts at the key and stops right after
            // it: no budget needed.
            let (Listing::Complete(versions)
            | Listing::TooBroad {
                complete: versions, ..
            }) = self.list_wanted(bucket, key, &one, usize::MAX).await?;
            found.extend(versions);
        }
        Ok(found)
    }
}

/// Entries of other keys a group's listing may pass before the group is
/// listed key by key instead (one page's worth, or twice the keys wanted).
const OTHER_ENTRIES_PER_GROUP: usize = 1000;

/// One page of a versions listing.
struct VersionsPage {
    entries: Vec<Version>,
    /// Where the next page starts (key marker, version marker), if any.
    next: Option<(String, Option<String>)>,
}

/// What a filtered listing found.
enum Listing {
    /// Every version of every wanted key.
    Complete(Vec<Version>),
    /// Too many other objects under the prefix: the wanted keys before
    /// `resume_at` are complete, the rest must be listed another way.
    TooBroad {
        complete: Vec<Version>,
        resume_at: String,
    },
}

/// Keys listed together, and the prefix that lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixGroup {
    pub prefix: String,
    pub keys: Vec<String>,
}

/// Groups keys for listing: keys that share their first `depth` path
/// segments (`a/b/` for depth 2) go together — unset, keys that share their
/// whole directory — and each group is listed with its keys' longest common
/// prefix, so a listing never reaches past the directory that holds them.
/// Keys too shallow for `depth` group by their directory.
pub fn prefix_groups(keys: &[String], depth: Option<usize>) -> Vec<PrefixGroup> {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut groups: Vec<(&str, Vec<String>)> = Vec::new();
    for key in sorted {
        let scope = grouping_scope(key, depth);
        match groups.last_mut() {
            Some((last_scope, members)) if *last_scope == scope => members.push(key.clone()),
            _ => groups.push((scope, vec![key.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(_, keys)| PrefixGroup {
            prefix: common_prefix(&keys),
            keys,
        })
        .collect()
}

/// The part of a key that decides its group: its first `depth` path
/// segments, or its directory when it has fewer (or no depth is set).
fn grouping_scope(key: &str, depth: Option<usize>) -> &str {
    let directory = key.rfind('/').map_or("", |end| &key[..=end]);
    let Some(depth) = depth else {
        return directory;
    };
    match key.match_indices('/').nth(depth.max(1) - 1) {
        Some((index, _)) => &key[..=index],
        None => directory,
    }
}

fn common_prefix(keys: &[String]) -> String {
    let Some(first) = keys.first() else {
        return String::new();
    };
    let mut end = first.len();
    for key in &keys[1..] {
        end = first
            .char_indices()
            .zip(key.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((index, a), _)| index + a.len_utf8())
            .min(end);
    }
    first[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn keys_of_one_directory_share_a_listing() {
        let groups = prefix_groups(
            &keys(&["u/1/a.png", "u/1/b.png", "u/2/a.png", "top.png"]),
            None,
        );
        assert_eq!(
            groups,
            vec![
                PrefixGroup {
                    prefix: "top.png".into(),
                    keys: keys(&["top.png"])
                },
                PrefixGroup {
                    prefix: "u/1/".into(),
                    keys: keys(&["u/1/a.png", "u/1/b.png"])
                },
                PrefixGroup {
                    prefix: "u/2/a.png".into(),
                    keys: keys(&["u/2/a.png"])
                },
            ]
        );
    }

    #[test]
    fn a_depth_groups_a_members_directories_together() {
        let groups = prefix_groups(
            &keys(&[
                "inputs/m-1/000001/원본 이미지.png",
                "inputs/m-1/000002/원본 이미지.png",
                "inputs/m-2/000001/x.png",
                "inputs/flat.png",
            ]),
            Some(2),
        );
        let prefixes: Vec<&str> = groups.iter().map(|g| g.prefix.as_str()).collect();
        assert_eq!(
            prefixes,
            [
                "inputs/flat.png",
                "inputs/m-1/00000",
                "inputs/m-2/000001/x.png"
            ]
        );
        assert_eq!(groups[1].keys.len(), 2);
    }

    #[test]
    fn common_prefixes_stop_at_character_boundaries() {
        assert_eq!(common_prefix(&keys(&["a/가", "a/각"])), "a/");
        assert_eq!(common_prefix(&keys(&["same", "same"])), "same");
        assert_eq!(common_prefix(&keys(&["x", "y"])), "");
    }
}
