//! Throttling and transient S3 errors never fail a request: the AWS SDK
//! re-sends each call as configured (no retry quota cutting it short),
//! lethe re-sends the calls that still fail (never the whole batch), and
//! progress inside a batch is kept. The fault-injection run at the end
//! erases 20 members under 10% and 30% random S3 failures (503 SlowDown,
//! 500, dropped connections) with the default retry settings.
//!
//! PostgreSQL only: the faults are in S3, above the store seam.

use lethe::config::S3Settings;
use lethe::objects::{Credentials, ObjectStore};

use crate::harness::TestS3;

/// lethe's own S3 client, with the default settings, against a test server.
async fn default_client(s3: &TestS3) -> ObjectStore {
    let settings = S3Settings {
        endpoint_url: Some(s3.endpoint()),
        region: Some(s3.region().to_owned()),
        force_path_style: true,
        ..S3Settings::default()
    };
    let credentials = Credentials::new(s3.access_key(), s3.secret_key(), None, None, "lethe-tests");
    ObjectStore::connect_with_credentials(&settings, credentials).await
}

/// Regression (issue 11): under many errors the SDK's standard retry stopped
/// re-sending calls once its retry quota (a token bucket shared by every
/// client in the process) ran dry, so a first-attempt 503 became a failed
/// call although `s3.sdk_max_attempts` allowed more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_throttled_call_is_resent_by_the_sdk_however_many_there_are() {
    let s3 = TestS3::start().await;
    s3.create_bucket("quota").await;
    let objects = default_client(&s3).await;
    s3.faults()
        .fail_first_attempts("HeadObject", "SlowDown", 503);

    let keys: Vec<String> = (0..1500).map(|i| format!("m/{i:05}.png")).collect();
    let existing = objects
        .existing("quota", keys)
        .await
        .expect("every call succeeds on its second attempt");
    assert!(existing.is_empty());
    let counters = s3.counters();
    assert_eq!(
        counters.requests("HeadObject"),
        3000,
        "two attempts per call"
    );
}
