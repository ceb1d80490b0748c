//! A lethe deployment against the moto S3 server, for versioned, replicated,
//! locked and tag-and-expire buckets: a fresh migrated database with the
//! example service's schema, a catalog written for the test (the example's
//! client tables and features, the test's own buckets and storage settings),
//! and helpers to put versions and rows and to read back what is left.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ObjectLockLegalHoldStatus, Tag, VersioningConfiguration,
};
use lethe::objects::ObjectStore;
use lethe::references::ObjectRef;
use lethe::store::Store;
use lethe::{Engine, State};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::{TEST_HASH_SECRET, example_catalog, run_worker_once};
use crate::harness::{Moto, TestDatabase, fresh_database, moto};

pub struct MotoApp {
    pub db: TestDatabase,
    pub moto: &'static Moto,
    /// The test's own client, for setup and assertions.
    pub s3: aws_sdk_s3::Client,
    pub engine: Engine,
    /// Holds the catalog.
    _dir: tempfile::TempDir,
}

/// A request row set: client, feature and task ids.
#[derive(Debug, Clone)]
pub struct Request {
    pub client_id: i64,
    pub task_id: i64,
}

impl MotoApp {
    /// `storage` is the body of the catalog's `[storage]` section.
    pub async fn start(storage: &str) -> MotoApp {
        let moto = moto();
        let dir = tempfile::tempdir().expect("catalog dir");
        write_catalog(dir.path(), storage);
        let db = fresh_database().await;
        let mut config = crate::app::test_config_for(&db.url, &moto.endpoint(), moto.region());
        config.catalog = dir.path().to_owned();
        config.minimisation.subject_hash_secret = Some(TEST_HASH_SECRET.to_owned());
        let store = Store::from_pool(db.pool.clone());
        store.migrate().await.expect("migrations apply");
        lethe::example::create_schema(&store)
            .await
            .expect("example schema");
        let objects = ObjectStore::connect_with_credentials(&config.s3, moto.credentials()).await;
        let engine = Engine::with_store(store, config).with_objects(objects);
        MotoApp {
            db,
            moto,
            s3: moto.client(),
            engine,
            _dir: dir,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    pub async fn create_bucket(&self, name: &str, versioned: bool, object_lock: bool) {
        let mut create = self.s3.create_bucket().bucket(name);
        if object_lock {
            create = create.object_lock_enabled_for_bucket(true);
        }
        create
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket {name}: {e:?}"));
        if versioned && !object_lock {
            self.s3
                .put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutBucketVersioning {name}: {e:?}"));
        }
    }

    /// Puts an object (a new version in a versioned bucket).
    pub async fn put(&self, bucket: &str, key: &str, body: &str) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {bucket}/{key}: {e:?}"));
    }

    /// Puts an object under legal hold.
    pub async fn put_on_legal_hold(&self, bucket: &str, key: &str) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"held"))
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject (legal hold) {bucket}/{key}: {e:?}"));
    }

    /// Puts an object carrying a tag of its own.
    pub async fn put_tagged(&self, bucket: &str, key: &str, tag: (&str, &str)) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"tagged"))
            .tagging(format!("{}={}", tag.0, tag.1))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject (tagged) {bucket}/{key}: {e:?}"));
    }

    /// Deletes without a version: a delete marker in a versioned bucket.
    pub async fn delete(&self, bucket: &str, key: &str) {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteObject {bucket}/{key}: {e:?}"));
    }

    /// Every version and delete marker of exactly `key`: (version id, is marker).
    pub async fn versions(&self, bucket: &str, key: &str) -> Vec<(String, bool)> {
        let out = self
            .s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListObjectVersions {bucket}: {e:?}"));
        let mut found: Vec<(String, bool)> = out
            .versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .map(|v| (v.version_id().unwrap_or_default().to_owned(), false))
            .collect();
        found.extend(
            out.delete_markers()
                .iter()
                .filter(|m| m.key() == Some(key))
                .map(|m| (m.version_id().unwrap_or_default().to_owned(), true)),
        );
        found
    }

    /// Whether the current version of `key` exists (HeadObject).
    pub async fn exists(&self, bucket: &str, key: &str) -> bool {
        match self.s3.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => false,
            Err(e) => panic!("HeadObject {bucket}/{key}: {e:?}"),
        }
    }

    /// The current version's tags.
    pub async fn tags(&self, bucket: &str, key: &str) -> Vec<(String, String)> {
        let out = self
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetObjectTagging {bucket}/{key}: {e:?}"));
        let mut tags: Vec<(String, String)> = out
            .tag_set()
            .iter()
            .map(|t: &Tag| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        tags.sort();
        tags
    }

    /// One request of `member` (UPSCALE): its input and its output, as
    /// `bucket` + `key` fields.
    pub async fn insert_request(
        &self,
        member: &str,
        input: &ObjectRef,
        output: &ObjectRef,
    ) -> Request {
        let client_id: i64 = sqlx::query_scalar(
            "INSERT INTO client (client_key, type, ip_address, user_agent) \
             VALUES ($1, 'UPSCALE', '10.1.2.3', 'Mozilla/5.0 (test)') RETURNING id",
        )
        .bind(member)
        .fetch_one(self.pool())
        .await
        .expect("client row");
        let option = serde_json::json!({
            "scale": 4,
            "inputFileList": [{"bucket": input.bucket, "key": input.key}],
        });
        let feature_id: i64 = sqlx::query_scalar(
            "INSERT INTO upscale_feature (client_id, prompt, option) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(client_id)
        .bind(format!("upscale {member}'s photo"))
        .bind(option)
        .fetch_one(self.pool())
        .await
        .expect("feature row");
        let result =
            serde_json::json!({"fileList": [{"bucket": output.bucket, "key": output.key}]});
        let task_id: i64 = sqlx::query_scalar(
            "INSERT INTO upscale_task (feature_id, result, gpu) VALUES ($1, $2, 'A100') RETURNING id",
        )
        .bind(feature_id)
        .bind(result)
        .fetch_one(self.pool())
        .await
        .expect("task row");
        Request { client_id, task_id }
    }

    /// Submits `member` and runs a worker until nothing is claimable.
    pub async fn erase(&self, member: &str) -> Uuid {
        let id = self.engine.submit(member, None).await.expect("submit").id;
        let summary = run_worker_once(&self.engine).await;
        let status = self.engine.status(id).await.expect("status").record;
        assert_eq!(
            status.state,
            State::Done,
            "{summary:?}; last error: {:?}\n--- moto log tail ---\n{}",
            status.last_error,
            self.moto.log_tail()
        );
        id
    }

    /// Whether a task row's result was masked.
    pub async fn task_masked(&self, task_id: i64) -> bool {
        sqlx::query_scalar("SELECT result = '{}'::jsonb FROM upscale_task WHERE id = $1")
            .bind(task_id)
            .fetch_one(self.pool())
            .await
            .expect("task row")
    }

    /// Whether a client row still carries a member key.
    pub async fn client_masked(&self, client_id: i64) -> bool {
        sqlx::query_scalar("SELECT client_key IS NULL FROM client WHERE id = $1")
            .bind(client_id)
            .fetch_one(self.pool())
            .await
            .expect("client row")
    }
}

pub fn object(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    }
}

/// The example's client tables and features, with the test's storage.
fn write_catalog(dir: &Path, storage: &str) {
    let example = example_catalog();
    let main = std::fs::read_to_string(example.join("catalog.toml")).expect("example catalog");
    let clients = &main[main.find("[[clients]]").expect("example lists clients")..];
    std::fs::write(
        dir.join("catalog.toml"),
        format!("name = \"moto-test\"\n\n[storage]\n{storage}\n\n{clients}"),
    )
    .expect("writing the catalog");
    std::fs::create_dir(dir.join("features")).expect("features dir");
    for entry in std::fs::read_dir(example.join("features")).expect("example features") {
        let path = entry.expect("feature entry").path();
        std::fs::copy(&path, dir.join("features").join(path.file_name().unwrap()))
            .expect("copying a feature");
    }
}
