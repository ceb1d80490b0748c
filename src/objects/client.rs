//! Building the S3 client: the standard AWS chain for endpoint, region and
//! credentials, lethe's settings for path-style addressing and timeouts, and
//! one HTTPS stack (rustls with ring) passed explicitly, because the SDK is
//! built without its default client to keep one TLS stack in the binary.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
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
    let mut config =
        aws_sdk_s3::config::Builder::from(&shared).force_path_style(settings.force_path_style);
    if shared.region().is_none() {
        // A region is required to sign requests; S3-compatible servers
        // ignore it, so fall back to us-east-1 rather than fail.
        config = config.region(Region::new("us-east-1"));
    }
    let config = config.build();
    Client::from_conf(config)
}
