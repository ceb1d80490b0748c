//! The preflight (`lethe check`, and `lethe worker` at start): the S3
//! credentials are checked against what the catalog needs, bucket by
//! bucket, and a missing permission is named. On AWS, a caller without
//! `s3:ListBucket` gets 403 instead of 404 for a missing key; the test
//! server does the same when told to (`Faults::deny_missing_keys`).
//!
//! PostgreSQL only: it is about S3, above the store seam.

use lethe::State;

use crate::app::{TestApp, text};
use crate::moto_app::MotoApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_when_the_credentials_can_do_everything() {
    let app = TestApp::start().await;
    let out = app.run_lethe(&["check"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("ok      lethe-example-inputs (unversioned, delete)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok      lethe-example-results (unversioned, delete)"),
        "{stdout}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    // It deleted nothing of anyone's.
    assert_eq!(app.s3.counters().keys_requested_for_deletion(), 0);
}

/// Regression (issue 11): without `s3:ListBucket`, AWS answers HeadObject
/// and GetObject on a missing key with 403, so verification failed every
/// deleted object and a missing JSON manifest was a permanent error —
/// after objects had already been deleted. Now `lethe check` names the
/// permission, and a worker refuses to start before touching anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_list_bucket_check_names_it_and_the_worker_does_not_start() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 1, 5).await;
    let id = app.submit(&loaded.members[0].key).await;
    app.s3.faults().deny_missing_keys();

    let out = app.run_lethe(&["check"]).await;
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "bucket \"lethe-example-results\": missing permission s3:ListBucket: HeadObject of a key \
             that does not exist answered 403, not 404"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("PROBLEM lethe-example-inputs"), "{stdout}");
    assert!(stderr.contains("the preflight found"), "{stderr}");

    let out = app.run_lethe(&["worker", "--once"]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not starting"), "{stderr}");
    assert!(
        stderr.contains("missing permission s3:ListBucket"),
        "{stderr}"
    );
    // Nothing was touched.
    assert_eq!(app.state_of(id).await, State::Requested);
    assert_eq!(app.s3.counters().keys_requested_for_deletion(), 0);
    app.s3.faults().clear();
    app.assert_objects_present(&loaded.members[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_each_missing_permission() {
    let app = TestApp::start().await;
    for (op, permission) in [
        ("GetBucketVersioning", "s3:GetBucketVersioning"),
        ("DeleteObjects", "s3:DeleteObject"),
        ("GetObject", "s3:ListBucket (and s3:GetObject)"),
    ] {
        app.s3.faults().clear();
        app.s3.faults().fail_op(op, "AccessDenied", 403);
        let report = app.engine.check().await.unwrap();
        assert!(
            !report.passed() && report.permission_missing(),
            "{op}: {report}"
        );
        let problems = report.problems().join("\n");
        assert!(
            problems.contains(&format!("missing permission {permission}:")),
            "{op}: {problems}"
        );
        assert_eq!(
            report.problems().len(),
            2,
            "one per bucket, for {op}: {problems}"
        );
    }
    app.s3.faults().clear();
    assert!(app.engine.check().await.unwrap().passed());
}

/// Versioned and tag-and-expire buckets (moto): the versioning and tagging
/// checks pass, and the delete marker the delete check leaves in the
/// versioned bucket is removed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_covers_versioned_and_tag_mode_buckets_and_leaves_nothing_behind() {
    let moto = crate::harness::moto();
    let (versioned, tagged) = (moto.bucket("pf-versioned"), moto.bucket("pf-tagged"));
    let app = MotoApp::start(&format!(
        "buckets = [{versioned:?}, {tagged:?}]\n\
         [storage.bucket.{tagged:?}]\nmode = \"tag\"\n"
    ))
    .await;
    app.create_bucket(&versioned, true, false).await;
    app.create_bucket(&tagged, false, false).await;

    let report = app.engine.check().await.unwrap();
    assert!(report.passed(), "{report}");
    let text = report.to_string();
    assert!(
        text.contains(&format!("{versioned} (versioned, delete)")),
        "{text}"
    );
    // (moto's answer for a never-versioned bucket reads as versioned, which
    // erases correctly either way.)
    assert!(text.contains(&format!("{tagged} (")), "{text}");
    assert!(text.contains(", tag-and-expire)"), "{text}");
    let left = app
        .s3
        .list_object_versions()
        .bucket(&versioned)
        .prefix("lethe-preflight/")
        .send()
        .await
        .unwrap();
    assert!(
        left.versions().is_empty() && left.delete_markers().is_empty(),
        "the check left {:?} {:?}",
        left.versions(),
        left.delete_markers()
    );
}
