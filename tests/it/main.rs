//! lethe's integration tests: one binary, against a real throwaway
//! PostgreSQL (or a SQLite file) and a real S3-protocol server on loopback
//! (see `harness`).
//!
//! Tests that exercise the store seam run on both backends: each is an
//! `async fn(Backend)`, listed in an [`on_both_backends!`] at the end of its
//! module, which makes `<module>::postgres::<name>` and
//! `<module>::sqlite::<name>`. The other tests run on PostgreSQL only; each
//! such module says why in its doc (README: "Backends and what the tests
//! cover").

/// Runs each named `async fn(Backend)` as two tests, on PostgreSQL and on
/// SQLite: `postgres::<name>` and `sqlite::<name>` in the calling module.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(lethe::store::Backend::Postgres).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(lethe::store::Backend::Sqlite).await
                }
            )*
        }
    };
}

mod anomalies;
mod app;
mod atelier;
mod atelier_checklist;
mod harness;
mod harness_selftest;
mod moto_app;
mod service;

mod browser;
mod catalog;
mod catalog_init;
mod cli;
mod crash;
mod demo;
mod erasure;
mod evidence;
mod faults;
mod features;
mod fencing;
mod http_api;
mod http_load;
mod http_pages;
mod listing_readback;
mod load;
mod locking;
mod manifest_writes;
mod null_keys;
mod observability;
mod overdue;
mod polling;
mod preflight;
mod random_schemas;
mod s3_completeness;
mod second_sweep;
mod serve_cli;
mod shapes;
mod shutdown;
mod stuck;
mod submission;
mod throttling;
mod versioned_listing;
mod windows;
mod workers;
