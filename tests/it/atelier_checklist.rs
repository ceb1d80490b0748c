//! The seed's test checklist, run against atelier, the service written to
//! another plan (`shapes` runs it against the seed-shaped example): one
//! member with one request in exactly that shape, beside a bystander with
//! the same shape and their own files. Each asserts the exact set of
//! objects deleted (the S3 server's own record) and the exact cells
//! changed in every table, on both backends.
//!
//! Atelier's spelling of the checklist: the request's options are a render
//! job's `params` (`json`), its result a render output (bare keys in
//! `files`, a bare `preview`, a `thumbnail` URI in JSON text); "every
//! feature" is a render, an export and an avatar; the PDF case is an export
//! whose manifest (a bare key) lists its pages.

use std::collections::BTreeSet;

use lethe::example::atelier::{
    self, EXPORTS_BUCKET, RENDERS_BUCKET, Row, UPLOADS_BUCKET, UPLOADS_CDN,
};
use lethe::references::ObjectRef;
use lethe::references::percent::encode_key;
use lethe::store::Backend;
use serde_json::{Value, json};

use crate::app::TestApp;
use crate::atelier::{assert_exact_changes, deleted, expected_changes, snapshot, start};

const MEMBER: &str = "5b1f3c2e-1111-4a6b-9c1d-000000000001";
const BYSTANDER: &str = "5b1f3c2e-2222-4a6b-9c1d-000000000002";

fn upload(who: &str, name: &str) -> ObjectRef {
    atelier::object(UPLOADS_BUCKET, format!("refs/{who}/{name}"))
}

fn s3_url(o: &ObjectRef) -> String {
    format!(
        "https://{}.s3.eu-central-1.amazonaws.com/{}",
        o.bucket,
        encode_key(&o.key)
    )
}

fn cdn_url(o: &ObjectRef) -> String {
    format!("https://{UPLOADS_CDN}/{}", encode_key(&o.key))
}

/// A render output: its `files`, `preview` and `meta`, and the objects
/// they name.
type Output = (Value, Option<String>, Option<String>, Vec<ObjectRef>);

/// One render request: what its params and its output say, given whose
/// files they are; and those files.
struct Render {
    params: fn(&str) -> (Value, Vec<ObjectRef>),
    output: fn(&str) -> Output,
}

fn no_output(_: &str) -> Output {
    (json!([]), None, None, Vec::new())
}

fn no_params(_: &str) -> (Value, Vec<ObjectRef>) {
    (json!({}), Vec::new())
}

/// Inserts a render for `who` (request `n`); its objects, uploaded.
async fn render(app: &TestApp, who: &str, n: u32, case: &Render) -> Vec<ObjectRef> {
    let tag = if who == MEMBER { "m" } else { "b" };
    let (params, mut objects) = (case.params)(tag);
    let (files, preview, meta, outputs) = (case.output)(tag);
    objects.extend(outputs);
    let job = (100 + n).to_string();
    let rows = [
        Row {
            table: "render_jobs",
            values: vec![
                ("job_id", Some(job.clone())),
                ("prompt", Some(format!("prompt of {who}"))),
                ("params", Some(params.to_string())),
            ],
        },
        Row {
            table: "render_outputs",
            values: vec![
                ("output_id", Some((200 + n).to_string())),
                ("job", Some(job.clone())),
                ("files", Some(files.to_string())),
                ("preview", preview),
                ("meta", meta),
            ],
        },
        studio(who, n, "RENDER", Some(job)),
    ];
    for row in &rows {
        atelier::insert(app.store(), row).await.unwrap();
    }
    for o in &objects {
        app.s3.put(&o.bucket, &o.key, b"x".to_vec()).await;
    }
    objects
}

fn studio(who: &str, n: u32, kind: &str, job_ref: Option<String>) -> Row {
    Row {
        table: "studio_requests",
        values: vec![
            ("req_no", Some(n.to_string())),
            ("requested_on", Some("2026-03-01".into())),
            ("member_uuid", Some(who.into())),
            ("kind", Some(kind.into())),
            ("job_ref", job_ref),
            ("device", Some("phone".into())),
        ],
    }
}

/// Inserts an export for `who`: its cover and its manifest listing pages.
async fn export(app: &TestApp, who: &str, n: u32) -> Vec<ObjectRef> {
    let export = uuid::Uuid::from_u64_pair(9, u64::from(n)).to_string();
    let cover = upload(who, &format!("cover {n}.png"));
    let manifest = atelier::object(EXPORTS_BUCKET, format!("manifests/{export}.json"));
    let pages: Vec<String> = (0..3)
        .map(|p| format!("pages/{export}/{p}+x.png"))
        .collect();
    app.s3
        .put(
            &manifest.bucket,
            &manifest.key,
            json!({"pages": pages}).to_string().into_bytes(),
        )
        .await;
    let mut objects = vec![cover.clone(), manifest.clone()];
    for page in &pages {
        let o = atelier::object(EXPORTS_BUCKET, page.clone());
        app.s3.put(&o.bucket, &o.key, b"x".to_vec()).await;
        objects.push(o);
    }
    app.s3.put(&cover.bucket, &cover.key, b"x".to_vec()).await;
    for row in [
        Row {
            table: "exports",
            values: vec![
                ("export_uuid", Some(export.clone())),
                (
                    "options",
                    Some(json!({"cover": s3_url(&cover)}).to_string()),
                ),
                ("manifest_key", Some(manifest.key)),
            ],
        },
        Row {
            table: "export_links",
            values: vec![
                ("req_no", Some(n.to_string())),
                ("export_uuid", Some(export)),
            ],
        },
        studio(who, n, "EXPORT", None),
    ] {
        atelier::insert(app.store(), &row).await.unwrap();
    }
    objects
}

/// Inserts an avatar for `who`, pointing back at a legacy request.
async fn avatar(app: &TestApp, who: &str, n: u32) -> Vec<ObjectRef> {
    let key = format!("{who}/{n}/face.png");
    let object = atelier::object(UPLOADS_BUCKET, format!("avatars/{key}"));
    app.s3.put(&object.bucket, &object.key, b"x".to_vec()).await;
    for row in [
        Row {
            table: "legacy_requests",
            values: vec![
                ("id", Some(n.to_string())),
                ("member_uuid", Some(who.into())),
                ("kind", Some("AVATAR".into())),
                ("job_id", None),
                ("ip", Some("192.0.2.1".into())),
            ],
        },
        Row {
            table: "avatar_uploads",
            values: vec![
                (
                    "upload_id",
                    Some(uuid::Uuid::from_u64_pair(8, u64::from(n)).to_string()),
                ),
                ("request_no", None),
                ("legacy_request_id", Some(n.to_string())),
                ("image_key", Some(key)),
                ("original_name", Some("me.png".into())),
            ],
        },
    ] {
        atelier::insert(app.store(), &row).await.unwrap();
    }
    vec![object]
}

/// Erases the member and checks: exactly `expected` deleted, the
/// bystander's files kept, exactly the member's cells changed.
async fn erase_and_check(app: &TestApp, expected: Vec<ObjectRef>, kept: Vec<ObjectRef>) {
    let before = snapshot(app).await;
    let status = app.erase_to_done(MEMBER).await;
    assert_eq!(status.record.anomaly_count, 0, "{:#?}", status.anomalies);
    let expected: BTreeSet<ObjectRef> = expected.into_iter().collect();
    assert_eq!(
        deleted(app),
        expected,
        "exactly the member's objects are deleted"
    );
    for o in &expected {
        assert!(!app.s3.exists(&o.bucket, &o.key).await, "{o} survived");
    }
    for o in &kept {
        assert!(app.s3.exists(&o.bucket, &o.key).await, "{o} was deleted");
    }
    assert_exact_changes(
        &before,
        &snapshot(app).await,
        &expected_changes(&before, MEMBER),
    );
}

/// A render in one shape for the member and one for the bystander.
async fn render_case(backend: Backend, case: Render) {
    let app = start(backend).await;
    let kept = render(&app, BYSTANDER, 1, &case).await;
    let expected = render(&app, MEMBER, 2, &case).await;
    assert!(!expected.is_empty());
    erase_and_check(&app, expected, kept).await;
}

async fn option_with_only_an_s3_url(backend: Backend) {
    render_case(
        backend,
        Render {
            params: |who| {
                let o = upload(who, "내 사진.png");
                (json!({"reference": s3_url(&o)}), vec![o])
            },
            output: no_output,
        },
    )
    .await
}

async fn option_with_only_a_cloudfront_url(backend: Backend) {
    render_case(
        backend,
        Render {
            params: |who| {
                let o = upload(who, "a b.png");
                (json!({"reference": cdn_url(&o)}), vec![o])
            },
            output: no_output,
        },
    )
    .await
}

async fn option_with_bucket_key_and_a_cloudfront_url(backend: Backend) {
    render_case(
        backend,
        Render {
            params: |who| {
                let o = upload(who, "c.png");
                (
                    json!({"reference": {"bucket": o.bucket, "key": o.key, "url": cdn_url(&o)}}),
                    vec![o],
                )
            },
            output: no_output,
        },
    )
    .await
}

async fn option_with_bucket_key_and_an_s3_url(backend: Backend) {
    render_case(
        backend,
        Render {
            params: |who| {
                let o = upload(who, "d+e.png");
                (
                    json!({"reference": {"bucket": o.bucket, "key": o.key, "url": s3_url(&o)}}),
                    vec![o],
                )
            },
            output: no_output,
        },
    )
    .await
}

async fn option_with_a_file_list(backend: Backend) {
    render_case(
        backend,
        Render {
            params: |who| {
                let files = vec![upload(who, "1.png"), upload(who, "2 두번째.png")];
                let uris: Vec<String> = files
                    .iter()
                    .map(|o| format!("s3://{}/{}", o.bucket, o.key))
                    .collect();
                (json!({"inputs": uris}), files)
            },
            output: no_output,
        },
    )
    .await
}

async fn result_with_only_a_url(backend: Backend) {
    render_case(
        backend,
        Render {
            params: no_params,
            output: |who| {
                let thumb = atelier::object(RENDERS_BUCKET, format!("thumbs/{who}/t.jpg"));
                let meta = json!({"thumbnail": format!("s3://{}/{}", thumb.bucket, thumb.key)})
                    .to_string();
                (json!([]), None, Some(meta), vec![thumb])
            },
        },
    )
    .await
}

async fn result_with_a_file_list(backend: Backend) {
    render_case(
        backend,
        Render {
            params: no_params,
            output: |who| {
                let files = [
                    format!("out/{who}/0.png"),
                    format!("out/{who}/1 복사본.png"),
                ];
                let preview = format!("{who}/p.webp");
                let mut objects: Vec<ObjectRef> = files
                    .iter()
                    .map(|k| atelier::object(RENDERS_BUCKET, k.clone()))
                    .collect();
                objects.push(atelier::object(
                    RENDERS_BUCKET,
                    format!("previews/{preview}"),
                ));
                (
                    json!([{"key": files[0]}, {"key": files[1]}]),
                    Some(preview),
                    None,
                    objects,
                )
            },
        },
    )
    .await
}

/// Every feature: a render, an export and an avatar.
async fn every_feature_is_erased(backend: Backend) {
    let app = start(backend).await;
    let case = Render {
        params: |who| {
            let o = upload(who, "ref.png");
            (
                json!({"reference": {"bucket": o.bucket, "key": o.key}}),
                vec![o],
            )
        },
        output: no_output,
    };
    let mut kept = render(&app, BYSTANDER, 1, &case).await;
    kept.extend(export(&app, BYSTANDER, 2).await);
    kept.extend(avatar(&app, BYSTANDER, 3).await);
    let mut expected = render(&app, MEMBER, 4, &case).await;
    expected.extend(export(&app, MEMBER, 5).await);
    expected.extend(avatar(&app, MEMBER, 6).await);
    erase_and_check(&app, expected, kept).await;
}

/// The PDF case: a JSON document in S3 (named by a bare key) lists more
/// objects; they are erased before it.
async fn a_manifest_and_what_it_lists_are_erased(backend: Backend) {
    let app = start(backend).await;
    let kept = export(&app, BYSTANDER, 1).await;
    let expected = export(&app, MEMBER, 2).await;
    let manifest = expected[1].clone();
    erase_and_check(&app, expected, kept).await;
    let order: Vec<String> = app
        .s3
        .counters()
        .deletion_requests()
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    let at = |key: &str| order.iter().position(|k| k == key).unwrap();
    assert!(
        order
            .iter()
            .filter(|k| k.starts_with("pages/"))
            .all(|page| at(page) < at(&manifest.key)),
        "pages go before the manifest that lists them: {order:?}"
    );
}

on_both_backends!(
    option_with_only_an_s3_url,
    option_with_only_a_cloudfront_url,
    option_with_bucket_key_and_a_cloudfront_url,
    option_with_bucket_key_and_an_s3_url,
    option_with_a_file_list,
    result_with_only_a_url,
    result_with_a_file_list,
    every_feature_is_erased,
    a_manifest_and_what_it_lists_are_erased,
);
