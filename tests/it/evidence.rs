//! Evidence: verification catches survivors a delete response hid, the
//! destruction record holds no personal data, and after Done lethe keeps
//! only a keyed hash of the member and, after the retention, counts. The
//! record and minimisation run on both backends (through the CLI, too);
//! the verification tests are about S3 alone and run on PostgreSQL.

use std::time::Duration;

use lethe::State;
use lethe::store::Backend;

use crate::app::{TEST_HASH_SECRET, TestApp, text, wait_for_line};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_put_back_after_deletion_is_caught_by_verification() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 2, 12).await;
    let target = &loaded.members[0];
    let id = app.submit(&target.key).await;

    // Stop a worker after deletion, in the middle of masking...
    let mut doomed = app.spawn_worker(Some("masking_rows:1"), &[]);
    wait_for_line(
        &mut doomed,
        "failpoint masking_rows:1 reached",
        Duration::from_secs(60),
    )
    .await;
    assert!(app.s3.counters().delete_objects_calls() > 0);
    // ...and put one of the member's objects back, as a late writer would.
    let survivor = &target.objects[3];
    app.s3
        .put(&survivor.bucket, &survivor.key, "written again")
        .await;
    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.expect("reaping the killed worker");

    let mut rescuer = app.spawn_worker(None, &[]);
    app.wait_for_state(id, State::Done, Duration::from_secs(60))
        .await;
    rescuer.start_kill().ok();
    rescuer.wait().await.ok();

    assert!(
        !app.s3.exists(&survivor.bucket, &survivor.key).await,
        "verification let the survivor through"
    );
    let found: Vec<_> = app
        .events(id)
        .await
        .into_iter()
        .filter(|e| e.kind == "survivors_found")
        .collect();
    assert_eq!(found.len(), 1, "verification records what it found");
    let record = app.engine.report(id).await.unwrap();
    assert_eq!(record.verification.survivors_erased_again, 1);
    assert_eq!(record.verification.result, "passed");
    app.assert_objects_gone(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_the_server_reports_but_does_not_do_fails_verification() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 1, 9).await;
    let target = &loaded.members[0];
    let kept = &target.objects[2];
    // DeleteObjects answers "deleted" for this key and keeps it.
    app.s3.faults().pretend_delete_of_key(&kept.key);
    let id = app.submit(&target.key).await;
    app.run_worker_once().await;

    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Failed);
    assert_eq!(status.resume_state.0, Some(State::DbMasked));
    let error = status.last_error.unwrap();
    assert!(
        error.contains("still there after being erased twice"),
        "{error}"
    );
    assert!(error.contains(&kept.bucket), "names the bucket: {error}");
    assert!(!error.contains(&target.key), "never the key: {error}");
    assert!(app.s3.exists(&kept.bucket, &kept.key).await);

    app.s3.faults().clear();
    app.engine.retry(id).await.unwrap();
    app.run_worker_once().await;
    assert_eq!(app.state_of(id).await, State::Done);
    assert!(!app.s3.exists(&kept.bucket, &kept.key).await);
}

async fn the_record_of_a_finished_request_holds_neither_the_subject_key_nor_any_object_key(
    backend: Backend,
) {
    let app = TestApp::start_on(backend).await;
    let loaded = app.load("member", 3, 20).await;
    let target = &loaded.members[1];
    let out = app
        .run_lethe(&["submit", &target.key, "--idempotency-key", "ticket-4711"])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).lines().next().unwrap().trim().to_owned();
    // A duplicate while it is active: coalesced, and minimised with it.
    let duplicate = app.engine.submit(&target.key, None).await.unwrap();
    assert!(duplicate.coalesced_into.is_some());
    let out = app.run_lethe(&["worker", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let json_out = app.run_lethe(&["report", &id, "--format", "json"]).await;
    assert!(json_out.status.success(), "{}", text(&json_out.stderr));
    let csv_out = app.run_lethe(&["report", &id, "--format", "csv"]).await;
    assert!(csv_out.status.success(), "{}", text(&csv_out.stderr));
    let today = chrono::Utc::now().date_naive().to_string();
    let period = app
        .run_lethe(&[
            "report", "--from", &today, "--to", &today, "--format", "csv",
        ])
        .await;
    assert!(period.status.success(), "{}", text(&period.stderr));
    let (json, csv, register) = (
        text(&json_out.stdout),
        text(&csv_out.stdout),
        text(&period.stdout),
    );
    eprintln!("--- report --format json ---\n{json}\n--- report --format csv ---\n{csv}");

    // Grep: no subject key, no object key (nor any key's file name), in any of them.
    for (name, body) in [("json", &json), ("csv", &csv), ("register", &register)] {
        assert!(!body.contains(&target.key), "{name} holds the subject key");
        assert!(!body.contains("member-"), "{name} holds a member key");
        for object in &target.objects {
            assert!(!body.contains(&object.key), "{name} holds an object key");
            let file = object.key.rsplit('/').next().unwrap();
            assert!(!body.contains(file), "{name} holds an object's file name");
        }
    }

    // What it does hold.
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["request_id"], id.as_str());
    assert_eq!(record["external_reference"], "ticket-4711");
    assert_eq!(record["state"], "done");
    assert_eq!(record["verification"]["result"], "passed");
    assert_eq!(record["engine"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(record["phases"].as_array().unwrap().len(), 4);
    for phase in record["phases"].as_array().unwrap() {
        assert!(phase["finished_at"].is_string(), "{phase}");
    }
    let rows: i64 = record["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["method"], "masked", "{t}");
            t["rows"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(rows, 60, "20 requests x 3 rows");
    let deleted: i64 = record["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["method"] == "deleted")
        .map(|b| b["objects"].as_i64().unwrap())
        .sum();
    assert_eq!(deleted as usize, target.objects.len());
    assert!(
        record["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["method"] == "retained: protected"),
        "the shared sample is reported retained"
    );
    assert_eq!(
        record["minimisation"]["subject_key"],
        "replaced by its keyed hash (HMAC-SHA256)"
    );
    assert!(csv.starts_with("request_id,external_reference,state,"));
    assert!(
        csv.lines().skip(1).all(|line| line.starts_with(&id)),
        "{csv}"
    );
    assert!(register.contains(&id));

    // lethe's own tables no longer hold the raw key, but still find the member.
    let raw = app.service().raw_key_count(&target.key).await;
    assert_eq!(
        raw, 0,
        "the raw key is gone from the done and the coalesced request"
    );
    let hashes = app.service().subject_hashes().await;
    let expected = lethe::minimise::SubjectHasher::new(TEST_HASH_SECRET).hash(&target.key);
    assert_eq!(hashes, vec![Some(expected.clone()), Some(expected)]);
    let found = app.engine.status_for_subject(&target.key).await.unwrap();
    assert_eq!(found.len(), 2, "status --subject finds them by hash");
}

async fn a_pruned_manifest_keeps_the_record_and_a_later_submission_is_matched(backend: Backend) {
    let app = TestApp::start_on_with(backend, |c| c.minimisation.manifest_retention_days = 0).await;
    let loaded = app.load("member", 2, 10).await;
    let target = &loaded.members[0];
    let first = app
        .engine
        .submit(&target.key, Some("first"))
        .await
        .unwrap()
        .id;
    app.run_worker_once().await;
    assert_eq!(app.state_of(first).await, State::Done);

    // Retention 0: pruned as soon as it was done.
    let manifest = app.service().manifest_size(first).await;
    assert_eq!(manifest, 0, "the per-object manifest is pruned");
    let record = app.engine.report(first).await.unwrap();
    assert!(record.minimisation.manifest_pruned_at.is_some());
    let rows: i64 = record.tables.iter().map(|t| t.rows).sum();
    let objects: i64 = record
        .buckets
        .iter()
        .filter(|b| b.method == "deleted")
        .map(|b| b.objects)
        .sum();
    assert_eq!(rows, 30);
    assert_eq!(objects as usize, target.objects.len());

    // The member comes back (new data, a new erasure): matched to the first
    // by the keyed hash, and the idempotency key still replays.
    let again = app.engine.submit(&target.key, Some("first")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.id, first);
    let later = app.engine.submit(&target.key, None).await.unwrap();
    assert!(!later.replayed);
    assert_eq!(later.coalesced_into, None, "a done request is not active");
    assert_eq!(later.previously_done, vec![first]);
    app.run_worker_once().await;
    assert_eq!(app.state_of(later.id).await, State::Done);
    let statuses = app.engine.status_for_subject(&target.key).await.unwrap();
    assert_eq!(statuses.len(), 2);
    let again = app.engine.prune().await.unwrap();
    assert!(again.manifests_pruned.is_empty(), "nothing left to prune");
    assert_eq!(again.subjects_minimised, 0);

    // A request finished before lethe minimised at Done still holds its
    // raw key: `lethe prune` hashes it.
    let legacy = app
        .service()
        .insert_unminimised_done_request("legacy-member")
        .await;
    let out = app.run_lethe(&["prune"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("hashed the key of 1 earlier request"),
        "{}",
        text(&out.stdout)
    );
    let (key, hash) = app.service().key_and_hash(legacy).await;
    assert_eq!(key, None);
    assert_eq!(
        hash.as_deref(),
        Some(
            lethe::minimise::SubjectHasher::new(TEST_HASH_SECRET)
                .hash("legacy-member")
                .as_str()
        )
    );
}

on_both_backends!(
    the_record_of_a_finished_request_holds_neither_the_subject_key_nor_any_object_key,
    a_pruned_manifest_keeps_the_record_and_a_later_submission_is_matched,
);
