//! Objects: lethe's S3 side, through `aws-sdk-s3` and the standard AWS
//! configuration chain, against AWS or any S3-compatible endpoint.
//!
//! The rules this module keeps: deletion goes through DeleteObjects with at
//! most 1,000 keys (or key versions) a call, and a key that does not exist
//! counts as deleted (S3 itself says so); every failure is classified
//! transient or permanent here, once, for the retry policy to read; errors
//! name the operation and the bucket, never an object key (keys often embed
//! member ids). [`versions`] and [`tagging`] hold the versioned-bucket and
//! tag-and-expire operations, [`listing`] the read-back of unversioned
//! buckets by listing, [`buckets`] how each bucket is erased.

pub mod buckets;
mod client;
mod error;
pub mod listing;
pub mod preflight;
pub mod resend;
pub mod tagging;
pub mod versions;

use std::future::Future;
use std::sync::Arc;

use aws_sdk_s3::Client;
pub use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

pub use buckets::{BucketView, Buckets};
pub use client::build_client;
pub use error::{ObjectError, ObjectErrorKind};
pub use resend::Resend;
pub use tagging::{Tag, TagState};
pub use versions::{Version, Versioning};

use crate::config::S3Settings;

/// DeleteObjects' limit.
pub const MAX_KEYS_PER_DELETE: usize = 1000;

/// The S3 operations lethe needs.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: Client,
    /// Calls in flight at once for one request (`s3.concurrency`).
    concurrency: usize,
    /// How a call the SDK gave up on is sent again.
    resend: Resend,
}

/// A key DeleteObjects refused.
#[derive(Debug, Clone)]
pub struct KeyFailure {
    pub key: String,
    /// The version refused, when versions were being deleted.
    pub version_id: Option<String>,
    pub code: String,
    pub message: String,
    pub kind: ObjectErrorKind,
}

impl ObjectStore {
    /// Builds the client from the standard AWS chain plus lethe's settings
    /// (static keys from the settings, when both are given, replace the
    /// chain's credentials).
    pub async fn connect(settings: &S3Settings) -> ObjectStore {
        let credentials = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => Some(Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "lethe-config",
            )),
            _ => None,
        };
        ObjectStore::from_client(build_client(settings, credentials).await)
            .with_resend(Resend::from_settings(settings))
            .with_concurrency(settings.concurrency)
    }

    /// Like [`ObjectStore::connect`], with static credentials instead of
    /// the AWS chain (for an S3 server lethe or a test started itself).
    pub async fn connect_with_credentials(
        settings: &S3Settings,
        credentials: Credentials,
    ) -> ObjectStore {
        ObjectStore::from_client(build_client(settings, Some(credentials)).await)
            .with_resend(Resend::from_settings(settings))
            .with_concurrency(settings.concurrency)
    }

    pub fn from_client(client: Client) -> ObjectStore {
        ObjectStore {
            client,
            concurrency: crate::config::S3Settings::default().concurrency,
            resend: Resend::default(),
        }
    }

    /// Keeps at most `n` calls of one request in flight.
    pub fn with_concurrency(mut self, n: usize) -> ObjectStore {
        self.concurrency = n.max(1);
        self
    }

    /// This store with `part / whole` of its calls in flight (at least
    /// one): the share of a request's concurrency for `part` of the keys
    /// it is working on side by side.
    pub fn with_share(self, part: usize, whole: usize) -> ObjectStore {
        let share = (self.concurrency * part).div_ceil(whole.max(1));
        self.with_concurrency(share)
    }

    /// Calls in flight at once for one request.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Sends failed calls again as `resend` says.
    pub fn with_resend(mut self, resend: Resend) -> ObjectStore {
        self.resend = resend;
        self
    }

    /// How this store sends a failed call again (for callers that re-send
    /// part of a call, such as the keys DeleteObjects refused for now).
    pub fn resend(&self) -> &Resend {
        &self.resend
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The same client, signing for another region (a bucket elsewhere,
    /// e.g. a replica).
    pub fn in_region(&self, region: &str) -> ObjectStore {
        let config = self
            .client
            .config()
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build();
        ObjectStore {
            client: Client::from_conf(config),
            concurrency: self.concurrency,
            resend: self.resend.clone(),
        }
    }

    /// Deletes up to 1,000 keys of one bucket in one call. Returns the keys S3
    /// refused, each classified; a call-level failure is an error.
    pub async fn delete_keys(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<KeyFailure>, ObjectError> {
        let targets: Vec<(String, Option<String>)> =
            keys.iter().map(|key| (key.clone(), None)).collect();
        self.delete_targets(bucket, &targets).await
    }

    /// Deletes up to 1,000 keys or key versions (`(key, Some(version))`,
    /// delete markers included) of one bucket in one call (sent again if it
    /// fails for now). Returns what S3 refused, each classified; a
    /// call-level failure is an error.
    ///
    /// An error entry that names no key that was sent (none at all, or one
    /// not byte-identical to a key sent: a server that normalises Unicode)
    /// cannot be pinned on an object. It is logged and left out: the
    /// objects it might be about are read back by verification, which
    /// erases any survivor again.
    pub async fn delete_targets(
        &self,
        bucket: &str,
        targets: &[(String, Option<String>)],
    ) -> Result<Vec<KeyFailure>, ObjectError> {
        assert!(
            targets.len() <= MAX_KEYS_PER_DELETE,
            "callers batch by MAX_KEYS_PER_DELETE"
        );
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        // The request is built for each attempt rather than built once and
        // cloned: one copy of the keys at a time, whatever the re-sends.
        let output = self
            .resend
            .run(move || async move {
                let delete = delete_request(targets)
                    .map_err(|err| ObjectError::construction("DeleteObjects", bucket, err))?;
                self.client
                    .delete_objects()
                    .bucket(bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|err| ObjectError::from_sdk("DeleteObjects", bucket, err))
            })
            .await?;
        // Quiet mode: usually no entries at all, and nothing to match.
        if output.errors().is_empty() {
            return Ok(Vec::new());
        }
        let sent: std::collections::HashSet<&str> =
            targets.iter().map(|(key, _)| key.as_str()).collect();
        let mut unattributed = 0usize;
        let failures = output
            .errors()
            .iter()
            .filter_map(|failure| {
                let Some(key) = failure.key().filter(|key| sent.contains(key)) else {
                    unattributed += 1;
                    return None;
                };
                let code = failure.code().unwrap_or("Unknown").to_owned();
                Some(KeyFailure {
                    key: key.to_owned(),
                    version_id: failure.version_id().map(str::to_owned),
                    kind: ObjectErrorKind::of_code(&code, None),
                    message: failure.message().unwrap_or_default().to_owned(),
                    code,
                })
            })
            .collect();
        if unattributed > 0 {
            tracing::warn!(
                bucket,
                entries = unattributed,
                "DeleteObjects answered with error entries naming no key that was sent;                  ignored (verification reads every object back)"
            );
        }
        Ok(failures)
    }

    /// Whether an object exists (HeadObject, sent again if it fails for now).
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, ObjectError> {
        self.resend
            .run(move || async move {
                match self
                    .client
                    .head_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(err) => {
                        if err.as_service_error().is_some_and(|e| e.is_not_found()) {
                            Ok(false)
                        } else {
                            Err(ObjectError::from_sdk("HeadObject", bucket, err))
                        }
                    }
                }
            })
            .await
    }

    /// Which of these keys of one bucket still exist, checked concurrently.
    pub async fn existing(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<String>, ObjectError> {
        let bucket: Arc<str> = Arc::from(bucket);
        let found = self
            .concurrently(keys, move |store, key| {
                let bucket = bucket.clone();
                async move {
                    let exists = store.exists(&bucket, &key).await?;
                    Ok(exists.then_some(key))
                }
            })
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Runs `call` for every item, `concurrency` at a time; the
    /// first error wins. Results come in completion order.
    pub(crate) async fn concurrently<T, R, F, Fut>(
        &self,
        items: Vec<T>,
        call: F,
    ) -> Result<Vec<R>, ObjectError>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(ObjectStore, T) -> Fut,
        Fut: Future<Output = Result<R, ObjectError>> + Send + 'static,
    {
        let mut pending = items.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut results = Vec::new();
        loop {
            while running.len() < self.concurrency {
                let Some(item) = pending.next() else { break };
                running.spawn(call(self.clone(), item));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            match joined {
                Ok(result) => results.push(result?),
                // A panic in a call is the worker's to catch and record.
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => {
                    return Err(ObjectError::transient(
                        "S3 call",
                        "",
                        format!("a call task ended early: {err}"),
                    ));
                }
            }
        }
        Ok(results)
    }

    /// Reads a whole object of at most `max_bytes` (JSON manifests that list
    /// more objects). `None`: it does not exist; `Some(None)`: it is larger.
    pub async fn get_bounded(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<Option<Vec<u8>>>, ObjectError> {
        self.resend
            .run(move || async move { self.get_bounded_once(bucket, key, max_bytes).await })
            .await
    }

    async fn get_bounded_once(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<Option<Vec<u8>>>, ObjectError> {
        let output = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                if err.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                    return Ok(None);
                }
                return Err(ObjectError::from_sdk("GetObject", bucket, err));
            }
        };
        if output
            .content_length()
            .is_some_and(|len| len as u64 > max_bytes)
        {
            return Ok(Some(None));
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|err| {
                ObjectError::transient("GetObject", bucket, format!("reading the body: {err}"))
            })?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Ok(Some(None));
        }
        Ok(Some(Some(bytes.to_vec())))
    }
}

/// A DeleteObjects body for these targets, in quiet mode: the response lists
/// only failures, so its size does not grow with the call.
fn delete_request(
    targets: &[(String, Option<String>)],
) -> Result<Delete, aws_sdk_s3::error::BuildError> {
    let identifiers = targets
        .iter()
        .map(|(key, version)| {
            ObjectIdentifier::builder()
                .key(key)
                .set_version_id(version.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Delete::builder()
        .set_objects(Some(identifiers))
        .quiet(true)
        .build()
}
