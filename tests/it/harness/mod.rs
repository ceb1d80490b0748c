//! Test harness for lethe's integration tests.
//!
//! - [`postgres`]: one throwaway PostgreSQL cluster per test-binary process (or the server
//!   named by `LETHE_TEST_DATABASE_URL`), and a fresh database per test; a second one
//!   with fsync on, for the benchmarks, on request.
//! - [`s3`]: an in-process S3-protocol server per test, with request counters, fault
//!   injection, modelled latency (off unless set; the benchmarks set it) and
//!   stop/restart.
//! - [`browser`]: headless Chromium driven over the DevTools protocol.
//! - [`http`]: `lethe serve` in-process on a free port, API tokens of each role, and a
//!   plain HTTP client.
//! - [`moto`]: one moto S3 server per test-binary process, for versioning, tagging and
//!   object lock (which s3s-fs lacks); buckets unique per test.
//!
//! Its own tests live in `harness_selftest.rs`; run them with
//! `cargo test --test it harness`.

// A shared toolbox: each test module uses only some of it, and the rest (helpers and
// re-exports alike) would otherwise be reported as unused in this test binary.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod http;
pub mod http_load;
pub mod moto;
mod pg_cluster;
pub mod postgres;
pub mod s3;
mod s3_backend;
mod s3_faults;
mod s3_latency;
mod s3_listing;
pub mod versioned;

pub use moto::{Moto, moto};
pub use postgres::{
    TestDatabase, durable_server_url, fresh_database, fresh_durable_database, server_url,
    terminate_connections,
};
pub use s3::{Faults, Latency, RandomCounts, S3Counters, StrayDeleteError, TestS3};
