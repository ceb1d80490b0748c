//! Building the S3 client: the standard AWS chain for endpoint, region and
//! credentials, lethe's settings for path-style addressing and timeouts, and
//! one HTTPS stack (rustls with ring) passed explicitly, because the SDK is
//! built without its default client to keep one TLS stack in the binary.
//!
//! The rule this module keeps: every call gets exactly `s3.sdk_max_attempts`
//! attempts from the SDK's standard retry (jittered exponential backoff),
//! however many other calls are failing. The SDK's standard mode also has a
//! *retry quota*: a token bucket of 500 tokens, shared by every client of
//! the process in the same retry partition, that each retry draws from (5
//! tokens, 10 after a timeout or a dropped connection; a success gives
//! back 1, or the retry's tokens when a retry succeeds — but a permit held
//! by the client's one retry strategy is forgotten whenever a concurrent
//! call takes its place). Under a sustained error rate the bucket empties
//! and the SDK stops re-sending at all: a first-attempt 503 comes straight
//! back as a failed call. The quota exists to stop a fleet of clients from
//! retrying a struggling service into the ground; lethe bounds its own load
//! instead (its objects/s limit and a fixed number of calls in flight), and
//! backs off durably itself when calls keep failing. So lethe's client has
//! a retry partition of its own with an unlimited bucket: no quota, and no
//! sharing with other clients in the process.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::{RetryPartition, TokenBucket};
use aws_sdk_s3::config::{Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::S3Settings;

/// The client every S3 call of lethe goes through, production and tests
/// alike. `credentials` replaces the AWS credential chain when given (the
/// embedded demo and tests, which run their own S3 server).
pub async fn build_client(settings: &S3Settings, credentials: Option<Credentials>) -> Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // The loader's own region and credential chains use this HTTP client
    // too (a provider built on its own would find none and panic).
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.sdk_max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(settings.operation_timeout_secs.max(1)))
                .build(),
        )
        .load()
        .await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(settings.force_path_style)
        .retry_partition(
            RetryPartition::custom("lethe-s3")
                .token_bucket(TokenBucket::unlimited())
                .build(),
        );
    if shared.region().is_none() {
        // A region is required to sign requests; S3-compatible servers
        // ignore it, so fall back to us-east-1 rather than fail.
        config = config.region(Region::new("us-east-1"));
    }
    let config = config.build();
    Client::from_conf(config)
}
