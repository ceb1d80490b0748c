//! Objects: lethe's S3 side, through `aws-sdk-s3` and the standard AWS
//! configuration chain, against AWS or any S3-compatible endpoint.
//!
//! The rules this module keeps: deletion goes through DeleteObjects with at
//! most 1,000 keys a call, and a key that does not exist counts as deleted
//! (S3 itself says so); every failure is classified transient or permanent
//! here, once, for the retry policy to read; errors name the operation and
//! the bucket, never an object key (keys often embed member ids).

mod client;
mod error;

use std::sync::Arc;

use aws_sdk_s3::Client;
pub use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

pub use client::build_client;
pub use error::{ObjectError, ObjectErrorKind};

use crate::config::S3Settings;

/// DeleteObjects' limit.
pub const MAX_KEYS_PER_DELETE: usize = 1000;

/// The S3 operations lethe needs.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: Client,
    /// HeadObject calls in flight at once during verification.
    verify_concurrency: usize,
}

/// A key DeleteObjects refused.
#[derive(Debug, Clone)]
pub struct KeyFailure {
    pub key: String,
    pub code: String,
    pub message: String,
    pub kind: ObjectErrorKind,
}

impl ObjectStore {
    /// Builds the client from the standard AWS chain plus lethe's settings.
    pub async fn connect(settings: &S3Settings) -> ObjectStore {
        ObjectStore::from_client(build_client(settings, None).await)
    }

    /// Like [`ObjectStore::connect`], with static credentials instead of
    /// the AWS chain (for an S3 server lethe or a test started itself).
    pub async fn connect_with_credentials(
        settings: &S3Settings,
        credentials: Credentials,
    ) -> ObjectStore {
        ObjectStore::from_client(build_client(settings, Some(credentials)).await)
    }

    pub fn from_client(client: Client) -> ObjectStore {
        ObjectStore {
            client,
            verify_concurrency: 16,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Deletes up to 1,000 keys of one bucket in one call. Returns the keys S3
    /// refused, each classified; a call-level failure is an error.
    pub async fn delete_keys(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<KeyFailure>, ObjectError> {
        assert!(
            keys.len() <= MAX_KEYS_PER_DELETE,
            "callers batch by MAX_KEYS_PER_DELETE"
        );
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let identifiers = keys
            .iter()
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| ObjectError::construction("DeleteObjects", bucket, err))?;
        // Quiet mode: the response lists only failures, so its size does not
        // grow with the batch.
        let delete = Delete::builder()
            .set_objects(Some(identifiers))
            .quiet(true)
            .build()
            .map_err(|err| ObjectError::construction("DeleteObjects", bucket, err))?;
        let output = self
            .client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|err| ObjectError::from_sdk("DeleteObjects", bucket, err))?;
        Ok(output
            .errors()
            .iter()
            .map(|failure| {
                let code = failure.code().unwrap_or("Unknown").to_owned();
                KeyFailure {
                    key: failure.key().unwrap_or_default().to_owned(),
                    kind: ObjectErrorKind::of_code(&code, None),
                    message: failure.message().unwrap_or_default().to_owned(),
                    code,
                }
            })
            .collect())
    }

    /// Whether an object exists (HeadObject).
    pub async fn exists(&self, bucket: &str, key: &str) -> Result<bool, ObjectError> {
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
    }

    /// Which of these keys of one bucket still exist, checked concurrently.
    pub async fn existing(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<String>, ObjectError> {
        let store = Arc::new(self.clone());
        let bucket: Arc<str> = Arc::from(bucket);
        let mut pending = keys.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut survivors = Vec::new();
        loop {
            while running.len() < self.verify_concurrency {
                let Some(key) = pending.next() else { break };
                let (store, bucket) = (store.clone(), bucket.clone());
                running.spawn(async move {
                    let exists = store.exists(&bucket, &key).await?;
                    Ok::<_, ObjectError>(exists.then_some(key))
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let found = joined.expect("HeadObject task panicked")?;
            survivors.extend(found);
        }
        Ok(survivors)
    }

    /// Reads a whole object of at most `max_bytes` (JSON manifests that list
    /// more objects). `None`: it does not exist; `Some(None)`: it is larger.
    pub async fn get_bounded(
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
