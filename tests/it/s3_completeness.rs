//! What "deleted" means in S3, against moto (versioning, tagging, object
//! lock): every version and delete marker goes, replicas are erased too, a
//! locked object becomes an anomaly while the rest finishes, and
//! tag-and-expire tags and says "scheduled".
//!
//! PostgreSQL only: what S3 does with versions, tags and locks does not
//! depend on lethe's backend.

use lethe::State;

use crate::moto_app::{MotoApp, object};

/// Keys that embed the member id, with a space and Korean, like the seed's.
fn keys(member: &str, n: usize) -> (String, String) {
    (
        format!("inputs/{member}/{n:04}/원본 이미지.png"),
        format!("results/{member}/{n:04}/result 0.png"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versioned_bucket_with_three_versions_and_a_marker_per_key_leaves_nothing_behind() {
    let probe = crate::harness::moto();
    let (inputs, results) = (probe.bucket("inputs"), probe.bucket("results"));
    // Versioning is detected (auto) for one bucket and configured for the
    // other; the results bucket is listed one member directory at a time.
    let app = MotoApp::start(&format!(
        "buckets = [\"{inputs}\", \"{results}\"]\n\
         [storage.bucket.\"{results}\"]\nversioning = \"enabled\"\nlist_prefix_depth = 2\n"
    ))
    .await;
    app.create_bucket(&inputs, true, false).await;
    app.create_bucket(&results, true, false).await;

    let mut target_keys = Vec::new();
    let mut other_keys = Vec::new();
    for n in 0..3 {
        for (member, list) in [
            ("member-a", &mut target_keys),
            ("member-b", &mut other_keys),
        ] {
            let (input, output) = keys(member, n);
            app.insert_request(member, &object(&inputs, &input), &object(&results, &output))
                .await;
            list.push((inputs.clone(), input));
            list.push((results.clone(), output));
        }
    }
    // Three versions and a delete marker per key of the member: a plain
    // HeadObject already says "gone", and the data is all still there.
    for (bucket, key) in &target_keys {
        for v in 1..=3 {
            app.put(bucket, key, &format!("version {v}")).await;
        }
        app.delete(bucket, key).await;
        assert!(!app.exists(bucket, key).await);
        assert_eq!(app.versions(bucket, key).await.len(), 4);
    }
    for (bucket, key) in &other_keys {
        app.put(bucket, key, "v1").await;
        app.put(bucket, key, "v2").await;
    }

    let id = app.erase("member-a").await;

    for (bucket, key) in &target_keys {
        assert_eq!(
            app.versions(bucket, key).await,
            vec![],
            "{bucket}/{key}: a version or delete marker is left"
        );
    }
    for (bucket, key) in &other_keys {
        assert_eq!(app.versions(bucket, key).await.len(), 2, "{bucket}/{key}");
    }
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.anomaly_count, 0);
    assert_eq!(status.objects_deleted, 6);
    let record = app.engine.report(id).await.unwrap();
    for bucket in [&inputs, &results] {
        let count = record
            .buckets
            .iter()
            .find(|b| &b.bucket == bucket)
            .unwrap_or_else(|| panic!("{bucket} missing from {:?}", record.buckets));
        assert_eq!(count.method, "deleted");
        assert_eq!(count.objects, 3);
        assert_eq!(count.versions, Some(12), "3 versions + 1 marker, 3 keys");
    }
    assert_eq!(record.verification.result, "passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_bucket_is_cleaned_too() {
    let probe = crate::harness::moto();
    let (inputs, results, replica) = (
        probe.bucket("inputs"),
        probe.bucket("results"),
        probe.bucket("results-copy"),
    );
    let app = MotoApp::start(&format!(
        "buckets = [\"{inputs}\", \"{results}\"]\n\
         [storage.bucket.\"{results}\"]\nreplicas = [\"{replica}\"]\n\
         [storage.bucket.\"{replica}\"]\nregion = \"eu-central-1\"\n"
    ))
    .await;
    app.create_bucket(&inputs, false, false).await;
    app.create_bucket(&results, false, false).await;
    // The replica keeps versions, as replication requires: the copy's
    // versions must go as well.
    app.create_bucket(&replica, true, false).await;

    let mut outputs = Vec::new();
    for (member, n) in [("member-a", 0), ("member-a", 1), ("member-b", 0)] {
        let (input, output) = keys(member, n);
        app.insert_request(member, &object(&inputs, &input), &object(&results, &output))
            .await;
        app.put(&inputs, &input, "in").await;
        app.put(&results, &output, "out").await;
        app.put(&replica, &output, "out, replicated").await;
        app.put(&replica, &output, "out, replicated again").await;
        outputs.push((member, output));
    }

    let id = app.erase("member-a").await;

    for (member, output) in &outputs {
        let gone = *member == "member-a";
        assert_eq!(
            !app.exists(&results, output).await,
            gone,
            "{results}/{output}"
        );
        assert_eq!(
            app.versions(&replica, output).await.is_empty(),
            gone,
            "{replica}/{output}"
        );
    }
    let record = app.engine.report(id).await.unwrap();
    let copy = record
        .buckets
        .iter()
        .find(|b| b.bucket == replica)
        .expect("the replica is in the record");
    assert_eq!(copy.replica_of.as_deref(), Some(results.as_str()));
    assert_eq!((copy.method.as_str(), copy.objects), ("deleted", 2));
    assert_eq!(copy.versions, Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_object_becomes_an_anomaly_and_the_rest_finishes() {
    let probe = crate::harness::moto();
    let (inputs, results) = (probe.bucket("inputs"), probe.bucket("locked"));
    let app = MotoApp::start(&format!("buckets = [\"{inputs}\", \"{results}\"]\n")).await;
    app.create_bucket(&inputs, false, false).await;
    // Object lock needs a bucket created with it (and so versioned).
    app.create_bucket(&results, true, true).await;

    let mut requests = Vec::new();
    for n in 0..3 {
        let (input, output) = keys("member-a", n);
        let request = app
            .insert_request(
                "member-a",
                &object(&inputs, &input),
                &object(&results, &output),
            )
            .await;
        app.put(&inputs, &input, "in").await;
        if n == 1 {
            app.put(&results, &output, "an older version").await;
            app.put_on_legal_hold(&results, &output).await;
        } else {
            app.put(&results, &output, "out").await;
        }
        requests.push((request, output));
    }

    let id = app.erase("member-a").await;

    let status = app.engine.status(id).await.unwrap();
    assert_eq!(status.record.state, State::Done);
    assert_eq!(status.record.anomaly_count, 1, "{:?}", status.anomalies);
    assert_eq!(status.record.objects_locked, 1);
    let anomaly = &status.anomalies[0];
    assert_eq!(anomaly.kind, "retained_by_lock");
    assert!(anomaly.detail.contains(&results), "{}", anomaly.detail);
    assert!(
        anomaly.detail.contains("AccessDenied"),
        "{}",
        anomaly.detail
    );
    assert!(
        !anomaly.detail.contains("member-a"),
        "no key in the anomaly: {}",
        anomaly.detail
    );
    assert_eq!(anomaly.table_name.as_deref(), Some("upscale_task"));
    for (n, (request, output)) in requests.iter().enumerate() {
        let left = app.versions(&results, output).await;
        if n == 1 {
            // The held version stays; the unlocked older one is gone.
            assert_eq!(left.len(), 1, "{left:?}");
        } else {
            assert!(left.is_empty(), "{output}: {left:?}");
        }
        // Default policy: every row is masked, the locked object's too.
        assert!(app.task_masked(request.task_id).await);
        assert!(app.client_masked(request.client_id).await);
    }
    let record = app.engine.report(id).await.unwrap();
    let methods: Vec<(&str, &str, i64)> = record
        .buckets
        .iter()
        .map(|b| (b.bucket.as_str(), b.method.as_str(), b.objects))
        .collect();
    assert!(
        methods.contains(&(results.as_str(), "retained: locked", 1)),
        "{methods:?}"
    );
    assert!(
        methods.contains(&(results.as_str(), "deleted", 2)),
        "{methods:?}"
    );
    assert!(
        record.outcome.contains("with 1 anomalies"),
        "{}",
        record.outcome
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keep_policy_leaves_the_row_of_a_locked_object_unmasked() {
    let probe = crate::harness::moto();
    let (inputs, results) = (probe.bucket("inputs"), probe.bucket("locked"));
    let app = MotoApp::start(&format!(
        "buckets = [\"{inputs}\", \"{results}\"]\nlocked_object_rows = \"keep\"\n"
    ))
    .await;
    app.create_bucket(&inputs, false, false).await;
    app.create_bucket(&results, true, true).await;
    let (input, output) = keys("member-a", 0);
    let held = app
        .insert_request(
            "member-a",
            &object(&inputs, &input),
            &object(&results, &output),
        )
        .await;
    app.put_on_legal_hold(&results, &output).await;
    let (input2, output2) = keys("member-a", 1);
    let free = app
        .insert_request(
            "member-a",
            &object(&inputs, &input2),
            &object(&results, &output2),
        )
        .await;
    app.put(&results, &output2, "out").await;

    let id = app.erase("member-a").await;

    // The task row that leads to the held object keeps its reference; the
    // member's key is gone from every client row regardless.
    assert!(!app.task_masked(held.task_id).await);
    assert!(app.task_masked(free.task_id).await);
    assert!(app.client_masked(held.client_id).await);
    assert!(app.client_masked(free.client_id).await);
    let record = app.engine.report(id).await.unwrap();
    let kept: Vec<_> = record
        .tables
        .iter()
        .filter(|t| t.method == "kept")
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", record.tables);
    assert_eq!((kept[0].table.as_str(), kept[0].rows), ("upscale_task", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_mode_tags_keeps_other_tags_and_reports_scheduled() {
    let probe = crate::harness::moto();
    let (inputs, results) = (probe.bucket("inputs"), probe.bucket("expiring"));
    let app = MotoApp::start(&format!(
        "buckets = [\"{inputs}\", \"{results}\"]\n\
         [storage.bucket.\"{results}\"]\nmode = \"tag\"\ntag = {{ key = \"erase-me\", value = \"lethe\" }}\n"
    ))
    .await;
    app.create_bucket(&inputs, false, false).await;
    app.create_bucket(&results, false, false).await;
    let mut outputs = Vec::new();
    for (member, n) in [("member-a", 0), ("member-a", 1), ("member-b", 0)] {
        let (input, output) = keys(member, n);
        app.insert_request(member, &object(&inputs, &input), &object(&results, &output))
            .await;
        app.put(&inputs, &input, "in").await;
        app.put_tagged(&results, &output, ("team", "ml")).await;
        outputs.push((member, input, output));
    }

    let id = app.erase("member-a").await;

    for (member, input, output) in &outputs {
        let tags = app.tags(&results, output).await;
        if *member == "member-a" {
            // Still there (the lifecycle rule removes it), tagged, its own
            // tag kept; the input bucket deletes as usual.
            assert!(app.exists(&results, output).await);
            assert_eq!(
                tags,
                vec![
                    ("erase-me".to_owned(), "lethe".to_owned()),
                    ("team".to_owned(), "ml".to_owned())
                ]
            );
            assert!(!app.exists(&inputs, input).await);
        } else {
            assert_eq!(tags, vec![("team".to_owned(), "ml".to_owned())]);
            assert!(app.exists(&inputs, input).await);
        }
    }
    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.objects_scheduled, 2);
    assert_eq!(status.objects_deleted, 2);
    let record = app.engine.report(id).await.unwrap();
    let scheduled = record
        .buckets
        .iter()
        .find(|b| b.bucket == results)
        .expect("the tagged bucket is in the record");
    assert_eq!(
        (scheduled.method.as_str(), scheduled.objects),
        ("scheduled", 2)
    );
    assert!(
        record.outcome.contains("scheduled for expiry"),
        "{}",
        record.outcome
    );
    let csv = lethe::report::record_csv(&record);
    assert!(
        csv.contains(&format!("bucket,{results},,scheduled,2")),
        "{csv}"
    );
}
