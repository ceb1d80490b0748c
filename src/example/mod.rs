//! The example service: a schema and data generator shaped like the seed's
//! service (legacy and current client tables; eighteen AI features and PDF
//! extraction, each with a feature and a task table; three eras of JSON
//! shapes; S3 and CloudFront URLs; shared objects), for tests, benchmarks,
//! the demo, and anyone trying lethe.
//! `lethe example load --members N --requests M` runs [`load`] against the
//! configured database (PostgreSQL or SQLite: [`postgres`] and [`sqlite`]
//! hold each one's schema and inserts) and S3.

pub mod atelier;
pub mod features;
mod postgres;
pub mod shapes;
mod sqlite;

use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::objects::ObjectStore;
use crate::references::ObjectRef;
use crate::store::{Backed, Store};
use features::{FEATURES, feature_for};
use shapes::{
    DEFAULT_AVATAR_KEY, Era, INPUTS_BUCKET, RESULTS_BUCKET, SHARED_SAMPLE_KEY, STYLE_PRESET_KEYS,
    object,
};

/// What to generate.
#[derive(Debug, Clone)]
pub struct ExampleSpec {
    pub members: usize,
    pub requests_per_member: usize,
    /// Member keys are `<prefix>-00001`, `<prefix>-00002`, ...
    pub member_prefix: String,
    /// Walk the features in turn instead of by their weights, so that even
    /// a small member uses every feature (tests).
    pub every_feature: bool,
}

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub members: Vec<MemberSummary>,
    /// Shared objects (protected; referenced by many members).
    pub shared: Vec<ObjectRef>,
    pub rows: usize,
    pub objects: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberSummary {
    pub key: String,
    pub requests: usize,
    /// All of this member's requests are in `client_old` (they left before
    /// the migration), as some of the seed's members did.
    pub legacy_only: bool,
    /// The objects this member owns (all to be erased with them).
    pub objects: Vec<ObjectRef>,
}

/// Every table of the example service.
pub fn tables() -> Vec<String> {
    let mut tables: Vec<String> = ["client_old", "client_temp", "client"]
        .map(String::from)
        .to_vec();
    for feature in &FEATURES {
        tables.push(format!("{}_feature", feature.stem));
        tables.push(format!("{}_task", feature.stem));
    }
    tables
}

/// Creates the example service's tables (idempotent).
pub async fn create_schema(store: &Store) -> Result<(), Error> {
    match store.db() {
        Backed::Postgres(pool) => postgres::create_schema(pool).await,
        Backed::Sqlite(pool) => sqlite::create_schema(pool).await,
    }
}

/// The shared objects: samples, style presets, the default avatar.
pub fn shared_objects() -> Vec<ObjectRef> {
    let mut shared = vec![
        object(INPUTS_BUCKET, SHARED_SAMPLE_KEY),
        object(INPUTS_BUCKET, DEFAULT_AVATAR_KEY),
    ];
    shared.extend(
        STYLE_PRESET_KEYS
            .iter()
            .map(|key| object(INPUTS_BUCKET, *key)),
    );
    shared
}

/// Creates the example buckets if they do not exist, and the shared objects.
pub async fn create_buckets(objects: &ObjectStore) -> Result<Vec<ObjectRef>, Error> {
    for bucket in [INPUTS_BUCKET, RESULTS_BUCKET] {
        if let Err(err) = objects.client().create_bucket().bucket(bucket).send().await {
            let owned = err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            });
            if !owned {
                return Err(
                    crate::objects::ObjectError::from_sdk("CreateBucket", bucket, err).into(),
                );
            }
        }
    }
    let shared = shared_objects();
    for object in &shared {
        put(objects, object, EXAMPLE_BODY.to_vec()).await?;
    }
    Ok(shared)
}

const EXAMPLE_BODY: &[u8] = b"lethe example object\n";

pub async fn put(objects: &ObjectStore, object: &ObjectRef, body: Vec<u8>) -> Result<(), Error> {
    objects
        .client()
        .put_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .map_err(|err| crate::objects::ObjectError::from_sdk("PutObject", &object.bucket, err))?;
    Ok(())
}

/// One generated request, ready to insert.
pub(crate) struct Generated {
    pub member: usize,
    pub client_table: &'static str,
    pub client_id: i64,
    pub data: shapes::RequestData,
}

/// Where a member's `n`-th request lives: the first 30% of a history in
/// `client_old`, the next 20% in `client_temp`, the rest in `client`; a
/// legacy-only member has everything in `client_old`.
fn placement(n: usize, requests: usize, legacy_only: bool) -> (&'static str, Era) {
    if legacy_only {
        return ("client_old", Era::Old);
    }
    match n * 10 / requests.max(1) {
        0..=2 => ("client_old", Era::Old),
        3..=4 => ("client_temp", Era::Middle),
        _ => ("client", Era::Current),
    }
}

/// Creates the schema and buckets, then generates the members, their rows
/// and their objects. Rows go in set-based, a thousand requests a statement;
/// objects are uploaded 32 at a time.
pub async fn load(
    store: &Store,
    objects: &ObjectStore,
    spec: &ExampleSpec,
) -> Result<LoadSummary, Error> {
    create_schema(store).await?;
    let shared = create_buckets(objects).await?;
    let mut members: Vec<MemberSummary> = (1..=spec.members)
        .map(|i| MemberSummary {
            key: format!("{}-{i:05}", spec.member_prefix),
            requests: spec.requests_per_member,
            // Every fifth member left before the client table migration.
            legacy_only: i % 5 == 0,
            objects: Vec::new(),
        })
        .collect();

    let total = spec.members * spec.requests_per_member;
    let mut rows = 0;
    let mut object_count = 0;
    // Members are generated and written a thousand requests at a time, so
    // memory stays bounded by the chunk, not by the member's size.
    let mut generated = Vec::with_capacity(1000.min(total));
    let mut uploads: Vec<(ObjectRef, Vec<u8>)> = Vec::new();
    for m in 0..members.len() {
        for n in 0..spec.requests_per_member {
            let member = &mut members[m];
            let (client_table, era) = placement(n, spec.requests_per_member, member.legacy_only);
            let feature = if spec.every_feature {
                &FEATURES[n % FEATURES.len()]
            } else {
                feature_for(n)
            };
            let data = shapes::request(&member.key, n, spec.requests_per_member, feature, era);
            member.objects.extend(data.owned.iter().cloned());
            generated.push(Generated {
                member: m,
                client_table,
                client_id: 0,
                data,
            });
            if generated.len() == 1000 {
                let (r, o) = flush(store, objects, &members, &mut generated, &mut uploads).await?;
                rows += r;
                object_count += o;
            }
        }
    }
    let (r, o) = flush(store, objects, &members, &mut generated, &mut uploads).await?;
    rows += r;
    object_count += o;
    Ok(LoadSummary {
        members,
        shared,
        rows,
        objects: object_count,
    })
}

/// Writes a chunk of generated requests and uploads their objects.
async fn flush(
    store: &Store,
    objects: &ObjectStore,
    members: &[MemberSummary],
    generated: &mut Vec<Generated>,
    uploads: &mut Vec<(ObjectRef, Vec<u8>)>,
) -> Result<(usize, usize), Error> {
    if generated.is_empty() {
        return Ok((0, 0));
    }
    let ids = match store.db() {
        Backed::Postgres(pool) => postgres::next_client_ids(pool, generated.len()).await?,
        Backed::Sqlite(pool) => sqlite::next_client_ids(pool, generated.len()).await?,
    };
    for (g, id) in generated.iter_mut().zip(ids) {
        g.client_id = id;
        let documents: Vec<&ObjectRef> = g.data.documents.iter().map(|(o, _)| o).collect();
        for object in g.data.owned.iter().filter(|o| !documents.contains(o)) {
            uploads.push((object.clone(), EXAMPLE_BODY.to_vec()));
        }
        uploads.extend(g.data.documents.iter().cloned());
    }
    let rows = match store.db() {
        Backed::Postgres(pool) => postgres::insert_chunk(pool, members, generated).await?,
        Backed::Sqlite(pool) => sqlite::insert_chunk(pool, members, generated).await?,
    };
    let count = uploads.len();
    upload(objects, std::mem::take(uploads)).await?;
    generated.clear();
    Ok((rows, count))
}

/// Uploads objects, 32 in flight.
async fn upload(objects: &ObjectStore, all: Vec<(ObjectRef, Vec<u8>)>) -> Result<(), Error> {
    let store = Arc::new(objects.clone());
    let mut pending = all.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < 32 {
            let Some((object, body)) = pending.next() else {
                break;
            };
            let store = store.clone();
            running.spawn(async move { put(&store, &object, body).await });
        }
        match running.join_next().await {
            Some(joined) => joined.expect("upload task panicked")?,
            None => return Ok(()),
        }
    }
}

/// What a member's request rows say besides its files: the same on both
/// backends, so that the two example services hold the same data.
pub(crate) fn prompt(member: &str) -> String {
    format!(
        "a portrait of {member}'s dog in watercolour, soft light, {}",
        "highly detailed ".repeat(12)
    )
}

pub(crate) fn ip_address(g: &Generated) -> String {
    format!("10.{}.{}.{}", g.member % 250, g.client_id % 250, 7)
}

pub(crate) const USER_AGENT: &str = "Mozilla/5.0 (example)";

impl crate::Engine {
    /// `lethe example load`: the example service's schema, buckets and
    /// members, in this engine's database and S3.
    pub async fn load_example(&self, spec: &ExampleSpec) -> Result<LoadSummary, Error> {
        let objects = self.objects().await;
        load(self.store(), &objects, spec).await
    }

    /// `lethe example load --service atelier`.
    pub async fn load_atelier(
        &self,
        spec: &atelier::AtelierSpec,
    ) -> Result<atelier::AtelierLoad, Error> {
        let objects = self.objects().await;
        atelier::load(self.store(), &objects, spec).await
    }
}
