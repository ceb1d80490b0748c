//! Tests of the test harness itself: if these fail, no other integration test result
//! means anything. Run with `cargo test --test it harness`.
//!
//! PostgreSQL only: it tests the throwaway cluster and the S3 servers.

use std::time::{Duration, Instant};

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::harness::{
    TestS3, fresh_database, fresh_durable_database, server_url, terminate_connections,
};

/// Keys that have broken S3 tooling before: non-ASCII, spaces, `+`, and an empty
/// path segment.
const AWKWARD_KEYS: [&str; 4] = ["사진/얼굴 1.png", "with space.txt", "a+b.txt", "a//b"];
const BUCKET: &str = "harness-selftest";

fn delete_of(keys: &[&str]) -> Delete {
    let objects = keys
        .iter()
        .map(|key| {
            ObjectIdentifier::builder()
                .key(*key)
                .build()
                .expect("key is set")
        })
        .collect();
    Delete::builder()
        .set_objects(Some(objects))
        .build()
        .expect("objects are set")
}

async fn started_with_bucket() -> TestS3 {
    let started = Instant::now();
    let s3 = TestS3::start().await;
    s3.create_bucket(BUCKET).await;
    eprintln!(
        "S3 server started and bucket created in {:?}",
        started.elapsed()
    );
    s3
}

#[tokio::test]
async fn harness_fresh_databases_are_distinct() {
    let started = Instant::now();
    let a = fresh_database().await;
    eprintln!(
        "first fresh_database (may include cluster start): {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let b = fresh_database().await;
    eprintln!("second fresh_database: {:?}", started.elapsed());

    assert_ne!(a.name, b.name);
    assert_ne!(a.url, b.url);
    sqlx::query("CREATE TABLE only_in_a (id int)")
        .execute(&a.pool)
        .await
        .expect("creating a table in a fresh database");

    let lookup = "SELECT to_regclass('public.only_in_a')::text";
    let in_a: Option<String> = sqlx::query_scalar(lookup)
        .fetch_one(&a.pool)
        .await
        .expect("lookup in a");
    let in_b: Option<String> = sqlx::query_scalar(lookup)
        .fetch_one(&b.pool)
        .await
        .expect("lookup in b");
    assert_eq!(in_a.as_deref(), Some("only_in_a"));
    assert_eq!(
        in_b, None,
        "a table created in {} leaked into {}",
        a.name, b.name
    );

    let current: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&b.pool)
        .await
        .expect("current_database()");
    assert_eq!(
        current, b.name,
        "the pool must be connected to the database it names"
    );
}

#[tokio::test]
async fn harness_terminate_connections_replaces_the_backend() {
    let db = fresh_database().await;
    let pid_query = "SELECT pg_backend_pid()";
    let before: i32 = sqlx::query_scalar(pid_query)
        .fetch_one(&db.pool)
        .await
        .expect("backend pid");

    let terminated = terminate_connections(&db.name).await;
    assert!(
        terminated >= 1,
        "the pool's idle connection should have been terminated"
    );

    // The pool may hand out the dead connection once; a caller retrying once must then
    // land on a new backend.
    let after: i32 = match sqlx::query_scalar(pid_query).fetch_one(&db.pool).await {
        Ok(pid) => pid,
        Err(first) => {
            eprintln!("first query after termination failed as expected: {first}");
            sqlx::query_scalar(pid_query)
                .fetch_one(&db.pool)
                .await
                .expect("reconnecting after termination")
        }
    };
    assert_ne!(before, after, "the backend should have been replaced");
}

#[tokio::test]
async fn harness_s3_round_trip_with_awkward_keys() {
    let s3 = started_with_bucket().await;
    for key in AWKWARD_KEYS {
        s3.put(BUCKET, key, format!("content of {key}")).await;
        assert!(
            s3.exists(BUCKET, key).await,
            "{key:?} should exist after PutObject"
        );
    }

    let client = s3.client().await;
    let got = client
        .get_object()
        .bucket(BUCKET)
        .key(AWKWARD_KEYS[0])
        .send()
        .await
        .expect("GetObject");
    let body = got
        .body
        .collect()
        .await
        .expect("reading the body")
        .into_bytes();
    assert_eq!(
        &body[..],
        format!("content of {}", AWKWARD_KEYS[0]).as_bytes()
    );
    assert_eq!(s3.counters().get_object_calls(), 1);

    // Listing is informative only (see the s3 module doc); report what came back.
    let listed = s3.keys(BUCKET).await;
    eprintln!("ListObjectsV2 returned {listed:?}");
    assert_eq!(
        listed.len(),
        AWKWARD_KEYS.len(),
        "one listing entry per object"
    );

    let counters = s3.counters();
    let output = client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&AWKWARD_KEYS[..3]))
        .send()
        .await
        .expect("DeleteObjects of three keys");
    assert!(
        output.errors().is_empty(),
        "unexpected per-key errors: {:?}",
        output.errors()
    );
    assert_eq!(counters.delete_objects_calls(), 1);
    assert_eq!(counters.keys_requested_for_deletion(), 3);
    let expected: Vec<(String, String)> = AWKWARD_KEYS[..3]
        .iter()
        .map(|key| (BUCKET.to_owned(), (*key).to_owned()))
        .collect();
    assert_eq!(counters.deletion_requests(), expected);

    client
        .delete_object()
        .bucket(BUCKET)
        .key(AWKWARD_KEYS[3])
        .send()
        .await
        .expect("DeleteObject");
    assert_eq!(counters.delete_object_calls(), 1);
    assert_eq!(counters.keys_requested_for_deletion(), 4);

    let heads_before = counters.head_object_calls();
    for key in AWKWARD_KEYS {
        assert!(!s3.exists(BUCKET, key).await, "{key:?} should be gone");
    }
    assert_eq!(counters.head_object_calls(), heads_before + 4);
}

#[tokio::test]
async fn harness_injected_access_denied_is_permanent_until_cleared() {
    let s3 = started_with_bucket().await;
    s3.put(BUCKET, "kept", "x").await;
    let client = s3.client().await;
    let faults = s3.faults();
    faults.fail_op("DeleteObjects", "AccessDenied", 403);

    let err = client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&["kept"]))
        .send()
        .await
        .expect_err("DeleteObjects must fail while the fault is set");
    let service_error = err
        .as_service_error()
        .expect("an injected fault is a service error");
    assert_eq!(service_error.code(), Some("AccessDenied"));
    assert_eq!(
        s3.counters().requests("DeleteObjects"),
        1,
        "403 must not be retried"
    );
    assert_eq!(
        s3.counters().delete_objects_calls(),
        0,
        "a failed call never reaches storage"
    );
    assert!(s3.exists(BUCKET, "kept").await);

    faults.clear();
    client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&["kept"]))
        .send()
        .await
        .expect("DeleteObjects works again after clear()");
    assert!(!s3.exists(BUCKET, "kept").await);
    assert_eq!(faults.injected(), 1);
}

#[tokio::test]
async fn harness_transient_faults_are_absorbed_by_sdk_retries() {
    let s3 = started_with_bucket().await;
    let faults = s3.faults();

    // Two 503s then success: within the test client's three attempts.
    faults.fail_op_times("PutObject", "SlowDown", 503, 2);
    s3.put(BUCKET, "retried", "x").await;
    assert_eq!(s3.counters().requests("PutObject"), 3);

    faults.clear();
    faults.slow_down_every(3);
    for i in 0..9 {
        s3.put(BUCKET, &format!("k{i}"), "x").await;
    }
    assert!(
        faults.injected() >= 2 + 3,
        "every third request should have been failed"
    );
    faults.clear();
    for i in 0..9 {
        assert!(s3.exists(BUCKET, &format!("k{i}")).await);
    }
}

#[tokio::test]
async fn harness_per_key_delete_errors_leave_the_object() {
    let s3 = started_with_bucket().await;
    s3.put(BUCKET, "stuck", "x").await;
    s3.put(BUCKET, "goes", "x").await;
    s3.faults().fail_delete_of_key("stuck", "InternalError");

    let output = s3
        .client()
        .await
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&["stuck", "goes"]))
        .send()
        .await
        .expect("a partial failure is still HTTP 200");
    let errors: Vec<_> = output
        .errors()
        .iter()
        .map(|e| (e.key(), e.code()))
        .collect();
    assert_eq!(errors, vec![(Some("stuck"), Some("InternalError"))]);
    assert!(s3.exists(BUCKET, "stuck").await);
    assert!(!s3.exists(BUCKET, "goes").await);
}

#[tokio::test]
async fn harness_stop_makes_s3_unreachable_and_restart_restores_it() {
    let s3 = started_with_bucket().await;
    s3.put(BUCKET, "사진/얼굴 1.png", "x").await;
    // One client throughout, so a pooled keep-alive connection is exercised too.
    let client = s3.client().await;
    let head = || {
        client
            .head_object()
            .bucket(BUCKET)
            .key("사진/얼굴 1.png")
            .send()
    };
    head().await.expect("HeadObject before stop");

    let started = Instant::now();
    s3.stop().await;
    eprintln!("stop took {:?}", started.elapsed());
    let err = head()
        .await
        .expect_err("HeadObject must fail while stopped");
    assert!(
        matches!(err, SdkError::DispatchFailure(_)),
        "expected a connection-level failure, got {err:?}"
    );
    s3.stop().await; // Idempotent.

    let started = Instant::now();
    s3.restart().await;
    eprintln!("restart took {:?}", started.elapsed());
    head().await.expect("HeadObject after restart");
    assert!(
        s3.exists(BUCKET, "사진/얼굴 1.png").await,
        "data survives a restart"
    );
}

/// The server must not depend on the test's runtime: tests block their thread while a
/// `lethe` child process talks to S3. On a shared current-thread runtime this deadlocks.
#[tokio::test]
async fn harness_s3_serves_while_the_test_thread_blocks() {
    let s3 = started_with_bucket().await;
    s3.put(BUCKET, "seen-from-another-runtime", "x").await;
    let endpoint_reachable = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a second runtime");
            rt.block_on(s3.exists(BUCKET, "seen-from-another-runtime"))
        });
        // Joining blocks this test's only runtime thread for the whole request.
        worker.join().expect("the request thread does not panic")
    });
    assert!(endpoint_reachable);
}

/// The modelled latency: each call pays the per-call cost, a DeleteObjects its per-key
/// cost on top, calls in flight at once wait at once (a sleep, not a blocked thread),
/// and turned off the server is back at loopback speed.
#[tokio::test]
async fn harness_latency_charges_per_call_and_per_key_and_calls_overlap() {
    let s3 = started_with_bucket().await;
    s3.put(BUCKET, "k", "x").await;
    let latency = s3.latency();
    latency.set(Duration::from_millis(100), Duration::from_millis(1));
    let client = s3.client().await;

    let started = Instant::now();
    assert!(s3.exists(BUCKET, "k").await);
    let head = started.elapsed();
    assert!(head >= Duration::from_millis(100), "one HEAD took {head:?}");

    let keys: Vec<String> = (0..200).map(|i| format!("gone-{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let started = Instant::now();
    client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&keys))
        .send()
        .await
        .expect("DeleteObjects");
    let delete = started.elapsed();
    assert!(
        delete >= Duration::from_millis(300),
        "a DeleteObjects of 200 keys took {delete:?} (100 ms + 200 x 1 ms expected)"
    );

    let started = Instant::now();
    let mut heads = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let client = client.clone();
        heads.spawn(async move { client.head_object().bucket(BUCKET).key("k").send().await });
    }
    while let Some(head) = heads.join_next().await {
        head.expect("the HEAD task does not panic")
            .expect("HeadObject");
    }
    let concurrent = started.elapsed();
    assert!(
        concurrent < Duration::from_millis(800),
        "16 concurrent HEADs took {concurrent:?}: the latency must not serialise calls"
    );

    latency.off();
    let started = Instant::now();
    assert!(s3.exists(BUCKET, "k").await);
    assert!(started.elapsed() < Duration::from_millis(100));
}

/// The durable cluster is a second one, with PostgreSQL's durable defaults; the
/// suite's own keeps fsync off.
#[tokio::test]
async fn harness_durable_cluster_runs_with_fsync_on() {
    if std::env::var(crate::harness::postgres::EXTERNAL_SERVER_ENV).is_ok_and(|v| !v.is_empty()) {
        eprintln!("an external server is in use: its settings are its own");
        return;
    }
    let durable = fresh_durable_database().await;
    let fast = fresh_database().await;
    for (db, fsync, commit) in [(&durable, "on", "on"), (&fast, "off", "off")] {
        let shown: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(&db.pool)
            .await
            .expect("SHOW fsync");
        assert_eq!(shown, fsync, "{}", db.url);
        let shown: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&db.pool)
            .await
            .expect("SHOW synchronous_commit");
        assert_eq!(shown, commit, "{}", db.url);
    }
    assert_ne!(
        durable.url.split('/').nth(2),
        server_url().split('/').nth(2),
        "the durable cluster is a server of its own"
    );
}

/// Batched deletes remove exactly the keys named (awkward ones included; a missing key
/// is deleted too) and leave the rest, as s3s-fs's own DeleteObjects does.
#[tokio::test]
async fn harness_batched_deletes_remove_exactly_the_keys_named() {
    let s3 = started_with_bucket().await;
    s3.latency().set_batched_deletes(true);
    for key in AWKWARD_KEYS.iter().chain(["kept.txt"].iter()) {
        s3.put(BUCKET, key, "x").await;
    }
    let named: Vec<&str> = AWKWARD_KEYS
        .iter()
        .copied()
        .chain(["never-there"])
        .collect();
    let output = s3
        .client()
        .await
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete_of(&named))
        .send()
        .await
        .expect("DeleteObjects");
    assert!(output.errors().is_empty(), "{:?}", output.errors());
    for key in AWKWARD_KEYS {
        assert!(!s3.exists(BUCKET, key).await, "{key} survived");
    }
    assert!(s3.exists(BUCKET, "kept.txt").await);
    assert_eq!(s3.counters().delete_objects_calls(), 1);
}

/// Every page of every listing, as (keys, truncated, next token).
async fn pages_of(
    s3: &TestS3,
    prefix: &str,
    start_after: Option<&str>,
    max_keys: i32,
) -> Vec<(Vec<String>, bool, Option<String>)> {
    let client = s3.client().await;
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let output = client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(token.clone())
            .max_keys(max_keys)
            .send()
            .await
            .expect("ListObjectsV2");
        let keys = output
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        let truncated = output.is_truncated() == Some(true);
        token = output.next_continuation_token().map(str::to_owned);
        pages.push((keys, truncated, token.clone()));
        if !truncated {
            return pages;
        }
    }
}

/// The benchmarks' indexed listing (the prefix's directory walked, not the bucket)
/// answers every listing page for page as s3s-fs's own does: prefixes ending inside a
/// name, at a `/`, at the root, awkward keys, StartAfter and continuation.
#[tokio::test]
async fn harness_indexed_listing_answers_as_s3s_fs_does() {
    let s3 = started_with_bucket().await;
    let mut keys: Vec<String> = AWKWARD_KEYS.iter().map(|k| (*k).to_owned()).collect();
    for n in 0..25 {
        keys.push(format!("m/1/{n:02}.png"));
        keys.push(format!("m/10/{n:02}.png"));
        keys.push(format!("m/2/x/{n:02}.png"));
    }
    keys.push("m1.txt".to_owned());
    for key in &keys {
        s3.put(BUCKET, key, "x").await;
    }
    let listings = [
        ("", None, 1000),
        ("m/1", None, 7),
        ("m/1/", Some("m/1/05.png"), 10),
        ("m/2/", None, 1000),
        ("m/2/x/1", None, 3),
        ("m", None, 20),
        ("사진/", None, 1000),
        ("a/", None, 1000),
        ("missing/dir/", None, 1000),
        ("m/", Some("m/10/24.png"), 4),
    ];
    for (prefix, after, max) in listings {
        s3.latency().set_indexed_listing(false);
        let walked = pages_of(&s3, prefix, after, max).await;
        s3.latency().set_indexed_listing(true);
        let indexed = pages_of(&s3, prefix, after, max).await;
        assert_eq!(
            indexed, walked,
            "prefix {prefix:?}, after {after:?}, max {max}"
        );
    }
    let all = pages_of(&s3, "", None, 1000).await;
    assert_eq!(all[0].0.len(), keys.len(), "{all:?}");
}
