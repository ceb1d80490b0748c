//! lethe's integration tests: one binary, against a real throwaway
//! PostgreSQL and a real S3-protocol server on loopback (see `harness`).

mod app;
mod harness;
mod harness_selftest;

mod catalog;
mod cli;
mod crash;
mod erasure;
mod faults;
mod load;
mod observability;
mod overdue;
mod shutdown;
mod submission;
mod windows;
mod workers;
