//! Building the S3 client: the standard AWS chain for endpoint, region and
//! credentials, lethe's settings for path-style addressing and timeouts, and
//! one HTTPS stack (rustls with ring) passed explicitly, because the SDK is
//! built without its default client to keep one TLS stack in the binary.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use crate::config::S3Settings;

/// The client every S3 call of lethe goes through, production and tests alike.
pub async fn build_client(settings: &S3Settings) -> Client {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // A region is required to sign requests; S3-compatible servers ignore
    // it, so fall back to us-east-1 rather than fail when none is configured.
    let region = RegionProviderChain::default_provider().or_else("us-east-1");
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .region(region)
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
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(settings.force_path_style)
        .build();
    Client::from_conf(config)
}
