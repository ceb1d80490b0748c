//! lethe erases the personal data of members who have left a service: it
//! masks their rows in the service's database (PostgreSQL, or SQLite for the
//! embedded default) and deletes the files they produced in S3, as a
//! durable, step-function-style workflow that survives crashes, retries
//! what fails, and leaves a record.
//!
//! Start with [`Engine`]: `Engine::connect(config)`, then `submit`,
//! `status`, `list`, `retry`, `cancel`, and `worker(..).run()`. The layout
//! follows the workflow: [`workflow`] (the state machine and its phases),
//! [`store`] (lethe's tables, on either backend), [`catalog`] (where a member's data lives),
//! [`references`] (URLs to objects), [`objects`] (S3), [`worker`] (claims,
//! leases, retries), [`schedule`] (off-peak windows), [`pace`] (load
//! limits), [`clock`] (injected time), [`demo`] (`lethe demo`).

#![forbid(unsafe_code)]

pub mod backend;
pub mod catalog;
pub mod catalog_draft;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod error;
pub mod example;
pub mod failpoint;
pub mod minimise;
pub mod objects;
pub mod pace;
pub mod references;
pub mod report;
pub mod retry;
pub mod schedule;
pub mod status;
pub mod store;
pub mod worker;
pub mod workflow;

pub use config::Config;
pub use engine::Engine;
pub use error::Error;
pub use store::Submission;
pub use workflow::state::{Phase, State};
