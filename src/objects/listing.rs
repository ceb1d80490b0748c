//! Reading back which of a member's keys an unversioned bucket still holds,
//! with a listing per group of keys that share a prefix instead of a
//! HeadObject per key: one ListObjectsV2 call answers for up to 1,000 keys.
//!
//! A listing is proof of absence because S3 lists with the same strong
//! read-after-write consistency it reads with, and because a key is matched
//! byte for byte: a listing that leaves a wanted key out says it is gone.
//! Where that matching could be in doubt, the key is read back with
//! HeadObject instead — keys with control characters (which XML listings
//! cannot carry), `%` or `+` (which some S3-compatible servers return
//! URL-encoded), paths a file-backed server may normalise (`a//b`, `./`),
//! and keys alone in their group (a HEAD is as cheap as a
//! listing, and lists nothing else).
//!
//! Like [`super::versions`], the work is bounded by the keys asked for: a
//! listing is filtered as it streams, stops once past the last wanted key,
//! and a prefix that turns out to hold many other objects is abandoned for
//! HeadObject calls on the keys it has not yet answered for. A group of
//! more than 1,000 keys is listed in slices side by side (each starting
//! after the previous slice's last key), so a member's directory of 40,000
//! files costs 40 listings in flight together, not 40 one after another.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::versions::prefix_groups;
use super::{ObjectError, ObjectStore};

/// Entries of other keys a group's listing may pass before its remaining
/// keys are read back one by one instead (one page's worth, or twice the
/// keys wanted).
const OTHER_ENTRIES_PER_GROUP: usize = 1000;

impl ObjectStore {
    /// Which of these keys an unversioned bucket still holds: listed by
    /// prefix group ([`prefix_groups`], `depth` from the catalog), with a
    /// HeadObject for each key no listing answers for. The listings and the
    /// HeadObject calls share one pool of `concurrency` calls in flight, so
    /// a page costs one round of calls, not a round of listings and then a
    /// round of HEADs; only keys a listing gave up on (a crowded prefix)
    /// take a second round.
    pub async fn still_present(
        &self,
        bucket: &str,
        keys: &[String],
        depth: Option<usize>,
    ) -> Result<Vec<String>, ObjectError> {
        let (listable, by_head): (Vec<String>, Vec<String>) =
            keys.iter().cloned().partition(|key| listable(key));
        let mut calls: Vec<ReadBack> = by_head.into_iter().map(ReadBack::Head).collect();
        for group in prefix_groups(&listable, depth) {
            if group.keys.len() == 1 {
                calls.extend(group.keys.into_iter().map(ReadBack::Head));
                continue;
            }
            // A large group is listed in slices of a page's worth of keys,
            // side by side: each starts after the previous slice's last key.
            let mut start_after: Option<String> = None;
            for slice in group.keys.chunks(KEYS_PER_LISTING) {
                calls.push(ReadBack::List(Slice {
                    prefix: group.prefix.clone(),
                    start_after: start_after.clone(),
                    wanted: slice.iter().cloned().collect(),
                }));
                start_after = slice.last().cloned();
            }
        }
        let name: Arc<str> = Arc::from(bucket);
        let answers = self
            .concurrently(calls, move |store, call| {
                let name = name.clone();
                async move {
                    match call {
                        ReadBack::List(slice) => store.list_present(&name, slice).await,
                        ReadBack::Head(key) => {
                            let present = store.exists(&name, &key).await?;
                            Ok(GroupAnswer {
                                present: if present { vec![key] } else { Vec::new() },
                                unanswered: Vec::new(),
                            })
                        }
                    }
                }
            })
            .await?;
        let mut present = Vec::new();
        let mut unanswered = Vec::new();
        for answer in answers {
            present.extend(answer.present);
            unanswered.extend(answer.unanswered);
        }
        present.extend(self.existing(bucket, unanswered).await?);
        Ok(present)
    }

    /// Lists a slice of a group for its wanted keys: which are there, and
    /// which the listing gave up on before reaching (too many other
    /// objects).
    async fn list_present(&self, bucket: &str, slice: Slice) -> Result<GroupAnswer, ObjectError> {
        let Slice {
            prefix,
            start_after,
            wanted,
        } = slice;
        let (prefix, start_after) = (prefix.as_str(), start_after.as_deref());
        let budget = OTHER_ENTRIES_PER_GROUP.max(wanted.len().saturating_mul(2));
        let mut present = Vec::new();
        let mut others = 0usize;
        let mut continuation: Option<String> = None;
        let Some(last_wanted) = wanted.last().cloned() else {
            return Ok(GroupAnswer::default());
        };
        loop {
            let token = continuation.clone();
            let page = self
                .resend
                .run(|| {
                    let token = token.clone();
                    async move {
                        self.client
                            .list_objects_v2()
                            .bucket(bucket)
                            .prefix(prefix)
                            .set_start_after(start_after.map(str::to_owned))
                            .set_continuation_token(token)
                            .send()
                            .await
                            .map_err(|err| ObjectError::from_sdk("ListObjectsV2", bucket, err))
                    }
                })
                .await?;
            let mut last_listed: Option<&str> = None;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                if wanted.contains(key) {
                    present.push(key.to_owned());
                } else {
                    others += 1;
                }
                last_listed = Some(key);
            }
            let next = page
                .next_continuation_token()
                .filter(|_| page.is_truncated() == Some(true));
            let Some(next) = next else {
                return Ok(GroupAnswer {
                    present,
                    unanswered: Vec::new(),
                });
            };
            let Some(last_listed) = last_listed else {
                // A truncated page with nothing in it would loop forever.
                return Err(ObjectError::construction(
                    "ListObjectsV2",
                    bucket,
                    "the server said the listing is truncated but listed nothing",
                ));
            };
            // S3 lists in key order: everything up to here has been seen.
            if last_listed >= last_wanted.as_str() {
                return Ok(GroupAnswer {
                    present,
                    unanswered: Vec::new(),
                });
            }
            if others > budget {
                let unanswered = wanted
                    .iter()
                    .filter(|key| key.as_str() > last_listed)
                    .cloned()
                    .collect();
                return Ok(GroupAnswer {
                    present,
                    unanswered,
                });
            }
            continuation = Some(next.to_owned());
        }
    }
}

/// Keys a listing answers for at most: one page.
const KEYS_PER_LISTING: usize = 1000;

/// One call of a read-back: a listing of a slice, or a HeadObject of a key.
enum ReadBack {
    List(Slice),
    Head(String),
}

/// A slice of a prefix group, listed on its own.
struct Slice {
    prefix: String,
    /// The previous slice's last key: this listing starts after it.
    start_after: Option<String>,
    wanted: BTreeSet<String>,
}

/// What one slice's listing answered.
#[derive(Default)]
struct GroupAnswer {
    /// Wanted keys the listing showed.
    present: Vec<String>,
    /// Wanted keys it gave up before reaching.
    unanswered: Vec<String>,
}

/// Whether a listing can answer for this key, byte for byte: no
/// characters a listing may alter, and no path a file-backed server may
/// normalise (a leading `/`, empty, `.` or `..` segments).
fn listable(key: &str) -> bool {
    !key.chars().any(|c| c.is_control() || c == '%' || c == '+')
        && !key.starts_with('/')
        && key
            .split('/')
            .skip(1)
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && !matches!(key.split('/').next(), Some("." | ".."))
}

#[cfg(test)]
mod tests {
    use super::listable;

    #[test]
    fn keys_a_listing_might_alter_are_read_back_by_head() {
        assert!(listable("inputs/m-1/000001/원본 이미지.png"));
        assert!(!listable("a/100%.png"));
        assert!(!listable("a/1+1.png"));
        assert!(!listable("a/\u{1}.png"));
        assert!(!listable("/a/b.png"));
        assert!(!listable("a//b.png"));
        assert!(!listable("a/./b.png"));
        assert!(!listable("../b.png"));
        assert!(!listable("a/"));
    }
}
