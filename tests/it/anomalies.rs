//! Corrupt data: each kind of anomaly is recorded on the request and shown
//! in `status`, the request ends as done-with-anomalies (never clean), and
//! nothing else about the erasure changes: the member's other files go and
//! every row is masked. Also the dry run (`lethe plan`): it predicts the
//! erasure's counts and changes nothing.
//!
//! PostgreSQL only: anomalies are found and recorded above the store seam,
//! by the same code on both backends; the SQLite half of the suite covers
//! the statements that store them.

use std::collections::BTreeMap;

use lethe::example::shapes::{
    INPUTS_BUCKET, RESULTS_BUCKET, cloudfront, console_copied, object, virtual_hosted,
};
use serde_json::json;

use crate::app::{TestApp, example_catalog};
use crate::catalog::copy_dir;
use crate::shapes::{Case, insert};

const MEMBER: &str = "messy-member";

/// The example catalog plus an optional feature whose tables this database lacks.
fn catalog_with_an_optional_feature() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example_catalog(), dir.path());
    std::fs::write(
        dir.path().join("features/voice_clone.toml"),
        r#"
        types = ["VOICE_CLONE"]
        optional = true
        [feature]
        table = "voice_clone_feature"
        id = "id"
        client_id = "client_id"
        [task]
        table = "voice_clone_task"
        id = "id"
        feature_id = "feature_id"
        "#,
    )
    .unwrap();
    dir
}

/// A member with one clean request and one request per anomaly kind.
async fn messy_member(
    app: &TestApp,
) -> (
    Vec<lethe::references::ObjectRef>,
    Vec<lethe::references::ObjectRef>,
) {
    let clean_input = object(INPUTS_BUCKET, format!("inputs/{MEMBER}/clean.png"));
    let clean_result = object(RESULTS_BUCKET, format!("results/{MEMBER}/clean.png"));
    let plus = object(INPUTS_BUCKET, format!("inputs/{MEMBER}/a+b.png"));
    let space = object(INPUTS_BUCKET, format!("inputs/{MEMBER}/a b.png"));
    // Referenced where the catalog cannot read them: reported, kept.
    let unrecognised = object(INPUTS_BUCKET, format!("inputs/{MEMBER}/as-a-string.png"));
    let undeclared = object(
        INPUTS_BUCKET,
        format!("inputs/{MEMBER}/undeclared-mask.png"),
    );
    for o in [
        &clean_input,
        &clean_result,
        &plus,
        &space,
        &unrecognised,
        &undeclared,
    ] {
        app.s3.put(&o.bucket, &o.key, b"x".to_vec()).await;
    }
    let bad_document = object(RESULTS_BUCKET, format!("pdf/{MEMBER}/broken.json"));
    app.s3
        .put(
            &bad_document.bucket,
            &bad_document.key,
            b"{not json".to_vec(),
        )
        .await;
    let missing_document = object(RESULTS_BUCKET, format!("pdf/{MEMBER}/gone.json"));

    let cases = [
        // Clean: its files must still go.
        Case {
            feature_type: "IMAGE_TO_IMAGE",
            option: Some(json!({"inputImageUrl": virtual_hosted(&clean_input)})),
            legacy_option: None,
            result: json!({"url": cloudfront(&clean_result)}),
        },
        // malformed_json: a legacy text option cut short.
        Case {
            feature_type: "UPSCALE",
            option: None,
            legacy_option: Some(format!(
                "{{\"imageUrl\": \"{}",
                virtual_hosted(&clean_input)
            )),
            result: json!({}),
        },
        // foreign_reference: a URL on someone else's host.
        Case {
            feature_type: "IMAGE_TO_IMAGE",
            option: Some(json!({"inputImageUrl": "https://images.example.com/cat.png"})),
            legacy_option: None,
            result: json!({}),
        },
        // unrecognised_shape: a URL where the catalog expects a list.
        Case {
            feature_type: "IMAGE_TO_IMAGE",
            option: Some(json!({"inputFileList": virtual_hosted(&unrecognised)})),
            legacy_option: None,
            result: json!({}),
        },
        // undeclared_reference: one of the service's files at a path the
        // catalog does not list.
        Case {
            feature_type: "IMAGE_TO_IMAGE",
            option: Some(json!({"extraInput": {"mask": virtual_hosted(&undeclared)}})),
            legacy_option: None,
            result: json!({}),
        },
        // ambiguous_plus: a console-copied URL, and both readings exist.
        Case {
            feature_type: "FACE_RESTORE",
            option: Some(json!({"inputImageUrl": console_copied(&space)})),
            legacy_option: None,
            result: json!({}),
        },
        // manifest_malformed and manifest_missing: PDF results.
        Case {
            feature_type: "PDF_EXTRACT",
            option: Some(json!({})),
            legacy_option: None,
            result: json!({"bucket": bad_document.bucket, "key": bad_document.key}),
        },
        Case {
            feature_type: "PDF_EXTRACT",
            option: Some(json!({})),
            legacy_option: None,
            result: json!({"bucket": missing_document.bucket, "key": missing_document.key}),
        },
    ];
    for case in &cases {
        insert(app, MEMBER, case).await;
    }
    // unknown_feature_type and missing_table: client rows alone.
    for ty in ["TEXT_TO_SPEECH", "VOICE_CLONE"] {
        sqlx::query("INSERT INTO client (client_key, type) VALUES ($1, $2)")
            .bind(MEMBER)
            .bind(ty)
            .execute(app.pool())
            .await
            .unwrap();
    }
    // Deleted: the clean files and the malformed JSON document itself.
    (
        vec![clean_input, clean_result, bad_document],
        vec![plus, space, unrecognised, undeclared],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_anomaly_kind_is_reported_and_the_rest_of_the_erasure_is_unchanged() {
    let catalog = catalog_with_an_optional_feature();
    let path = catalog.path().to_owned();
    let app = TestApp::start_with(move |c| c.catalog = path).await;
    let (deleted, kept) = messy_member(&app).await;
    let rows = app.rows_of(MEMBER).await;

    let status = app.erase_to_done(MEMBER).await;

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for anomaly in &status.anomalies {
        *kinds.entry(anomaly.kind.as_str()).or_default() += 1;
        assert!(
            !anomaly.detail.contains(MEMBER),
            "anomalies never name the member: {}",
            anomaly.detail
        );
    }
    let expected: BTreeMap<&str, usize> = [
        ("ambiguous_plus", 1),
        ("foreign_reference", 1),
        ("malformed_json", 1),
        ("manifest_malformed", 1),
        ("manifest_missing", 1),
        ("missing_table", 1),
        ("unknown_feature_type", 1),
        ("unrecognised_shape", 1),
        ("undeclared_reference", 1),
    ]
    .into();
    assert_eq!(kinds, expected, "{:#?}", status.anomalies);
    assert_eq!(status.record.anomaly_count, 9);
    let shown = status.to_string();
    assert!(shown.contains("done with 9 anomalies"), "{shown}");
    let find = |kind: &str| status.anomalies.iter().find(|a| a.kind == kind).unwrap();
    assert!(
        !find("foreign_reference")
            .detail
            .contains("images.example.com"),
        "a foreign reference's text names no host (it can be a personal domain): {}",
        find("foreign_reference").detail
    );
    assert!(
        find("unrecognised_shape")
            .detail
            .contains("at inputFileList")
    );
    assert!(
        find("undeclared_reference")
            .detail
            .contains("at extraInput.mask")
    );

    // The rest of the erasure is as if the data were clean.
    for o in &deleted {
        assert!(!app.s3.exists(&o.bucket, &o.key).await, "{o} survived");
    }
    for o in &kept {
        assert!(
            app.s3.exists(&o.bucket, &o.key).await,
            "{o}: an ambiguous reference must not be guessed"
        );
    }
    app.assert_rows_masked(&rows).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM client WHERE client_key = $1")
        .bind(MEMBER)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(
        left, 0,
        "the unknown-type and missing-table client rows are masked too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_predicts_the_erasure_and_changes_nothing() {
    let catalog = catalog_with_an_optional_feature();
    let path = catalog.path().to_owned();
    let app = TestApp::start_with(move |c| c.catalog = path).await;
    let loaded = app.load("member", 2, 60).await;
    messy_member(&app).await;
    let before = app.snapshot().await;

    let plan = app.engine.dry_run(MEMBER).await.unwrap();
    let big = app.engine.dry_run(&loaded.members[0].key).await.unwrap();
    assert_eq!(
        app.snapshot().await,
        before,
        "the dry run wrote to the service's tables"
    );
    assert_eq!(
        app.s3.counters().keys_requested_for_deletion(),
        0,
        "the dry run deleted objects"
    );
    let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM erasure_requests")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(requests, 0);
    assert_eq!(big.requests, 60);
    assert_eq!(big.objects() as usize, loaded.members[0].objects.len());
    assert_eq!(plan.anomaly_count(), 9);
    assert_eq!(plan.foreign, 1);
    let text = plan.to_string();
    assert!(
        text.contains("nothing was changed") && text.contains("per bucket"),
        "{text}"
    );

    // The erasure then does what the plan said.
    let id = app.submit(MEMBER).await;
    app.run_worker_once().await;
    let record = app.engine.status(id).await.unwrap().record;
    assert_eq!(record.rows_found as u64, plan.rows());
    assert_eq!(record.objects_found as u64, plan.objects());
    assert_eq!(
        record.objects_retained as u64,
        plan.retained_per_bucket.values().sum::<u64>()
    );
    assert_eq!(record.anomaly_count as u64, plan.anomaly_count());
}

/// A JSON manifest first met as a plain reference (an option pointing at an
/// earlier extraction) is still expanded where the catalog says it lists
/// more objects, later on the same page: its images go, and it goes last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_first_met_as_a_plain_reference_is_still_expanded() {
    let app = TestApp::start().await;
    let document = object(RESULTS_BUCKET, format!("pdf/{MEMBER}/earlier.json"));
    let images: Vec<_> = (0..3)
        .map(|i| object(RESULTS_BUCKET, format!("pdf/{MEMBER}/images/{i}.png")))
        .collect();
    let keys: Vec<&str> = images.iter().map(|o| o.key.as_str()).collect();
    app.s3
        .put(
            &document.bucket,
            &document.key,
            json!({"fileKeyList": keys}).to_string().into_bytes(),
        )
        .await;
    for image in &images {
        app.s3.put(&image.bucket, &image.key, b"x".to_vec()).await;
    }
    insert(
        &app,
        MEMBER,
        &Case {
            feature_type: "PDF_EXTRACT",
            option: Some(json!({"url": virtual_hosted(&document)})),
            legacy_option: None,
            result: json!({"bucket": document.bucket, "key": document.key}),
        },
    )
    .await;
    let status = app.erase_to_done(MEMBER).await;
    assert_eq!(status.record.anomaly_count, 0, "{:#?}", status.anomalies);
    for o in images.iter().chain([&document]) {
        assert!(!app.s3.exists(&o.bucket, &o.key).await, "{o} survived");
    }
    let order: Vec<String> = app
        .s3
        .counters()
        .deletion_requests()
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    assert_eq!(
        order.last(),
        Some(&document.key),
        "the manifest goes after what it lists: {order:?}"
    );
}
