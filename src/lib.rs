//! lethe erases the personal data of members who have left a service: it
//! masks their rows in the service's database (PostgreSQL, or SQLite for the
//! embedded default) and deletes the files they produced in S3, as a
//! durable, step-function-style workflow that survives crashes, retries
//! what fails, and leaves a record.
//!
//! Start with [`Engine`]: everything the `lethe` command does is a call on
//! it. Configuration is a [`Config`] (a TOML file, then the environment);
//! where a member's data lives is a catalog directory ([`Catalog`], checked
//! by [`Engine::check_catalog`]).
//!
//! ```rust,no_run
//! use lethe::{Config, Engine, WorkerOptions};
//!
//! # async fn run() -> Result<(), lethe::Error> {
//! let config = Config::load(None)?; // ./lethe.toml, then the environment
//! let engine = Engine::connect(config).await?;
//! engine.migrate().await?;
//! let submission = engine.submit("member-00042", Some("ticket-7")).await?;
//! let status = engine.status(submission.id).await?;
//! println!("{status}");
//! // A worker (it runs until shut down; `once` stops when nothing is claimable).
//! engine.check().await?;
//! let worker = engine
//!     .worker(WorkerOptions {
//!         once: true,
//!         ..WorkerOptions::default()
//!     })
//!     .await?;
//! worker.run().await?;
//! # Ok(())
//! # }
//! ```
//!
//! With the default cargo feature `demo`, [`demo`] (`lethe demo`) and
//! [`example`] (the example services) come too; a program embedding lethe
//! can turn it off and compile neither (nor the demo's S3 server).

#![forbid(unsafe_code)]

// The modules: not part of the API (hidden from its documentation), public
// only so that lethe's own integration tests, benchmarks and binary can
// reach what they check. A program embedding lethe uses the re-exports
// below; the modules may change at any time.
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod catalog;
#[doc(hidden)]
pub mod catalog_draft;
#[doc(hidden)]
pub mod clock;
pub mod config;
#[doc(hidden)]
pub mod engine;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod failpoint;
#[doc(hidden)]
pub mod minimise;
#[doc(hidden)]
pub mod objects;
#[doc(hidden)]
pub mod pace;
#[doc(hidden)]
pub mod references;
pub mod report;
#[doc(hidden)]
pub mod retry;
#[doc(hidden)]
pub mod schedule;
#[cfg(feature = "serve")]
pub mod server;
pub mod status;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod worker;
#[doc(hidden)]
pub mod workflow;

#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod example;

pub use backend::Backend;
pub use catalog::init::Draft;
pub use catalog::{Catalog, CatalogError, CatalogReport};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigError};
pub use engine::{Engine, PruneSummary, explain_reference, preflight};
pub use error::Error;
pub use objects::preflight::Preflight;
pub use objects::{ObjectError, ObjectErrorKind};
pub use references::{Explanation, ObjectRef, Resolution};
pub use report::{DestructionRecord, Register};
pub use schedule::{WindowSpec, WindowState};
pub use status::RequestStatus;
pub use store::events::{Event, EventKind};
pub use store::manifest::{Anomaly, AnomalyKind};
pub use store::requests::{ListCursor, ListFilter, Provenance};
pub use store::{RequestRecord, StoreError, Submission};
pub use worker::progress::{Board, Entry as ProgressEntry};
pub use worker::{RunSummary, Worker, WorkerOptions};
pub use workflow::dry_run::DryRun;
pub use workflow::state::{Phase, State};

#[cfg(test)]
mod tests {
    /// The README's library example is the crate documentation's, which
    /// `cargo test` compiles as a doctest: the two cannot drift apart.
    #[test]
    fn the_readme_library_example_is_the_doctest() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```rust,no_run\n")
            .expect("the README has the example")
            + 15;
        let end = start + readme[start..].find("```").expect("the example ends");
        let from_readme = &readme[start..end];
        let from_docs: String = include_str!("lib.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//!"))
            .map(|line| line.strip_prefix(' ').unwrap_or(line))
            .skip_while(|line| *line != "```rust,no_run")
            .skip(1)
            .take_while(|line| *line != "```")
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(from_readme, from_docs);
    }
}
