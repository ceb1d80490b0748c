//! Versioned listing is bounded by the member's keys, not by the bucket:
//! keys at the bucket root or in a directory everyone's files share are not
//! listed by a prefix that covers the whole bucket or directory (holding
//! every version in memory), but streamed, filtered, and finished key by
//! key once the shared prefix proves crowded.
//!
//! Against a purpose-built versioned S3 server (`harness::versioned`),
//! because a member's keys among 100,000 other objects is beyond moto.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use lethe::catalog::{ErasureMode, ExpiryTag};
use lethe::config::S3Settings;
use lethe::objects::{BucketView, ObjectStore};
use lethe::workflow::s3_erasure;

use crate::harness::versioned::{VersionedServer, Versions};

const BUCKET: &str = "lethe-versioned";

/// Scattered hex names, so that the member's keys sort among the others'.
fn scatter(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Regression (issue 11): the member's keys in `shared/` (among 100,000
/// other objects) shared no prefix beyond the directory, so one listing
/// walked all of `shared/`; the member's keys at the bucket root were
/// listed with the empty prefix, the whole bucket; and every version seen
/// was held in memory until the listing ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_keys_among_a_hundred_thousand_others_are_listed_and_erased_by_their_own() {
    let mut data = Versions::new();
    for i in 0..100_000 {
        data.insert(
            format!("shared/{:016x}.png", scatter(i)),
            vec![(format!("o{i}"), false)],
        );
    }
    for i in 0..2_000 {
        data.insert(
            format!("{:016x}.jpg", scatter(500_000 + i)),
            vec![(format!("r{i}"), false)],
        );
    }
    // The member: 20 keys in shared/, 5 at the root, each with three
    // versions and a delete marker on top.
    let mut member = Vec::new();
    for i in 0..25u64 {
        let name = format!("{:016x}-m.png", scatter(900_000 + i));
        member.push(if i < 20 {
            format!("shared/{name}")
        } else {
            name
        });
    }
    let mut expected = BTreeSet::new();
    for key in &member {
        let versions: Vec<(String, bool)> = vec![
            (format!("{key}#marker"), true),
            (format!("{key}#3"), false),
            (format!("{key}#2"), false),
            (format!("{key}#1"), false),
        ];
        for (id, marker) in &versions {
            expected.insert((key.clone(), id.clone(), *marker));
        }
        data.insert(key.clone(), versions);
    }
    let others = data.len() - member.len();
    let server = VersionedServer::start(BUCKET, data);
    let settings = S3Settings {
        endpoint_url: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        force_path_style: true,
        ..S3Settings::default()
    };
    let objects = ObjectStore::connect_with_credentials(&settings, server.credentials()).await;

    // Listing: exactly the member's versions, for a bounded amount of work.
    let listed = objects.versions_of(BUCKET, &member, None).await.unwrap();
    let listed: BTreeSet<(String, String, bool)> = listed
        .into_iter()
        .map(|v| (v.key, v.version_id, v.delete_marker))
        .collect();
    assert_eq!(listed, expected);
    let served = server.counters.entries_served.load(Ordering::SeqCst);
    let calls = server.counters.list_calls.load(Ordering::SeqCst);
    eprintln!(
        "listing {} keys: {calls} calls, {served} entries served",
        member.len()
    );
    assert!(
        served < 10_000,
        "{served} entries served to list {} keys among {others} objects",
        member.len()
    );
    assert!(calls <= 2 * member.len() as u64 + 10, "{calls} calls");

    // Erasing: every version and marker of the member's keys goes, nothing
    // else, and the work stays bounded.
    server.counters.entries_served.store(0, Ordering::SeqCst);
    let view = BucketView {
        name: BUCKET.into(),
        store: objects.clone(),
        versioned: true,
        mode: ErasureMode::Delete,
        tag: ExpiryTag::default(),
        list_prefix_depth: None,
    };
    let result = s3_erasure::erase(&view, &member).await.unwrap();
    assert_eq!(result.erased.len(), member.len());
    assert!(result.refused.is_empty());
    assert!(result.erased.iter().all(|e| e.versions == Some(4)));
    for key in &member {
        assert!(
            server.versions_of(key).is_empty(),
            "{key} still has versions"
        );
    }
    assert_eq!(server.key_count(), others, "no other object touched");
    assert!(
        s3_erasure::survivors(&view, &member)
            .await
            .unwrap()
            .is_empty()
    );
    let served = server.counters.entries_served.load(Ordering::SeqCst);
    assert!(
        served < 10_000,
        "{served} entries served to erase and verify"
    );
}
