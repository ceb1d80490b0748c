//! A purpose-built versioned S3 server: just the operations lethe's
//! versioned erasure uses (GetBucketVersioning, ListObjectVersions,
//! DeleteObjects by key or version), over an in-memory map, so that a test
//! can put a member's keys among 100,000 other objects in a versioned bucket
//! in a moment. (moto copes with neither that many objects in reasonable
//! time nor that many listings: it leaks memory on each.) It counts the
//! listing calls and the entries it served, which is what a test of bounded
//! listing asserts on.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::Credentials;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use super::s3::{Faults, serve};

const ACCESS_KEY: &str = "lethe-versioned-access-key";
const SECRET_KEY: &str = "lethe-versioned-secret-key";

/// Key -> its versions, newest first: (version id, is a delete marker).
pub type Versions = BTreeMap<String, Vec<(String, bool)>>;

/// What the server has served.
#[derive(Debug, Default)]
pub struct ListingCounters {
    pub list_calls: AtomicU64,
    /// Versions and delete markers returned by all listings together.
    pub entries_served: AtomicU64,
}

pub struct VersionedServer {
    port: u16,
    pub bucket: String,
    pub counters: Arc<ListingCounters>,
    data: Arc<Mutex<Versions>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl VersionedServer {
    /// Serves `bucket` holding `versions` on a free loopback port.
    pub fn start(bucket: &str, versions: Versions) -> VersionedServer {
        let counters = Arc::new(ListingCounters::default());
        let data = Arc::new(Mutex::new(versions));
        let fake = FakeVersioned {
            bucket: bucket.to_owned(),
            data: Arc::clone(&data),
            counters: Arc::clone(&counters),
            next_id: AtomicU64::new(1_000_000),
        };
        let mut builder = S3ServiceBuilder::new(fake);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lethe-test-versioned")
            .enable_all()
            .build()
            .expect("building the versioned server runtime");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a port");
        let port = listener.local_addr().expect("bound").port();
        // Served until the runtime shuts down.
        std::mem::forget(serve(
            &runtime,
            listener,
            service,
            Arc::new(Faults::default()),
        ));
        VersionedServer {
            port,
            bucket: bucket.to_owned(),
            counters,
            data,
            runtime: Some(runtime),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn credentials(&self) -> Credentials {
        Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "lethe-tests")
    }

    /// The versions of `key` now (newest first).
    pub fn versions_of(&self, key: &str) -> Vec<(String, bool)> {
        self.data
            .lock()
            .expect("never poisoned")
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// How many keys hold at least one version or marker.
    pub fn key_count(&self) -> usize {
        self.data.lock().expect("never poisoned").len()
    }
}

impl Drop for VersionedServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct FakeVersioned {
    bucket: String,
    data: Arc<Mutex<Versions>>,
    counters: Arc<ListingCounters>,
    next_id: AtomicU64,
}

impl FakeVersioned {
    fn check_bucket(&self, bucket: &str) -> S3Result<()> {
        if bucket == self.bucket {
            Ok(())
        } else {
            Err(s3_error!(NoSuchBucket))
        }
    }
}

#[async_trait::async_trait]
impl S3 for FakeVersioned {
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.check_bucket(&req.input.bucket)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            ..Default::default()
        }))
    }

    /// S3's semantics: keys in order, each key's versions newest first,
    /// starting after (key marker, version marker), at most `max_keys`
    /// entries a page.
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        self.check_bucket(&input.bucket)?;
        self.counters.list_calls.fetch_add(1, Ordering::SeqCst);
        let prefix = input.prefix.unwrap_or_default();
        let max = input.max_keys.unwrap_or(1000).clamp(1, 1000) as usize;
        let data = self.data.lock().expect("never poisoned");
        let start = match &input.key_marker {
            Some(marker) if input.version_id_marker.is_some() => {
                std::ops::Bound::Included(marker.clone())
            }
            Some(marker) => std::ops::Bound::Excluded(marker.clone()),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut served = 0usize;
        // The last entry served; it is the next page's marker if one follows.
        let mut last: Option<(String, String)> = None;
        let mut truncated = false;
        'keys: for (key, list) in data.range((start, std::ops::Bound::Unbounded)) {
            if !key.starts_with(&prefix) {
                if key.as_str() > prefix.as_str() {
                    break;
                }
                continue;
            }
            let mut entries = list.iter();
            if input.key_marker.as_deref() == Some(key.as_str())
                && let Some(after) = &input.version_id_marker
            {
                for (id, _) in entries.by_ref() {
                    if id == after {
                        break;
                    }
                }
            }
            for (id, is_marker) in entries {
                if served == max {
                    truncated = true;
                    break 'keys;
                }
                served += 1;
                last = Some((key.clone(), id.clone()));
                if *is_marker {
                    markers.push(DeleteMarkerEntry {
                        key: Some(key.clone()),
                        version_id: Some(id.clone()),
                        ..Default::default()
                    });
                } else {
                    versions.push(ObjectVersion {
                        key: Some(key.clone()),
                        version_id: Some(id.clone()),
                        ..Default::default()
                    });
                }
            }
        }
        let (next_key, next_version) = match last.filter(|_| truncated) {
            Some((key, id)) => (Some(key), Some(id)),
            None => (None, None),
        };
        self.counters
            .entries_served
            .fetch_add(served as u64, Ordering::SeqCst);
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(self.bucket.clone()),
            prefix: Some(prefix),
            is_truncated: Some(next_key.is_some()),
            next_key_marker: next_key,
            next_version_id_marker: next_version,
            versions: Some(versions),
            delete_markers: Some(markers),
            max_keys: Some(max as i32),
            ..Default::default()
        }))
    }

    /// By version id: that version or marker goes. Without: a delete marker
    /// is added, as in a versioned bucket.
    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.check_bucket(&req.input.bucket)?;
        let mut data = self.data.lock().expect("never poisoned");
        for object in req.input.delete.objects {
            match &object.version_id {
                Some(id) => {
                    if let Some(list) = data.get_mut(&object.key) {
                        list.retain(|(v, _)| v != id);
                        if list.is_empty() {
                            data.remove(&object.key);
                        }
                    }
                }
                None => {
                    let id = format!("m{}", self.next_id.fetch_add(1, Ordering::SeqCst));
                    data.entry(object.key.clone())
                        .or_default()
                        .insert(0, (id, true));
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput::default()))
    }
}
