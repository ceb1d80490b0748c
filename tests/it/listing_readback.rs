//! Verification reads an unversioned bucket back with one listing per
//! directory of the member's keys, not a HeadObject per key (issue 12), and
//! the listing is still proof: a key it leaves out is gone, a key it shows
//! is a survivor, a directory crowded with other objects falls back to
//! HeadObject for the keys it has not reached, and keys a listing could
//! alter (`+`, `%`, `a//b`) are always read back by HeadObject.
//!
//! PostgreSQL only: this is about S3.

use std::collections::BTreeSet;

use lethe::State;
use lethe::config::S3Settings;
use lethe::objects::{Credentials, ObjectStore};

use crate::app::TestApp;
use crate::harness::TestS3;

const BUCKET: &str = "readback";

async fn client(s3: &TestS3) -> ObjectStore {
    let settings = S3Settings {
        endpoint_url: Some(s3.endpoint()),
        region: Some(s3.region().to_owned()),
        force_path_style: true,
        ..S3Settings::default()
    };
    let credentials = Credentials::new(s3.access_key(), s3.secret_key(), None, None, "lethe-tests");
    ObjectStore::connect_with_credentials(&settings, credentials).await
}

fn keys(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| k.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_read_back_with_one_listing_and_survivors_are_named() {
    let s3 = TestS3::start().await;
    s3.create_bucket(BUCKET).await;
    // The member's directory: two of its five keys are still there, and an
    // object that is not the member's sits beside them.
    for key in ["m/1/b.png", "m/1/d 이미지.png", "m/1/other-members.png"] {
        s3.put(BUCKET, key, "x").await;
    }
    let objects = client(&s3).await;
    let counters = s3.counters();
    counters.reset();

    let wanted = keys(&[
        "m/1/a.png",
        "m/1/b.png",
        "m/1/c.png",
        "m/1/d 이미지.png",
        "m/1/e.png",
    ]);
    let present: BTreeSet<String> = objects
        .still_present(BUCKET, &wanted, None)
        .await
        .unwrap()
        .into_iter()
        .collect();

    assert_eq!(
        present,
        keys(&["m/1/b.png", "m/1/d 이미지.png"])
            .into_iter()
            .collect()
    );
    assert_eq!(
        counters.requests("ListObjectsV2"),
        1,
        "one listing answers for the directory"
    );
    assert_eq!(counters.head_object_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_directory_and_keys_a_listing_could_alter_fall_back_to_head() {
    let s3 = TestS3::start().await;
    s3.create_bucket(BUCKET).await;
    // 2,100 objects of other members sort before the member's keys in the
    // same directory: the listing gives up after two pages and the keys it
    // has not reached are read back one by one.
    let crowd = s3.data_dir().join(BUCKET).join("shared");
    std::fs::create_dir_all(&crowd).unwrap();
    for i in 0..2_100 {
        std::fs::write(crowd.join(format!("a-{i:05}.png")), "x").unwrap();
    }
    for key in [
        "shared/m-2.png",
        "shared/z-3.png",
        "odd/1+1.png",
        "odd/100%.png",
    ] {
        s3.put(BUCKET, key, "x").await;
    }
    let objects = client(&s3).await;
    let counters = s3.counters();
    counters.reset();

    let wanted = keys(&[
        "shared/m-1.png",
        "shared/m-2.png",
        "shared/z-3.png",
        "odd/1+1.png",
        "odd/100%.png",
        "odd/1 1.png",
        "solo/alone.png",
    ]);
    let present: BTreeSet<String> = objects
        .still_present(BUCKET, &wanted, None)
        .await
        .unwrap()
        .into_iter()
        .collect();

    assert_eq!(
        present,
        keys(&[
            "shared/m-2.png",
            "shared/z-3.png",
            "odd/1+1.png",
            "odd/100%.png"
        ])
        .into_iter()
        .collect()
    );
    // The crowded directory: two pages, then HEAD for its three keys; the
    // `+` and `%` keys and the key alone in its directory: HEAD; "odd/1 1.png"
    // is alone among the listable keys of its directory: HEAD too.
    assert_eq!(counters.requests("ListObjectsV2"), 2);
    assert_eq!(counters.head_object_calls(), 3 + 2 + 1 + 1);
    assert_eq!(
        s3.keys(BUCKET).await.len(),
        2_100 + 4,
        "reading back touched nothing"
    );
}

/// End to end: an object the server says it deleted but kept is caught by
/// the listing verification; the other member is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_by_listing_catches_an_object_the_server_kept() {
    let app = TestApp::start().await;
    let loaded = app.load("member", 2, 12).await;
    let target = &loaded.members[0];
    // An object in a directory with another of the member's objects, so the
    // listing answers for it.
    let kept = target
        .objects
        .iter()
        .find(|object| {
            let directory = &object.key[..object.key.rfind('/').unwrap_or(0)];
            !object.key.contains(['+', '%'])
                && target
                    .objects
                    .iter()
                    .filter(|o| o.bucket == object.bucket && o.key.starts_with(directory))
                    .count()
                    >= 2
        })
        .expect("the example puts several of a request's files in one directory")
        .clone();
    app.s3.faults().pretend_delete_of_key(&kept.key);
    app.s3.counters().reset();
    let id = app.submit(&target.key).await;
    app.run_worker_once().await;

    let status = app.engine.status(id).await.unwrap().record;
    assert_eq!(status.state, State::Failed);
    let error = status.last_error.unwrap();
    assert!(
        error.contains("still there after being erased twice"),
        "{error}"
    );
    assert!(app.s3.exists(&kept.bucket, &kept.key).await);
    assert!(app.s3.counters().requests("ListObjectsV2") > 0);

    app.s3.faults().clear();
    app.engine.retry(id).await.unwrap();
    app.run_worker_once().await;
    assert_eq!(app.state_of(id).await, State::Done);
    app.assert_objects_gone(target).await;
    app.assert_objects_present(&loaded.members[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_directory_is_listed_in_slices_side_by_side() {
    let s3 = TestS3::start().await;
    s3.create_bucket(BUCKET).await;
    // A member's directory of 2,500 files, of which every seventh is still
    // there; another member's directory beside it.
    let wanted: Vec<String> = (0..2_500).map(|i| format!("m/1/{i:05}.png")).collect();
    let directory = s3.data_dir().join(BUCKET).join("m");
    for sub in ["1", "2"] {
        std::fs::create_dir_all(directory.join(sub)).unwrap();
    }
    let mut expected = BTreeSet::new();
    for (i, key) in wanted.iter().enumerate() {
        if i % 7 == 0 {
            std::fs::write(s3.data_dir().join(BUCKET).join(key), "x").unwrap();
            expected.insert(key.clone());
        }
        std::fs::write(directory.join("2").join(format!("{i:05}.png")), "x").unwrap();
    }
    let objects = client(&s3).await;
    let counters = s3.counters();
    counters.reset();

    let present: BTreeSet<String> = objects
        .still_present(BUCKET, &wanted, Some(2))
        .await
        .unwrap()
        .into_iter()
        .collect();

    assert_eq!(present, expected);
    assert_eq!(
        counters.requests("ListObjectsV2"),
        3,
        "three slices of at most 1,000 keys, each one page"
    );
    assert_eq!(counters.head_object_calls(), 0);
}
