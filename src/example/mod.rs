//! The example service: a schema and data generator shaped like the seed's
//! service (legacy and current client tables, feature and task tables per
//! feature type, old and new JSON shapes, S3 and CloudFront URLs, a shared
//! sample), for tests, benchmarks, the demo, and anyone trying lethe.
//! `lethe example load --members N --requests M` runs [`load`] against the
//! configured database and S3.

pub mod shapes;

use std::sync::Arc;

use serde::Serialize;
use sqlx::{AssertSqlSafe, PgPool};
use tokio::task::JoinSet;

use crate::error::Error;
use crate::objects::ObjectStore;
use crate::references::ObjectRef;
use shapes::{FEATURES, INPUTS_BUCKET, RESULTS_BUCKET, SHARED_SAMPLE_KEY};

const SCHEMA: &str = include_str!("schema.sql");
const FEATURE_TABLES: &str = include_str!("feature_tables.sql");

/// What to generate.
#[derive(Debug, Clone)]
pub struct ExampleSpec {
    pub members: usize,
    pub requests_per_member: usize,
    /// Member keys are `<prefix>-00001`, `<prefix>-00002`, ...
    pub member_prefix: String,
}

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    pub members: Vec<MemberSummary>,
    pub shared: Vec<ObjectRef>,
    pub rows: usize,
    pub objects: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberSummary {
    pub key: String,
    pub requests: usize,
    /// The objects this member owns (all to be erased with them).
    pub objects: Vec<ObjectRef>,
}

/// Creates the example service's tables (idempotent).
pub async fn create_schema(pool: &PgPool) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(AssertSqlSafe(SCHEMA))
        .execute(&mut *tx)
        .await?;
    for (_, name) in FEATURES {
        let sql = FEATURE_TABLES.replace("{name}", name);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Creates the example buckets if they do not exist, and the shared sample.
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
    let shared = ObjectRef {
        bucket: INPUTS_BUCKET.to_owned(),
        key: SHARED_SAMPLE_KEY.to_owned(),
    };
    put(objects, &shared).await?;
    Ok(vec![shared])
}

async fn put(objects: &ObjectStore, object: &ObjectRef) -> Result<(), Error> {
    objects
        .client()
        .put_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"lethe example object\n",
        ))
        .send()
        .await
        .map_err(|err| crate::objects::ObjectError::from_sdk("PutObject", &object.bucket, err))?;
    Ok(())
}

/// One generated request, ready to insert.
struct Generated {
    member: usize,
    client_table: &'static str,
    client_id: i64,
    data: shapes::RequestData,
}

/// Creates the schema and buckets, then generates the members, their rows
/// and their objects. Rows go in set-based, a thousand requests a statement;
/// objects are uploaded 32 at a time.
pub async fn load(
    pool: &PgPool,
    objects: &ObjectStore,
    spec: &ExampleSpec,
) -> Result<LoadSummary, Error> {
    create_schema(pool).await?;
    let shared = create_buckets(objects).await?;
    let mut members: Vec<MemberSummary> = (1..=spec.members)
        .map(|i| MemberSummary {
            key: format!("{}-{i:05}", spec.member_prefix),
            requests: spec.requests_per_member,
            objects: Vec::new(),
        })
        .collect();

    let total = spec.members * spec.requests_per_member;
    let client_ids: Vec<i64> =
        sqlx::query_scalar("SELECT nextval('client_id_seq') FROM generate_series(1, $1)")
            .bind(total as i64)
            .fetch_all(pool)
            .await?;
    let mut generated = Vec::with_capacity(total);
    for (m, member) in members.iter_mut().enumerate() {
        for n in 0..spec.requests_per_member {
            // The first 30% of a member's history lives in client_old, the
            // next 20% in client_temp (both legacy shapes); the rest in the
            // current table, where shapes are mostly new.
            let share = n * 10 / spec.requests_per_member.max(1);
            let (client_table, legacy) = match share {
                0..=2 => ("client_old", true),
                3..=4 => ("client_temp", true),
                _ => ("client", n % 5 == 0),
            };
            let data = shapes::request(&member.key, n, legacy);
            member.objects.extend(data.owned.iter().cloned());
            generated.push(Generated {
                member: m,
                client_table,
                client_id: client_ids[generated.len()],
                data,
            });
        }
    }

    let mut rows = 0;
    for chunk in generated.chunks(1000) {
        rows += insert_chunk(pool, &members, chunk).await?;
    }

    let all: Vec<ObjectRef> = members
        .iter()
        .flat_map(|m| m.objects.iter().cloned())
        .collect();
    let object_count = all.len();
    upload(objects, all).await?;

    Ok(LoadSummary {
        members,
        shared,
        rows,
        objects: object_count,
    })
}

async fn insert_chunk(
    pool: &PgPool,
    members: &[MemberSummary],
    chunk: &[Generated],
) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let mut rows = 0;
    for table in ["client_old", "client_temp", "client"] {
        let mine: Vec<&Generated> = chunk.iter().filter(|g| g.client_table == table).collect();
        if mine.is_empty() {
            continue;
        }
        let ids: Vec<i64> = mine.iter().map(|g| g.client_id).collect();
        let keys: Vec<&str> = mine
            .iter()
            .map(|g| members[g.member].key.as_str())
            .collect();
        let types: Vec<&str> = mine.iter().map(|g| g.data.feature_type).collect();
        let ips: Vec<String> = mine
            .iter()
            .map(|g| format!("10.{}.{}.{}", g.member % 250, g.client_id % 250, 7))
            .collect();
        let created_at = if table == "client" {
            // Spread over the partitions.
            ", created_at"
        } else {
            ""
        };
        let created_value = if table == "client" {
            ", timestamptz '2025-06-01' + (id % 500) * interval '1 day'"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO {table} (id, client_key, type, ip_address, user_agent{created_at}) \
             SELECT id, k, t, ip, 'Mozilla/5.0 (example)'{created_value} \
               FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, k, t, ip)"
        );
        rows += sqlx::query(AssertSqlSafe(sql))
            .bind(&ids)
            .bind(&keys)
            .bind(&types)
            .bind(&ips)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
    }
    for (feature_type, name) in FEATURES {
        let mine: Vec<&Generated> = chunk
            .iter()
            .filter(|g| g.data.feature_type == feature_type)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let client_ids: Vec<i64> = mine.iter().map(|g| g.client_id).collect();
        let prompts: Vec<String> = mine
            .iter()
            .map(|g| {
                format!(
                    "a portrait of {}'s dog in watercolour, soft light, {}",
                    members[g.member].key,
                    "highly detailed ".repeat(12)
                )
            })
            .collect();
        let options: Vec<serde_json::Value> = mine.iter().map(|g| g.data.option.clone()).collect();
        let results: Vec<serde_json::Value> = mine.iter().map(|g| g.data.result.clone()).collect();
        // One feature row and one task row per request; the task row
        // points at the feature row through the ids RETURNING gives back,
        // matched by client id.
        let sql = format!(
            "WITH f AS ( \
                 INSERT INTO {name}_feature (client_id, prompt, option) \
                 SELECT c, p, o FROM UNNEST($1::bigint[], $2::text[], $3::jsonb[]) AS u(c, p, o) \
                 RETURNING id, client_id) \
             INSERT INTO {name}_task (feature_id, result, gpu, timeline) \
             SELECT f.id, u.r, 'A100-80GB', jsonb_build_object('queuedMs', 120, 'runMs', 4200) \
               FROM f JOIN UNNEST($1::bigint[], $4::jsonb[]) AS u(c, r) ON u.c = f.client_id"
        );
        let tasks = sqlx::query(AssertSqlSafe(sql))
            .bind(&client_ids)
            .bind(&prompts)
            .bind(&options)
            .bind(&results)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
        rows += tasks * 2;
    }
    tx.commit().await?;
    Ok(rows)
}

/// Uploads objects, 32 in flight.
async fn upload(objects: &ObjectStore, all: Vec<ObjectRef>) -> Result<(), Error> {
    let store = Arc::new(objects.clone());
    let mut pending = all.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < 32 {
            let Some(object) = pending.next() else { break };
            let store = store.clone();
            running.spawn(async move { put(&store, &object).await });
        }
        match running.join_next().await {
            Some(joined) => joined.expect("upload task panicked")?,
            None => return Ok(()),
        }
    }
}
