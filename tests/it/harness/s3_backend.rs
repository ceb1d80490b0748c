//! The request-handling side of the test S3 server: request counters, the `S3Access`
//! hook that injects faults (the switches are in `s3_faults`), and the `s3s::S3`
//! wrapper that forwards the operations lethe uses to s3s-fs while counting them (and
//! charging the modelled per-key cost, `s3_latency`, of the calls that have one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{self, *};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

pub use super::s3_faults::{Faults, Injected, RandomCounts, StrayDeleteError};
use super::s3_latency::Latency;

/// What the server has been asked to do. Getters are snapshots; `reset` starts over.
#[derive(Default)]
pub struct S3Counters {
    delete_objects_calls: AtomicU64,
    delete_object_calls: AtomicU64,
    head_object_calls: AtomicU64,
    get_object_calls: AtomicU64,
    deletion_requests: Mutex<Vec<(String, String)>>,
    requests: Mutex<BTreeMap<String, u64>>,
    /// (bucket, region of the request's signature), for every request.
    signed_regions: Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl S3Counters {
    /// The regions requests about `bucket` were signed for.
    pub fn regions_signed_for(&self, bucket: &str) -> Vec<String> {
        self.signed_regions
            .lock()
            .expect("region lock is never poisoned")
            .iter()
            .filter(|(b, _)| b == bucket)
            .map(|(_, region)| region.clone())
            .collect()
    }

    /// DeleteObjects calls that got past fault injection and reached storage.
    pub fn delete_objects_calls(&self) -> u64 {
        self.delete_objects_calls.load(Ordering::SeqCst)
    }

    /// Single-key DeleteObject calls that reached storage.
    pub fn delete_object_calls(&self) -> u64 {
        self.delete_object_calls.load(Ordering::SeqCst)
    }

    /// Keys requested for deletion by the calls above (duplicates included).
    pub fn keys_requested_for_deletion(&self) -> usize {
        self.lock_deletions().len()
    }

    /// Every (bucket, key) requested for deletion, by DeleteObjects or DeleteObject,
    /// in arrival order (within one DeleteObjects call: request order).
    pub fn deletion_requests(&self) -> Vec<(String, String)> {
        self.lock_deletions().clone()
    }

    /// HeadObject calls that reached storage.
    pub fn head_object_calls(&self) -> u64 {
        self.head_object_calls.load(Ordering::SeqCst)
    }

    /// GetObject calls that reached storage.
    pub fn get_object_calls(&self) -> u64 {
        self.get_object_calls.load(Ordering::SeqCst)
    }

    /// Authenticated requests for `op` (e.g. "DeleteObjects"), *including* those that
    /// were failed by an injected fault: this counts attempts, retries included.
    pub fn requests(&self, op: &str) -> u64 {
        self.lock_requests().get(op).copied().unwrap_or(0)
    }

    /// Every operation asked for so far with its count (as [`S3Counters::requests`]).
    pub fn all_requests(&self) -> BTreeMap<String, u64> {
        self.lock_requests().clone()
    }

    pub fn reset(&self) {
        for counter in [
            &self.delete_objects_calls,
            &self.delete_object_calls,
            &self.head_object_calls,
            &self.get_object_calls,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        self.lock_deletions().clear();
        self.lock_requests().clear();
        self.signed_regions
            .lock()
            .expect("region lock is never poisoned")
            .clear();
    }

    fn lock_deletions(&self) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
        self.deletion_requests
            .lock()
            .expect("counter lock is never poisoned")
    }

    fn lock_requests(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.requests
            .lock()
            .expect("counter lock is never poisoned")
    }
}

/// Runs before every request is even parsed, which makes it the one place to fail any
/// operation uniformly.
pub(super) struct FaultInjector {
    faults: Arc<Faults>,
    counters: Arc<S3Counters>,
}

impl FaultInjector {
    pub(super) fn new(faults: Arc<Faults>, counters: Arc<S3Counters>) -> Self {
        Self { faults, counters }
    }
}

#[async_trait::async_trait]
impl S3Access for FaultInjector {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        // Replacing the default check must not make anonymous requests succeed.
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Signature is required"));
        }
        let op = cx.s3_op().name().to_owned();
        let op = op.as_str();
        // `Credential=AKID/20261129/eu-central-1/s3/aws4_request`.
        let region = cx
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|scope| scope.split('/').nth(2))
            .map(str::to_owned);
        let bucket = match cx.s3_path() {
            s3s::path::S3Path::Bucket { bucket } | s3s::path::S3Path::Object { bucket, .. } => {
                Some(bucket.to_string())
            }
            s3s::path::S3Path::Root => None,
        };
        if let (Some(bucket), Some(region)) = (bucket, region) {
            self.counters
                .signed_regions
                .lock()
                .expect("region lock is never poisoned")
                .insert((bucket, region));
        }
        *self
            .counters
            .lock_requests()
            .entry(op.to_owned())
            .or_insert(0) += 1;
        // Decided by the HTTP layer (s3.rs), which also drops connections.
        match cx.extensions_mut().get::<Injected>() {
            Some(Injected::SlowDown) => {
                return Err(s3_error!(
                    SlowDown,
                    "injected at random by the lethe test harness"
                ));
            }
            Some(Injected::InternalError) => {
                return Err(s3_error!(
                    InternalError,
                    "injected at random by the lethe test harness"
                ));
            }
            _ => {}
        }
        // The AWS SDK numbers its attempts of one call: `attempt=1; max=3`.
        let first_attempt = cx
            .headers()
            .get("amz-sdk-request")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attempt=1;"));
        let key = match cx.s3_path() {
            s3s::path::S3Path::Object { key, .. } => Some(key.to_string()),
            _ => None,
        };
        self.faults.on_request(op, first_attempt, key.as_deref())
    }
}

/// Forwards the operations lethe uses to s3s-fs, counting the interesting ones.
pub(super) struct CountingS3 {
    inner: s3s_fs::FileSystem,
    /// s3s-fs's data directory: a bucket is a directory in it.
    root: std::path::PathBuf,
    counters: Arc<S3Counters>,
    faults: Arc<Faults>,
    latency: Arc<Latency>,
}

impl CountingS3 {
    pub(super) fn new(
        inner: s3s_fs::FileSystem,
        root: std::path::PathBuf,
        counters: Arc<S3Counters>,
        faults: Arc<Faults>,
        latency: Arc<Latency>,
    ) -> Self {
        Self {
            inner,
            root,
            counters,
            faults,
            latency,
        }
    }
}

#[async_trait::async_trait]
impl S3 for CountingS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.inner.put_object(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.inner.copy_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.counters
            .get_object_calls
            .fetch_add(1, Ordering::SeqCst);
        let result = self.inner.get_object(req).await;
        self.deny_if_missing(result)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.counters
            .head_object_calls
            .fetch_add(1, Ordering::SeqCst);
        let result = self.inner.head_object(req).await;
        self.deny_if_missing(result)
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let response = self.inner.list_objects(req).await?;
        let entries = response.output.contents.as_ref().map_or(0, Vec::len);
        self.latency.keys(entries).await;
        Ok(response)
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let bucket_dir = self.root.join(&req.input.bucket);
        let response = if self.latency.indexed_listing() && bucket_dir.is_dir() {
            let input = req.input.clone();
            let indexed =
                tokio::task::spawn_blocking(move || super::s3_listing::list(&bucket_dir, input))
                    .await
                    .map_err(|e| {
                        S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
                    })?;
            match indexed {
                Some(output) => S3Response::new(output.map_err(|e| {
                    S3Error::with_message(S3ErrorCode::InternalError, e.to_string())
                })?),
                None => self.inner.list_objects_v2(req).await?,
            }
        } else {
            self.inner.list_objects_v2(req).await?
        };
        let entries = response.output.contents.as_ref().map_or(0, Vec::len);
        self.latency.keys(entries).await;
        Ok(response)
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.counters
            .delete_object_calls
            .fetch_add(1, Ordering::SeqCst);
        let request = (req.input.bucket.clone(), req.input.key.clone());
        self.counters.lock_deletions().push(request);
        self.inner.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        mut req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.counters
            .delete_objects_calls
            .fetch_add(1, Ordering::SeqCst);
        let bucket = req.input.bucket.clone();
        // s3s-fs deletes from a missing bucket without a word; S3 answers
        // NoSuchBucket.
        if !self.root.join(&bucket).is_dir() {
            return Err(s3_error!(NoSuchBucket));
        }
        let sent_first = req.input.delete.objects.first().map(|o| o.key.clone());
        let quiet = req.input.delete.quiet == Some(true);
        // S3's work grows with the keys named, found or not.
        self.latency.keys(req.input.delete.objects.len()).await;
        // The preflight's probe keys (`lethe check`, a worker's start) are
        // not the erasure's: tests count what the erasure asked for.
        self.counters.lock_deletions().extend(
            req.input
                .delete
                .objects
                .iter()
                .filter(|object| !object.key.starts_with("lethe-preflight/"))
                .map(|object| (bucket.clone(), object.key.clone())),
        );

        // Injected per-key failures are answered here and never reach storage.
        let mut errors = Vec::new();
        req.input
            .delete
            .objects
            .retain(|object| match self.faults.delete_key_error(&object.key) {
                Some(code) => {
                    errors.push(dto::Error {
                        code: Some(code),
                        key: Some(object.key.clone()),
                        message: Some("injected by the lethe test harness".to_owned()),
                        ..Default::default()
                    });
                    false
                }
                None => true,
            });
        // Pretended deletes vanish from the request: the (quiet) response lists
        // no error for them, so the client believes they are gone.
        req.input
            .delete
            .objects
            .retain(|object| !self.faults.pretends_to_delete(&object.key));
        let mut response = if req.input.delete.objects.is_empty() {
            S3Response::new(DeleteObjectsOutput::default())
        } else if self.latency.batched_deletes()
            && req.input.delete.objects.iter().all(|o| plain_key(&o.key))
        {
            self.delete_files(&bucket, std::mem::take(&mut req.input.delete.objects))
                .await?
        } else {
            self.inner.delete_objects(req).await?
        };
        for stray in self.faults.stray_delete_errors() {
            self.faults.count_injected();
            let (key, code) = match stray {
                StrayDeleteError::WithoutKey(code) => (None, code),
                StrayDeleteError::AlteredKey(code) => {
                    (sent_first.as_ref().map(|k| format!("{k}\u{301}")), code)
                }
            };
            errors.push(dto::Error {
                code: Some(code.to_owned()),
                key,
                message: Some("injected by the lethe test harness".to_owned()),
                ..Default::default()
            });
        }
        if !errors.is_empty() {
            response
                .output
                .errors
                .get_or_insert_with(Vec::new)
                .extend(errors);
        }
        // S3 in quiet mode answers with the keys it could not delete only;
        // s3s-fs listed every key it deleted as well (~100 bytes of XML a
        // key, which lethe's HTTP client buffered and parsed).
        if quiet {
            response.output.deleted = None;
        }
        Ok(response)
    }
}

/// Removes the directories between `file` (just removed) and `bucket_dir` that are now
/// empty, deepest first; stops at the first that is not (`remove_dir` refuses it).
fn remove_emptied_directories(bucket_dir: &std::path::Path, file: &std::path::Path) {
    let mut directory = file.parent();
    while let Some(path) = directory {
        if path == bucket_dir || !path.starts_with(bucket_dir) || std::fs::remove_dir(path).is_err()
        {
            break;
        }
        directory = path.parent();
    }
}

/// A key that is a plain relative path (no trailing `/`, no `.` or `..` segment, not
/// absolute): its file is `<root>/<bucket>/<key>`, as s3s-fs resolves it.
fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && !key.ends_with('/')
        && std::path::Path::new(key)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

impl CountingS3 {
    /// What s3s-fs's DeleteObjects does for plain keys (remove each file; a missing one
    /// is deleted), in one blocking call for the lot: see [`Latency::set_batched_deletes`].
    /// A directory a removal leaves empty is removed too (up to the bucket's): S3 has no
    /// directories, and a listing that walked a member's 26,000 emptied request
    /// directories would charge the server's walk to the read-back, which AWS answers
    /// from its index.
    async fn delete_files(
        &self,
        bucket: &str,
        objects: Vec<ObjectIdentifier>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let dir = self.root.join(bucket);
        let removed = tokio::task::spawn_blocking(move || {
            let mut deleted = Vec::with_capacity(objects.len());
            for object in objects {
                let file = dir.join(&object.key);
                match std::fs::remove_file(&file) {
                    Ok(()) => remove_emptied_directories(&dir, &file),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                deleted.push(DeletedObject {
                    key: Some(object.key),
                    version_id: object.version_id,
                    ..Default::default()
                });
            }
            Ok(deleted)
        })
        .await
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?
        .map_err(|e| S3Error::with_message(S3ErrorCode::InternalError, e.to_string()))?;
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(removed),
            ..Default::default()
        }))
    }

    /// AWS answers a missing key with 403 when the caller may not list the bucket.
    fn deny_if_missing<T>(&self, result: S3Result<T>) -> S3Result<T> {
        match result {
            Err(err)
                if self.faults.denies_missing_keys()
                    && (matches!(err.code(), S3ErrorCode::NoSuchKey)
                        || err.status_code() == Some(http::StatusCode::NOT_FOUND)) =>
            {
                let mut denied = S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied");
                denied.set_status_code(http::StatusCode::FORBIDDEN);
                Err(denied)
            }
            other => other,
        }
    }
}
