//! The seed's test checklist, one test per case: a member with one request
//! in exactly that shape. Each asserts the exact set of objects deleted
//! (from the S3 server's own record of DeleteObjects calls) and the exact
//! columns masked (every other column byte-identical).
//!
//! PostgreSQL only: references are resolved above the store seam, by the
//! same code on both backends.

use std::collections::BTreeSet;

use lethe::example::shapes::{
    INPUTS_BUCKET, RESULTS_BUCKET, cloudfront, legacy_global, object, path_style, virtual_hosted,
};
use lethe::references::ObjectRef;
use serde_json::{Value, json};

use crate::app::TestApp;

const MEMBER: &str = "case-member";

/// One request to insert: its feature type, its JSON, and which objects
/// exist in S3 beforehand.
pub struct Case {
    pub feature_type: &'static str,
    pub option: Option<Value>,
    pub legacy_option: Option<String>,
    pub result: Value,
}

/// The ids of the inserted rows.
pub struct Inserted {
    pub client: String,
    pub feature: String,
    pub task: String,
    pub stem: &'static str,
}

fn input(name: &str) -> ObjectRef {
    object(INPUTS_BUCKET, format!("inputs/{MEMBER}/{name}"))
}

fn output(name: &str) -> ObjectRef {
    object(RESULTS_BUCKET, format!("results/{MEMBER}/{name}"))
}

pub async fn insert(app: &TestApp, member: &str, case: &Case) -> Inserted {
    let feature = lethe::example::features::by_type(case.feature_type).expect("a known feature");
    let stem = feature.stem;
    let client: String = sqlx::query_scalar(
        "INSERT INTO client (client_key, type, ip_address, user_agent) VALUES ($1, $2, '10.1.2.3', 'UA') RETURNING id::text",
    )
    .bind(member)
    .bind(case.feature_type)
    .fetch_one(app.pool())
    .await
    .unwrap();
    let feature_id: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {stem}_feature (client_id, prompt, option, legacy_option) \
         VALUES ($1::text::bigint, 'my secret prompt', $2, $3) RETURNING id::text"
    )))
    .bind(&client)
    .bind(&case.option)
    .bind(&case.legacy_option)
    .fetch_one(app.pool())
    .await
    .unwrap();
    let task: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {stem}_task (feature_id, result, gpu, timeline) \
         VALUES ($1::text::bigint, $2, 'A100', '{{\"runMs\": 1}}') RETURNING id::text"
    )))
    .bind(&feature_id)
    .bind(&case.result)
    .fetch_one(app.pool())
    .await
    .unwrap();
    Inserted {
        client,
        feature: feature_id,
        task,
        stem,
    }
}

async fn row(app: &TestApp, table: &str, id: &str) -> Value {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(t) FROM {table} t WHERE id = $1::text::bigint"
    )))
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap()
}

/// Checks that exactly `masked` columns changed, to these values.
fn assert_masked(table: &str, before: &Value, after: &Value, masked: &[(&str, Value)]) {
    let before = before.as_object().unwrap();
    let after = after.as_object().unwrap();
    for (column, value) in before {
        match masked.iter().find(|(c, _)| c == column) {
            Some((_, expected)) => {
                assert_eq!(&after[column], expected, "{table}.{column} is not masked")
            }
            None => assert_eq!(
                &after[column], value,
                "{table}.{column} changed but is not catalogued as personal"
            ),
        }
    }
}

/// Puts the objects, erases the member, and checks exactly `expected` were
/// deleted and exactly the catalogued columns masked. `kept` must survive.
async fn erase_and_check(case: Case, expected: &[ObjectRef], kept: &[ObjectRef]) -> TestApp {
    let app = TestApp::start().await;
    for o in expected.iter().chain(kept) {
        app.s3.put(&o.bucket, &o.key, b"x".to_vec()).await;
    }
    // A bystander with the same shape and their own objects.
    let bystander_object = object(INPUTS_BUCKET, "inputs/bystander/photo.png");
    app.s3
        .put(
            &bystander_object.bucket,
            &bystander_object.key,
            b"x".to_vec(),
        )
        .await;
    let bystander = insert(
        &app,
        "bystander",
        &Case {
            feature_type: case.feature_type,
            option: Some(
                json!({"inputFileList": [{"bucket": INPUTS_BUCKET, "key": bystander_object.key}]}),
            ),
            legacy_option: None,
            result: json!({}),
        },
    )
    .await;
    let bystander_before = row(
        &app,
        &format!("{}_feature", bystander.stem),
        &bystander.feature,
    )
    .await;

    let ids = insert(&app, MEMBER, &case).await;
    let client_before = row(&app, "client", &ids.client).await;
    let feature_table = format!("{}_feature", ids.stem);
    let task_table = format!("{}_task", ids.stem);
    let feature_before = row(&app, &feature_table, &ids.feature).await;
    let task_before = row(&app, &task_table, &ids.task).await;

    let status = app.erase_to_done(MEMBER).await;
    assert_eq!(status.record.anomaly_count, 0, "{:?}", status.anomalies);

    let deleted: BTreeSet<ObjectRef> = app
        .s3
        .counters()
        .deletion_requests()
        .into_iter()
        .map(|(bucket, key)| ObjectRef { bucket, key })
        .collect();
    let expected_set: BTreeSet<ObjectRef> = expected.iter().cloned().collect();
    assert_eq!(
        deleted, expected_set,
        "exactly the referenced objects are deleted"
    );
    for o in expected {
        assert!(!app.s3.exists(&o.bucket, &o.key).await, "{o} survived");
    }
    for o in kept.iter().chain([&bystander_object]) {
        assert!(app.s3.exists(&o.bucket, &o.key).await, "{o} was deleted");
    }

    assert_masked(
        "client",
        &client_before,
        &row(&app, "client", &ids.client).await,
        &[
            ("client_key", Value::Null),
            ("ip_address", Value::Null),
            ("user_agent", Value::Null),
        ],
    );
    assert_masked(
        &feature_table,
        &feature_before,
        &row(&app, &feature_table, &ids.feature).await,
        &[
            ("prompt", Value::Null),
            ("option", json!({})),
            ("legacy_option", Value::Null),
        ],
    );
    assert_masked(
        &task_table,
        &task_before,
        &row(&app, &task_table, &ids.task).await,
        &[("result", json!({}))],
    );
    assert_eq!(
        row(
            &app,
            &format!("{}_feature", bystander.stem),
            &bystander.feature
        )
        .await,
        bystander_before,
        "the bystander's row is untouched"
    );
    app
}

fn result_url(o: &ObjectRef) -> Value {
    json!({"url": cloudfront(o)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_only_an_s3_url() {
    let (source, result) = (input("a.png"), output("a.png"));
    let case = Case {
        feature_type: "BACKGROUND_REMOVAL",
        option: Some(json!({"url": virtual_hosted(&source)})),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[input("unreferenced.png")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_only_a_cloudfront_url() {
    let (source, result) = (input("사진 1.png"), output("a.png"));
    let case = Case {
        feature_type: "BACKGROUND_REMOVAL",
        option: Some(json!({"url": cloudfront(&source)})),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_bucket_key_and_a_cloudfront_url() {
    let (source, result) = (input("b.png"), output("b.png"));
    let case = Case {
        feature_type: "IMAGE_TO_IMAGE",
        option: Some(
            json!({"bucket": source.bucket, "key": source.key, "url": cloudfront(&source)}),
        ),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_bucket_key_and_an_s3_url() {
    let (source, result) = (input("c d+e.png"), output("c.png"));
    let case = Case {
        feature_type: "IMAGE_TO_IMAGE",
        option: Some(
            json!({"bucket": source.bucket, "key": source.key, "url": path_style(&source)}),
        ),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_an_input_file_list() {
    let (source, mask, result) = (input("원본.png"), input("mask.png"), output("d.png"));
    let case = Case {
        feature_type: "INPAINTING",
        option: Some(json!({"inputFileList": [
            {"bucket": source.bucket, "key": source.key, "url": cloudfront(&source), "inputFileType": "originalImage"},
            {"bucket": mask.bucket, "key": mask.key, "url": virtual_hosted(&mask), "inputFileType": "maskImage"}
        ]})),
        legacy_option: None,
        result: result_url(&result),
    };
    let all = [source, mask, result];
    erase_and_check(case, &all, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_legacy_input_image_url() {
    let (source, result) = (input("e.png"), output("e.png"));
    let case = Case {
        feature_type: "IMAGE_TO_IMAGE",
        option: Some(json!({"inputImageUrl": legacy_global(&source), "strength": 0.5})),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_legacy_image_url_stored_as_json_text() {
    let (source, result) = (input("f.png"), output("f.png"));
    let url = format!(
        "https://s3-ap-northeast-2.amazonaws.com/{}/{}",
        source.bucket, source.key
    );
    let case = Case {
        feature_type: "UPSCALE",
        option: None,
        legacy_option: Some(json!({"imageUrl": url, "scale": 2}).to_string()),
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_with_legacy_url_field() {
    let (source, result) = (input("g.png"), output("g.png"));
    let case = Case {
        feature_type: "DEPTH_MAP",
        option: Some(json!({"url": format!("s3://{}/{}", source.bucket, source.key)})),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[source, result], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_and_key_win_over_a_url_that_names_another_object() {
    let (meant, other, result) = (input("meant.png"), input("other.png"), output("h.png"));
    let case = Case {
        feature_type: "IMAGE_TO_IMAGE",
        option: Some(json!({"bucket": meant.bucket, "key": meant.key, "url": cloudfront(&other)})),
        legacy_option: None,
        result: result_url(&result),
    };
    erase_and_check(case, &[meant, result], &[other]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_shapes_in_one_row_delete_each_object_once() {
    let (source, result) = (input("i.png"), output("i.png"));
    let case = Case {
        feature_type: "IMAGE_TO_IMAGE",
        option: Some(json!({
            "inputFileList": [{"bucket": source.bucket, "key": source.key}],
            "inputImageUrl": virtual_hosted(&source),
            "bucket": source.bucket, "key": source.key, "url": cloudfront(&source)
        })),
        legacy_option: None,
        result: json!({"url": cloudfront(&result), "fileList": [{"url": virtual_hosted(&result)}]}),
    };
    let app = erase_and_check(case, &[source, result], &[]).await;
    assert_eq!(
        app.s3.counters().keys_requested_for_deletion(),
        2,
        "each object once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_with_only_a_url() {
    let result = output("j.png");
    let case = Case {
        feature_type: "TEXT_TO_IMAGE",
        option: Some(json!({"width": 512})),
        legacy_option: None,
        result: json!({"url": virtual_hosted(&result)}),
    };
    let objects = [result];
    erase_and_check(case, &objects, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_with_a_url_and_a_webp_url() {
    let (png, webp) = (output("k.png"), output("k.webp"));
    let case = Case {
        feature_type: "TEXT_TO_IMAGE",
        option: Some(json!({"width": 512})),
        legacy_option: None,
        result: json!({"url": virtual_hosted(&png), "webpUrl": cloudfront(&webp)}),
    };
    erase_and_check(case, &[png, webp], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_with_a_file_list() {
    let results: Vec<ObjectRef> = (0..4)
        .map(|i| output(&format!("portrait-{i}.png")))
        .collect();
    let list: Vec<Value> = results
        .iter()
        .enumerate()
        .map(|(i, o)| {
            if i % 2 == 0 {
                json!({"url": cloudfront(o), "type": "RESULT_IMAGE"})
            } else {
                json!({"bucket": o.bucket, "key": o.key, "url": cloudfront(o)})
            }
        })
        .collect();
    let case = Case {
        feature_type: "PORTRAIT",
        option: Some(json!({"inputFileList": []})),
        legacy_option: None,
        result: json!({"fileList": list}),
    };
    erase_and_check(case, &results, &[]).await;
}
