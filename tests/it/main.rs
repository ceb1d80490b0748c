//! lethe's integration tests: one binary, against a real throwaway
//! PostgreSQL and a real S3-protocol server on loopback (see `harness`).

mod anomalies;
mod app;
mod harness;
mod harness_selftest;
mod moto_app;

mod catalog;
mod cli;
mod crash;
mod erasure;
mod evidence;
mod faults;
mod features;
mod load;
mod observability;
mod overdue;
mod s3_completeness;
mod shapes;
mod shutdown;
mod submission;
mod windows;
mod workers;
