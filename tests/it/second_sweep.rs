//! Rows written after discovery: a member still using the service while
//! being erased (a new request), and the service rewriting a row after it
//! was masked. Verification finds both and, instead of failing, sweeps:
//! their files are deleted, their rows masked, and the request reaches
//! Done with them in its record.
//!
//! PostgreSQL only: the new rows are written with the example service's
//! PostgreSQL statements (`shapes::insert`); the sweep runs above the store
//! seam, the same on both backends.

use std::time::Duration;

use lethe::State;
use lethe::example::shapes::{INPUTS_BUCKET, object, virtual_hosted};
use serde_json::json;

use crate::app::{TestApp, wait_for_line};
use crate::shapes::{Case, insert};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_after_discovery_are_swept_before_done() {
    let app = TestApp::start().await;
    let loaded = app.load("sweep", 2, 20).await;
    let member = &loaded.members[0];
    let mut rows = app.rows_of(&member.key).await;
    let id = app.submit(&member.key).await;

    // Stopped in the last masking batch: discovery is long over, the first
    // batch's rows are masked.
    let mut worker = app.spawn_worker(Some("masking_rows:2"), &[]);
    wait_for_line(
        &mut worker,
        "failpoint masking_rows:2 reached",
        Duration::from_secs(60),
    )
    .await;

    // The member makes a request meanwhile...
    let late = object(
        INPUTS_BUCKET,
        format!("inputs/{}/late request.png", member.key),
    );
    app.s3.put(&late.bucket, &late.key, b"x".to_vec()).await;
    let inserted = insert(
        &app,
        &member.key,
        &Case {
            feature_type: "UPSCALE",
            option: Some(json!({"inputFileList": [{"bucket": late.bucket, "key": late.key}]})),
            legacy_option: None,
            result: json!({}),
        },
    )
    .await;
    rows.insert(("client".into(), inserted.client));
    rows.insert((format!("{}_feature", inserted.stem), inserted.feature));
    rows.insert((format!("{}_task", inserted.stem), inserted.task));
    // ...and the service writes a masked row of theirs again.
    let (table, row): (String, String) = sqlx::query_as(
        "SELECT table_name, row_id FROM erasure_manifest_rows \
          WHERE request_id = $1 AND masked_at IS NOT NULL AND table_name LIKE '%\\_feature' LIMIT 1",
    )
    .bind(id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    let rewritten = object(
        INPUTS_BUCKET,
        format!("inputs/{}/rewritten.png", member.key),
    );
    app.s3
        .put(&rewritten.bucket, &rewritten.key, b"x".to_vec())
        .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET prompt = 'written again', option = $1 WHERE id = $2::text::bigint"
    )))
    .bind(json!({"inputFileList": [{"url": virtual_hosted(&rewritten)}]}))
    .bind(&row)
    .execute(app.pool())
    .await
    .unwrap();

    worker.start_kill().expect("SIGKILL");
    worker.wait().await.unwrap();
    let mut rescuer = app.spawn_worker(None, &[]);
    app.wait_for_state(id, State::Done, Duration::from_secs(60))
        .await;
    rescuer.start_kill().ok();
    rescuer.wait().await.ok();

    for o in member.objects.iter().chain([&late, &rewritten]) {
        assert!(!app.s3.exists(&o.bucket, &o.key).await, "{o} survived");
    }
    for other in &loaded.members[1].objects {
        assert!(
            app.s3.exists(&other.bucket, &other.key).await,
            "{other} was deleted"
        );
    }
    app.assert_rows_masked(&rows).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM client WHERE client_key = $1")
        .bind(&member.key)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the late request's client row is masked");
    let prompt: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT prompt FROM {table} WHERE id = $1::text::bigint"
    )))
    .bind(&row)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(prompt, None, "the rewritten row is masked again");
    let sweeps = app
        .events(id)
        .await
        .into_iter()
        .filter(|e| e.kind == "second_sweep")
        .count();
    assert_eq!(sweeps, 1);
    let status = app.engine.status(id).await.unwrap();
    assert_eq!(status.record.anomaly_count, 0, "{:#?}", status.anomalies);
}

/// A writer that keeps putting a member's data back: the request is not
/// swept for ever — after three sweeps it stops in Failed, saying what keeps
/// coming back — and once the writer is stopped, `retry` finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_keeps_writing_stops_the_request_until_retry() {
    let app = TestApp::start().await;
    let loaded = app.load("stubborn", 1, 12).await;
    let member = &loaded.members[0];
    // The service's writer, as a trigger: whatever masks a prompt, it
    // writes it back.
    sqlx::raw_sql(
        "CREATE FUNCTION keep_prompt() RETURNS trigger AS $$ BEGIN \
           IF NEW.prompt IS NULL THEN NEW.prompt := OLD.prompt; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER keep_prompt BEFORE UPDATE ON upscale_feature FOR EACH ROW EXECUTE FUNCTION keep_prompt(); \
         CREATE TRIGGER keep_prompt BEFORE UPDATE ON text_to_image_feature FOR EACH ROW EXECUTE FUNCTION keep_prompt();",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let id = app.submit(&member.key).await;
    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap();
    assert_eq!(
        status.record.state,
        State::Failed,
        "{:?}",
        status.record.last_error
    );
    let error = status.record.last_error.unwrap_or_default();
    assert!(
        error.contains("keeps being written") && error.contains("written again after masking"),
        "{error}"
    );
    assert!(!error.contains(&member.key), "{error}");

    sqlx::raw_sql("DROP TRIGGER keep_prompt ON upscale_feature; DROP TRIGGER keep_prompt ON text_to_image_feature;")
        .execute(app.pool())
        .await
        .unwrap();
    app.engine.retry(id).await.unwrap();
    app.run_worker_once().await;
    assert_eq!(app.state_of(id).await, State::Done);
    app.assert_objects_gone(member).await;
}
