//! "All AI features" and "PDF elements" from the seed's checklist: every
//! feature's tables and shapes through one erasure, and a PDF extraction
//! whose JSON manifest lists a thousand images.
//!
//! PostgreSQL only: feature shapes and PDF expansion are resolved above the
//! store seam, by the same code on both backends.

use std::collections::BTreeSet;

use lethe::State;
use lethe::example::ExampleSpec;
use lethe::example::features::FEATURES;
use lethe::example::shapes::{
    INPUTS_BUCKET, RESULTS_BUCKET, STYLE_PRESET_KEYS, cloudfront, object,
};
use serde_json::json;

use crate::app::TestApp;
use crate::shapes::{Case, insert};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ai_feature_and_pdf_in_every_era_is_erased() {
    let app = TestApp::start().await;
    // 57 requests: every feature in each era (old, middle, current).
    let loaded = app
        .load_spec(ExampleSpec {
            members: 2,
            requests_per_member: FEATURES.len() * 3,
            member_prefix: "all".into(),
            every_feature: true,
        })
        .await;
    let target = &loaded.members[0];
    let rows = app.rows_of(&target.key).await;
    let tables: std::collections::BTreeSet<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tables.len(),
        3 + FEATURES.len() * 2,
        "every feature and task table has rows: {tables:?}"
    );

    let status = app.erase_to_done(&target.key).await;
    assert_eq!(status.record.anomaly_count, 0, "{:?}", status.anomalies);
    assert_eq!(status.record.rows_masked as usize, rows.len());
    assert_eq!(status.record.objects_deleted as usize, target.objects.len());
    // Exactly the member's objects were sent for deletion, nothing else.
    let deleted: BTreeSet<(String, String)> =
        app.s3.counters().deletion_requests().into_iter().collect();
    let owned: BTreeSet<(String, String)> = target
        .objects
        .iter()
        .map(|o| (o.bucket.clone(), o.key.clone()))
        .collect();
    assert_eq!(deleted, owned);
    app.assert_objects_gone(target).await;
    app.assert_rows_masked(&rows).await;
    app.assert_objects_present(&loaded.members[1]).await;
    for shared in &loaded.shared {
        assert!(
            app.s3.exists(&shared.bucket, &shared.key).await,
            "shared {shared} was deleted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_with_a_thousand_images_goes_images_first_and_shared_objects_stay() {
    let app = TestApp::start_with(|c| c.worker.delete_batch_size = 400).await;
    let member = "pdf-member";
    let pdf = object(INPUTS_BUCKET, format!("inputs/{member}/계약서.pdf"));
    let document = object(RESULTS_BUCKET, format!("pdf/{member}/extract.json"));
    let images: Vec<String> = (0..1000)
        .map(|i| format!("pdf/{member}/images/page-{i:04}.png"))
        .collect();
    app.s3.put(&pdf.bucket, &pdf.key, b"%PDF".to_vec()).await;
    let body = json!({"fileKeyList": images, "texts": ["성명: 홍길동"]});
    app.s3
        .put(
            &document.bucket,
            &document.key,
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    for key in &images {
        app.s3.put(RESULTS_BUCKET, key, b"png".to_vec()).await;
    }
    insert(
        &app,
        member,
        &Case {
            feature_type: "PDF_EXTRACT",
            option: Some(json!({"inputFileList": [{"bucket": pdf.bucket, "key": pdf.key, "inputFileType": "pdf"}]})),
            legacy_option: None,
            result: json!({"bucket": document.bucket, "key": document.key, "url": cloudfront(&document), "pageCount": 250}),
        },
    )
    .await;
    // The same member also used a shared style preset.
    let preset = object(INPUTS_BUCKET, STYLE_PRESET_KEYS[0]);
    insert(
        &app,
        member,
        &Case {
            feature_type: "STYLE_TRANSFER",
            option: Some(json!({"inputFileList": [{"bucket": preset.bucket, "key": preset.key, "inputFileType": "styleImage"}]})),
            legacy_option: None,
            result: json!({}),
        },
    )
    .await;

    let id = app.submit(member).await;
    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Done, "{:?}", status.last_error);
    assert_eq!(
        status.objects_deleted, 1002,
        "1,000 images, the JSON and the PDF"
    );
    assert_eq!(status.objects_retained, 1, "the shared preset");

    let deleted: BTreeSet<(String, String)> =
        app.s3.counters().deletion_requests().into_iter().collect();
    let mut expected: BTreeSet<(String, String)> = images
        .iter()
        .map(|key| (RESULTS_BUCKET.to_owned(), key.clone()))
        .collect();
    expected.insert((document.bucket.clone(), document.key.clone()));
    expected.insert((pdf.bucket.clone(), pdf.key.clone()));
    assert_eq!(
        deleted, expected,
        "exactly the images, the JSON and the PDF"
    );
    for key in &images {
        assert!(
            !app.s3.exists(RESULTS_BUCKET, key).await,
            "image {key} survived"
        );
    }
    assert!(!app.s3.exists(&document.bucket, &document.key).await);
    assert!(!app.s3.exists(&pdf.bucket, &pdf.key).await);
    assert!(
        app.s3.exists(&preset.bucket, &preset.key).await,
        "the shared preset was deleted"
    );

    // The JSON that lists the images went after every one of them.
    let order = app.s3.counters().deletion_requests();
    let document_at = order
        .iter()
        .position(|(_, key)| *key == document.key)
        .unwrap();
    let last_image_at = order
        .iter()
        .rposition(|(_, key)| key.contains("/images/"))
        .unwrap();
    assert!(
        document_at > last_image_at,
        "the JSON manifest was deleted before its images"
    );
}
