//! Atelier: a second example service, written independently of the first
//! (which is shaped like the seed's, and so agrees with lethe's first
//! assumptions). Its schema differs in every way the catalog must be able
//! to say: members are uuids (text in the legacy log); the current request
//! log is partitioned and keyed by `(req_no, requested_on)`; the legacy log
//! has its own id sequence, so its ids collide with `req_no`; request rows
//! point at their job (`job_ref`, text holding digits; `job_id`, a bigint);
//! exports hang off requests through a join table; avatars point back at
//! their request, from either log through its own column; files are bare
//! keys in buckets the catalog fixes; options are `json`, or JSON in text;
//! some legacy requests were copied into the current log (two client rows,
//! one job). Its catalog is `workflows/atelier/`.
//!
//! [`load`] creates its tables and buckets and generates members; [`insert`]
//! writes one row, for tests that need a particular one.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;

use crate::error::Error;
use crate::objects::ObjectStore;
use crate::references::ObjectRef;
use crate::references::percent::encode_key;
use crate::store::{Backed, Store};

pub const UPLOADS_BUCKET: &str = "atelier-uploads";
pub const RENDERS_BUCKET: &str = "atelier-renders";
pub const EXPORTS_BUCKET: &str = "atelier-exports";
/// CloudFront in front of the uploads bucket.
pub const UPLOADS_CDN: &str = "cdn.atelier.example";
/// Stock images every member may use: protected, never deleted.
pub const STOCK_KEY: &str = "stock/paper texture.png";
/// Where render callbacks go: not one of the service's files.
pub const HOOKS_HOST: &str = "hooks.partner.example";

const POSTGRES_SCHEMA: &str = include_str!("postgres.sql");
const SQLITE_SCHEMA: &str = include_str!("sqlite.sql");

/// What to generate.
#[derive(Debug, Clone)]
pub struct AtelierSpec {
    pub members: usize,
    pub requests_per_member: usize,
    /// Member uuids are derived from this, so two loads do not collide.
    pub member_seed: u64,
}

/// One generated member.
#[derive(Debug, Clone, Serialize)]
pub struct AtelierMember {
    /// The member's uuid: the erasure subject.
    pub key: String,
    pub requests: usize,
    /// The objects this member owns (all to be erased with them).
    pub objects: Vec<ObjectRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AtelierLoad {
    pub members: Vec<AtelierMember>,
    pub shared: Vec<ObjectRef>,
    pub rows: usize,
    pub objects: usize,
}

/// A row to insert: its table and its columns' values as text (NULL as
/// None), cast to each column's type by the database.
#[derive(Debug, Clone)]
pub struct Row {
    pub table: &'static str,
    pub values: Vec<(&'static str, Option<String>)>,
}

/// The PostgreSQL type of each column lethe's generator writes, for the
/// cast from text.
fn postgres_type(table: &str, column: &str) -> &'static str {
    match (table, column) {
        (_, "member_uuid") if table == "studio_requests" => "uuid",
        (_, "requested_on") => "date",
        (_, "req_no" | "job_id" | "output_id" | "job" | "request_no") => "bigint",
        (_, "id" | "legacy_request_id") => "integer",
        (_, "export_uuid" | "upload_id") => "uuid",
        ("render_jobs", "params") | ("render_outputs", "files") => "json",
        _ => "text",
    }
}

/// Creates the service's tables (idempotent).
pub async fn create_schema(store: &Store) -> Result<(), Error> {
    match store.db() {
        Backed::Postgres(pool) => {
            sqlx::raw_sql(AssertSqlSafe(POSTGRES_SCHEMA))
                .execute(pool)
                .await?;
        }
        Backed::Sqlite(pool) => {
            sqlx::raw_sql(AssertSqlSafe(SQLITE_SCHEMA))
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Writes one row.
pub async fn insert(store: &Store, row: &Row) -> Result<(), Error> {
    let columns: Vec<&str> = row.values.iter().map(|(c, _)| *c).collect();
    let placeholders: Vec<String> = row
        .values
        .iter()
        .enumerate()
        .map(|(i, (column, _))| match store.db() {
            Backed::Postgres(_) => {
                format!("CAST(${} AS {})", i + 1, postgres_type(row.table, column))
            }
            Backed::Sqlite(_) => format!("${}", i + 1),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        row.table,
        columns.join(", "),
        placeholders.join(", ")
    );
    match store.db() {
        Backed::Postgres(pool) => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (_, value) in &row.values {
                query = query.bind(value.clone());
            }
            query.execute(pool).await?;
        }
        Backed::Sqlite(pool) => {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (_, value) in &row.values {
                query = query.bind(value.clone());
            }
            query.execute(pool).await?;
        }
    }
    Ok(())
}

/// Creates the buckets (if missing) and the shared stock image.
pub async fn create_buckets(objects: &ObjectStore) -> Result<Vec<ObjectRef>, Error> {
    for bucket in [UPLOADS_BUCKET, RENDERS_BUCKET, EXPORTS_BUCKET] {
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
    let stock = object(UPLOADS_BUCKET, STOCK_KEY);
    super::put(objects, &stock, BODY.to_vec()).await?;
    Ok(vec![stock])
}

const BODY: &[u8] = b"atelier example object\n";

pub fn object(bucket: &str, key: impl Into<String>) -> ObjectRef {
    ObjectRef {
        bucket: bucket.to_owned(),
        key: key.into(),
    }
}

/// The uuid of member `index` under `seed`.
pub fn member_key(seed: u64, index: usize) -> String {
    uuid::Uuid::from_u64_pair(seed, index as u64 + 1)
        .hyphenated()
        .to_string()
}

/// The next free number of each sequence the generator keeps.
#[derive(Debug, Default)]
struct Counters {
    req_no: i64,
    legacy_id: i64,
    job_id: i64,
    output_id: i64,
    uuid: u64,
}

async fn counters(store: &Store) -> Result<Counters, Error> {
    let max = |table: &str, column: &str| {
        format!("SELECT CAST(coalesce(max({column}), 0) AS bigint) FROM {table}")
    };
    let mut found = Vec::new();
    for (table, column) in [
        ("studio_requests", "req_no"),
        ("legacy_requests", "id"),
        ("render_jobs", "job_id"),
        ("render_outputs", "output_id"),
    ] {
        let sql = max(table, column);
        let value: i64 = match store.db() {
            Backed::Postgres(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await?
            }
            Backed::Sqlite(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await?
            }
        };
        found.push(value);
    }
    Ok(Counters {
        req_no: found[0],
        legacy_id: found[1],
        job_id: found[2],
        output_id: found[3],
        uuid: (found[0] + found[1] + found[2]) as u64 * 1000,
    })
}

impl Counters {
    fn next(value: &mut i64) -> String {
        *value += 1;
        value.to_string()
    }

    fn uuid(&mut self, kind: u64) -> String {
        self.uuid += 1;
        uuid::Uuid::from_u64_pair(0xA7E1_1E00_0000_0000 | kind, self.uuid)
            .hyphenated()
            .to_string()
    }
}

/// What one generated request writes and uploads.
#[derive(Default)]
struct Generated {
    rows: Vec<Row>,
    owned: Vec<ObjectRef>,
    /// JSON documents to upload with these bodies (export manifests).
    documents: Vec<(ObjectRef, Vec<u8>)>,
}

fn some(value: impl Into<String>) -> Option<String> {
    Some(value.into())
}

/// Creates the schema and buckets, then generates the members, their rows
/// and their objects.
pub async fn load(
    store: &Store,
    objects: &ObjectStore,
    spec: &AtelierSpec,
) -> Result<AtelierLoad, Error> {
    create_schema(store).await?;
    let shared = create_buckets(objects).await?;
    let mut counters = counters(store).await?;
    let mut members = Vec::new();
    let (mut rows, mut uploads) = (0, 0);
    for index in 0..spec.members {
        let key = member_key(spec.member_seed, index);
        let mut owned = Vec::new();
        for n in 0..spec.requests_per_member {
            let generated = request(&mut counters, &key, index, n, spec.requests_per_member);
            for row in &generated.rows {
                insert(store, row).await?;
            }
            rows += generated.rows.len();
            let documents: Vec<&ObjectRef> = generated.documents.iter().map(|(o, _)| o).collect();
            for object in generated.owned.iter().filter(|o| !documents.contains(o)) {
                super::put(objects, object, BODY.to_vec()).await?;
            }
            for (object, body) in &generated.documents {
                super::put(objects, object, body.clone()).await?;
            }
            uploads += generated.owned.len();
            owned.extend(generated.owned);
        }
        members.push(AtelierMember {
            key,
            requests: spec.requests_per_member,
            objects: owned,
        });
    }
    Ok(AtelierLoad {
        members,
        shared,
        rows,
        objects: uploads,
    })
}

/// Request `n` of a member: the first third in the legacy log (renders and
/// avatars: exports came later), every fourth legacy render also copied
/// into the current log; feature by `n`.
fn request(
    counters: &mut Counters,
    member: &str,
    index: usize,
    n: usize,
    total: usize,
) -> Generated {
    let legacy = n * 3 < total;
    match (n % 3, legacy) {
        (1, false) => export(counters, member, index, n),
        (2, _) => avatar(counters, member, index, n, legacy),
        _ => render(counters, member, index, n, legacy),
    }
}

fn studio_request(
    counters: &mut Counters,
    member: &str,
    n: usize,
    kind: &str,
    job_ref: Option<String>,
) -> (Row, String) {
    let req_no = Counters::next(&mut counters.req_no);
    let day = 1 + (n % 27);
    let requested_on = if n.is_multiple_of(2) {
        format!("2025-03-{day:02}")
    } else {
        format!("2026-02-{day:02}")
    };
    (
        Row {
            table: "studio_requests",
            values: vec![
                ("req_no", some(&req_no)),
                ("requested_on", some(requested_on)),
                ("member_uuid", some(member)),
                ("kind", some(kind)),
                ("job_ref", job_ref),
                ("device", some(format!("iPhone of {member}"))),
            ],
        },
        req_no,
    )
}

fn legacy_request(
    counters: &mut Counters,
    member: &str,
    kind: &str,
    job_id: Option<String>,
) -> (Row, String) {
    let id = Counters::next(&mut counters.legacy_id);
    (
        Row {
            table: "legacy_requests",
            values: vec![
                ("id", some(&id)),
                ("member_uuid", some(member)),
                ("kind", some(kind)),
                ("job_id", job_id),
                ("ip", some(format!("192.0.2.{}", id.len()))),
            ],
        },
        id,
    )
}

/// A render: a job (its reference image in one of four spellings, two
/// input URLs and a mask under `extras`, a callback URL that is not a
/// file), one or two outputs (bare keys), a preview and a thumbnail.
fn render(
    counters: &mut Counters,
    member: &str,
    index: usize,
    n: usize,
    legacy: bool,
) -> Generated {
    let mut out = Generated::default();
    let job_id = Counters::next(&mut counters.job_id);
    let dir = format!("m{index}/r{n}");
    let reference = object(UPLOADS_BUCKET, format!("refs/{dir}/내 사진 {n}.png"));
    let input = object(UPLOADS_BUCKET, format!("inputs/{dir}/a+b {n}.png"));
    let mask = object(UPLOADS_BUCKET, format!("masks/{dir}/mask.png"));
    let reference_value = match n % 4 {
        0 => json!({"bucket": reference.bucket, "key": reference.key}),
        1 => json!(format!(
            "https://{}.s3.eu-central-1.amazonaws.com/{}",
            reference.bucket,
            encode_key(&reference.key)
        )),
        2 => json!(format!(
            "https://{UPLOADS_CDN}/{}",
            encode_key(&reference.key)
        )),
        _ => {
            json!({"bucket": reference.bucket, "key": reference.key, "url": format!("https://{UPLOADS_CDN}/{}", encode_key(&reference.key))})
        }
    };
    let params = json!({
        "reference": reference_value,
        "inputs": [format!("s3://{}/{}", input.bucket, input.key)],
        "extras": {
            "mask": format!("https://s3.eu-central-1.amazonaws.com/{}/{}", mask.bucket, encode_key(&mask.key)),
            "callback": format!("https://{HOOKS_HOST}/render/{job_id}"),
        },
        // The stock paper texture: shared, never deleted.
        "texture": {"bucket": UPLOADS_BUCKET, "key": STOCK_KEY},
        "strength": 0.7,
    });
    out.owned.extend([reference, input, mask]);
    out.rows.push(Row {
        table: "render_jobs",
        values: vec![
            ("job_id", some(&job_id)),
            (
                "prompt",
                some(format!("{member}'s cat as a renaissance portrait")),
            ),
            ("params", some(params.to_string())),
        ],
    });
    for k in 0..(1 + n % 2) {
        let output_id = Counters::next(&mut counters.output_id);
        let file = format!("out/{dir}/{k}.png");
        let preview = format!("{dir}/{k} small.webp");
        let thumb = object(RENDERS_BUCKET, format!("thumbs/{dir}/{k}.jpg"));
        out.owned.push(object(RENDERS_BUCKET, &file));
        out.owned
            .push(object(RENDERS_BUCKET, format!("previews/{preview}")));
        out.owned.push(thumb.clone());
        out.rows.push(Row {
            table: "render_outputs",
            values: vec![
                ("output_id", some(output_id)),
                ("job", some(&job_id)),
                ("files", some(json!([{"key": file, "bytes": 1024}]).to_string())),
                ("preview", some(preview)),
                ("meta", some(json!({"thumbnail": format!("s3://{}/{}", thumb.bucket, thumb.key), "gpu": "L4"}).to_string())),
            ],
        });
    }
    if legacy {
        let (row, _) = legacy_request(counters, member, "RENDER", Some(job_id.clone()));
        out.rows.push(row);
        // Some legacy requests were copied into the current log when it
        // was introduced: two client rows, one job.
        if n.is_multiple_of(4) {
            let (row, _) = studio_request(counters, member, n, "RENDER", Some(job_id));
            out.rows.push(row);
        }
    } else {
        let (row, _) = studio_request(counters, member, n, "RENDER", Some(job_id));
        out.rows.push(row);
    }
    out
}

/// An export: a current request linked to its export through the join
/// table; the export's cover (a URL in JSON text) and its manifest (a bare
/// key of a JSON document listing its pages as bare keys).
fn export(counters: &mut Counters, member: &str, index: usize, n: usize) -> Generated {
    let mut out = Generated::default();
    let export_uuid = counters.uuid(1);
    let (row, req_no) = studio_request(counters, member, n, "EXPORT", None);
    out.rows.push(row);
    let cover = object(UPLOADS_BUCKET, format!("covers/m{index}/{n}.png"));
    let manifest = object(EXPORTS_BUCKET, format!("manifests/{export_uuid}.json"));
    let pages: Vec<String> = (0..3)
        .map(|p| format!("pages/{export_uuid}/{p}.png"))
        .collect();
    for page in &pages {
        out.owned.push(object(EXPORTS_BUCKET, page));
    }
    out.owned.push(cover.clone());
    out.owned.push(manifest.clone());
    out.documents.push((
        manifest.clone(),
        json!({"pages": pages}).to_string().into_bytes(),
    ));
    out.rows.push(Row {
        table: "exports",
        values: vec![
            ("export_uuid", some(&export_uuid)),
            ("options", some(json!({"title": format!("{member}'s album"), "cover": format!("https://{}.s3.amazonaws.com/{}", cover.bucket, encode_key(&cover.key))}).to_string())),
            ("manifest_key", some(manifest.key)),
        ],
    });
    out.rows.push(Row {
        table: "export_links",
        values: vec![("req_no", some(req_no)), ("export_uuid", some(export_uuid))],
    });
    out
}

/// An avatar: it points back at its request, through the column of the
/// log the request is in.
fn avatar(
    counters: &mut Counters,
    member: &str,
    index: usize,
    n: usize,
    legacy: bool,
) -> Generated {
    let mut out = Generated::default();
    let upload_id = counters.uuid(2);
    let key = format!("m{index}/{n}/face.png");
    out.owned
        .push(object(UPLOADS_BUCKET, format!("avatars/{key}")));
    let (request_no, legacy_id) = if legacy {
        let (row, id) = legacy_request(counters, member, "AVATAR", None);
        out.rows.push(row);
        (None, Some(id))
    } else {
        let (row, req_no) = studio_request(counters, member, n, "AVATAR", None);
        out.rows.push(row);
        (Some(req_no), None)
    };
    out.rows.push(Row {
        table: "avatar_uploads",
        values: vec![
            ("upload_id", some(upload_id)),
            ("request_no", request_no),
            ("legacy_request_id", legacy_id),
            ("image_key", some(key)),
            ("original_name", some(format!("{member}.png"))),
        ],
    });
    out
}

/// The tables and the columns that name their rows, for snapshots.
pub fn row_names() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("studio_requests", &["req_no", "requested_on"][..]),
        ("legacy_requests", &["id"][..]),
        ("render_jobs", &["job_id"][..]),
        ("render_outputs", &["output_id"][..]),
        ("exports", &["export_uuid"][..]),
        ("export_links", &["req_no", "export_uuid"][..]),
        ("avatar_uploads", &["upload_id"][..]),
    ])
}
