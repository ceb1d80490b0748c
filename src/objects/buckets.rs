//! How each bucket is erased: its catalog settings (`[storage.bucket."name"]`:
//! mode, versioning, replicas, region, listing depth) joined with what S3
//! says about versioning when the catalog leaves it to `auto`.
//!
//! The rule this module keeps: the answer to "is this bucket versioned?"
//! used for *deleting* may be cached for a few minutes (one GetBucketVersioning
//! per bucket, not per batch), but verification rests on an answer given after
//! the request's last deletion, so that a bucket whose versioning was switched
//! on mid-erasure cannot pass a plain read-back while its data sits in
//! noncurrent versions. A bucket once versioned never becomes unversioned
//! again (only suspended, which counts as versioned), so one answer asked
//! after the deletions holds for the rest of the request's read-backs: it is
//! kept per request until something is deleted again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{ObjectError, ObjectStore, Versioning};
use crate::catalog::{BucketSettings, ErasureMode, ExpiryTag, Storage};

/// How long a detected versioning state is trusted for deletion.
const VERSIONING_TTL: Duration = Duration::from_secs(300);

/// Verification answers kept at most (two or three per request being
/// verified); beyond this the lot is dropped and asked again.
const VERIFYING_ANSWERS: usize = 4096;

/// Every bucket's erasure settings, and the S3 clients to reach them.
#[derive(Debug)]
pub struct Buckets {
    settings: BTreeMap<String, BucketSettings>,
    objects: ObjectStore,
    detected: Mutex<HashMap<String, (Versioning, Instant)>>,
    /// Answers asked during a request's verification, by (request, bucket).
    verifying: Mutex<HashMap<(Uuid, String), Versioning>>,
    regional: Mutex<HashMap<String, ObjectStore>>,
}

/// One bucket, ready to erase from.
#[derive(Debug, Clone)]
pub struct BucketView {
    pub name: String,
    /// The client for the bucket's region.
    pub store: ObjectStore,
    pub versioned: bool,
    pub mode: ErasureMode,
    pub tag: ExpiryTag,
    pub list_prefix_depth: Option<usize>,
}

/// Whether a versioning answer may come from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// For deleting: a few minutes old is fine.
    Cached,
    /// Ask S3 now: before deleting what verification found left.
    Fresh,
    /// For verifying one request: asked of S3 at its first read-back after
    /// its deletions (in this claim of it, in this process), then reused
    /// until [`Buckets::forget_verifying`] says it deleted again.
    Verifying(Uuid),
}

impl Buckets {
    pub fn new(storage: &Storage, objects: ObjectStore) -> Buckets {
        Buckets {
            settings: storage.bucket_settings.clone(),
            objects,
            detected: Mutex::new(HashMap::new()),
            verifying: Mutex::new(HashMap::new()),
            regional: Mutex::new(HashMap::new()),
        }
    }

    /// The replica buckets of a bucket, in catalog order.
    pub fn replicas_of(&self, bucket: &str) -> &[String] {
        self.settings
            .get(bucket)
            .map(|settings| settings.replicas.as_slice())
            .unwrap_or_default()
    }

    /// A bucket's catalog settings (the defaults for a bucket without any).
    pub fn settings_of(&self, bucket: &str) -> BucketSettings {
        self.settings.get(bucket).cloned().unwrap_or_default()
    }

    /// The client for a bucket: signing for its region when the catalog
    /// gives one, else the default client.
    pub fn store_for(&self, bucket: &str) -> ObjectStore {
        match self.settings.get(bucket).and_then(|s| s.region.as_deref()) {
            Some(region) => self.regional_store(region),
            None => self.objects.clone(),
        }
    }

    /// A bucket's settings, with versioning resolved.
    pub async fn view(
        &self,
        bucket: &str,
        freshness: Freshness,
    ) -> Result<BucketView, ObjectError> {
        let settings = self.settings.get(bucket).cloned().unwrap_or_default();
        let store = self.store_for(bucket);
        let versioned = match settings.versioning {
            crate::catalog::Versioning::Enabled => true,
            crate::catalog::Versioning::Disabled => false,
            crate::catalog::Versioning::Auto => {
                self.detect(&store, bucket, freshness).await? == Versioning::Versioned
            }
        };
        Ok(BucketView {
            name: bucket.to_owned(),
            store,
            versioned,
            mode: settings.mode,
            tag: settings.tag.unwrap_or_default(),
            list_prefix_depth: settings.list_prefix_depth,
        })
    }

    async fn detect(
        &self,
        store: &ObjectStore,
        bucket: &str,
        freshness: Freshness,
    ) -> Result<Versioning, ObjectError> {
        match freshness {
            Freshness::Cached => {
                let cache = self.detected.lock().expect("cache lock is never poisoned");
                if let Some((answer, at)) = cache.get(bucket)
                    && at.elapsed() < VERSIONING_TTL
                {
                    return Ok(*answer);
                }
            }
            Freshness::Verifying(request) => {
                let cache = self.verifying.lock().expect("cache lock is never poisoned");
                if let Some(answer) = cache.get(&(request, bucket.to_owned())) {
                    return Ok(*answer);
                }
            }
            Freshness::Fresh => {}
        }
        let answer = store.versioning(bucket).await.map_err(|mut err| {
            if !err.is_transient() {
                err.message = format!(
                    "{}; lethe asks whether the bucket keeps versions: grant s3:GetBucketVersioning, \
                     or set versioning = \"enabled\" or \"disabled\" under [storage.bucket.\"{bucket}\"] in the catalog",
                    err.message
                );
            }
            err
        })?;
        self.detected
            .lock()
            .expect("cache lock is never poisoned")
            .insert(bucket.to_owned(), (answer, Instant::now()));
        if let Freshness::Verifying(request) = freshness {
            let mut cache = self.verifying.lock().expect("cache lock is never poisoned");
            if cache.len() >= VERIFYING_ANSWERS {
                cache.clear();
            }
            cache.insert((request, bucket.to_owned()), answer);
        }
        Ok(answer)
    }

    /// The request deleted again (a sweep, survivors erased again), or its
    /// claim began or ended: its next read-back asks S3 afresh.
    pub fn forget_verifying(&self, request: Uuid) {
        self.verifying
            .lock()
            .expect("cache lock is never poisoned")
            .retain(|(id, _), _| *id != request);
    }

    fn regional_store(&self, region: &str) -> ObjectStore {
        self.regional
            .lock()
            .expect("regional client lock is never poisoned")
            .entry(region.to_owned())
            .or_insert_with(|| self.objects.in_region(region))
            .clone()
    }
}
