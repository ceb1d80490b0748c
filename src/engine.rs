//! The library's front door: everything the CLI does, a program can do here.
//!
//! [`Engine`] needs only the database (submit, status, list, retry, cancel,
//! report, prune);
//! [`Engine::worker`] also loads and checks the catalog against the database
//! and builds the S3 client, so a broken catalog stops a worker at start-up
//! with a clear error, not halfway through a member.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use chrono::NaiveDate;

use crate::catalog::{Catalog, CatalogReport, Plan};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::minimise::{Minimiser, SubjectHasher};
use crate::objects::preflight::{self, Preflight};
use crate::objects::{Buckets, ObjectStore};
use crate::pace::Pace;
use crate::references::Resolver;
use crate::report::{DestructionRecord, Register};
use crate::retry::RetryPolicy;
use crate::schedule::{Wakeups, WindowState};
use crate::status::{self, RequestStatus};
use crate::store::requests::{ListFilter, Provenance};
use crate::store::{RequestRecord, Store, Submission, manifest};
use crate::worker::{Worker, WorkerOptions};
use crate::workflow::Context;
use crate::workflow::dry_run::DryRun;

/// What [`Engine::prune`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneSummary {
    /// Requests whose manifest was pruned to counts.
    pub manifests_pruned: Vec<Uuid>,
    /// Request rows whose raw key was replaced by its hash.
    pub subjects_minimised: u64,
}

/// A connection to lethe's tables, with its configuration.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    config: Config,
    /// An S3 client to use instead of building one from the configuration.
    objects: Option<ObjectStore>,
    /// An injected clock for windows, pauses, rate limits and deadlines;
    /// `None` is the host's clock, with tokio-cron-scheduler waking workers
    /// at window edges.
    clock: Option<Arc<dyn Clock>>,
}

impl Engine {
    /// Connects to the configured database.
    pub async fn connect(config: Config) -> Result<Engine, Error> {
        let url = config.require_database_url()?.to_owned();
        // Two a request in hand (its work and its heartbeat), and room for
        // the HTTP server's handlers and the CLI's own reads. A cap, not a
        // floor: the pool opens connections only as they are needed.
        let connections = config.worker.concurrency * 2 + 12;
        let store = Store::connect(&url, connections).await?;
        Ok(Engine {
            store,
            config,
            objects: None,
            clock: None,
        })
    }

    /// Wraps an existing store (tests, embedding programs).
    pub fn with_store(store: Store, config: Config) -> Engine {
        Engine {
            store,
            config,
            objects: None,
            clock: None,
        }
    }

    /// Uses this clock instead of the host's for off-peak windows, the
    /// pause between batches, rate limits and overdue deadlines (tests,
    /// replays). Leases and retry times keep the database's clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Engine {
        self.clock = Some(clock);
        self
    }

    /// The clock windows, pauses, limits and deadlines are read on.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock))
    }

    /// The off-peak windows now; `None` when none are configured.
    pub fn window_state(&self) -> Result<Option<WindowState>, Error> {
        Ok(self
            .config
            .windows()?
            .map(|windows| windows.state_at(self.clock().now())))
    }

    /// Fills in `due_by` and `overdue` on a record.
    fn mark_due(&self, record: &mut RequestRecord) -> Result<(), Error> {
        status::mark_due(record, self.clock().now(), self.config.overdue_after()?);
        Ok(())
    }

    /// Uses this S3 client for workers instead of one built from the
    /// configuration and the AWS chain.
    pub fn with_objects(mut self, objects: ObjectStore) -> Engine {
        self.objects = Some(objects);
        self
    }

    /// The S3 client workers use.
    pub async fn objects(&self) -> ObjectStore {
        match &self.objects {
            Some(objects) => objects.clone(),
            None => ObjectStore::connect(&self.config.s3).await,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies lethe's migrations.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.store.migrate().await
    }

    /// Submits an erasure of `subject`. Returns at once; the erasure is
    /// durable from here on. A duplicate for an active subject is coalesced
    /// into it; a repeated idempotency key returns the first submission.
    pub async fn submit(
        &self,
        subject: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Submission, Error> {
        let provenance = Provenance {
            idempotency_key,
            ..Provenance::default()
        };
        self.submit_from(subject, provenance).await
    }

    /// [`Engine::submit`], naming who submits (an API token's name) and
    /// their own reference for the request.
    pub async fn submit_from(
        &self,
        subject: &str,
        provenance: Provenance<'_>,
    ) -> Result<Submission, Error> {
        self.store.require_schema().await?;
        let hash = self.hasher().map(|hasher| hasher.hash(subject));
        let submission = self
            .store
            .submit_matching(subject, provenance, hash.as_deref())
            .await?;
        match submission.coalesced_into {
            Some(active) => {
                tracing::info!(request_id = %submission.id, coalesced_into = %active, "submission coalesced")
            }
            None => {
                tracing::info!(request_id = %submission.id, replayed = submission.replayed, "submitted")
            }
        }
        Ok(submission)
    }

    /// A request's status, with its anomalies, and the request it was
    /// coalesced into when it is a duplicate.
    pub async fn status(&self, id: Uuid) -> Result<RequestStatus, Error> {
        self.store.require_schema().await?;
        let record = self.store.get(id).await?;
        self.describe(record).await
    }

    /// One request, marked overdue or not: [`Engine::status`] without its
    /// anomalies, the request it was folded into, and the window.
    pub async fn request(&self, id: Uuid) -> Result<RequestRecord, Error> {
        self.store.require_schema().await?;
        let mut record = self.store.get(id).await?;
        self.mark_due(&mut record)?;
        Ok(record)
    }

    /// Every request for a subject, newest first: active ones by the raw
    /// key, done ones by its keyed hash (when the secret is configured).
    pub async fn status_for_subject(&self, subject: &str) -> Result<Vec<RequestStatus>, Error> {
        self.store.require_schema().await?;
        let hash = self.hasher().map(|hasher| hasher.hash(subject));
        let mut statuses = Vec::new();
        for record in self.store.for_subject(subject, hash.as_deref()).await? {
            statuses.push(self.describe(record).await?);
        }
        Ok(statuses)
    }

    async fn describe(&self, mut record: RequestRecord) -> Result<RequestStatus, Error> {
        self.mark_due(&mut record)?;
        let coalesced_into = match record.coalesced_into {
            Some(target) => {
                let mut target = self.store.get(target).await?;
                self.mark_due(&mut target)?;
                Some(Box::new(target))
            }
            None => None,
        };
        let anomalies = manifest::anomalies(&self.store, record.id).await?;
        Ok(RequestStatus {
            record,
            coalesced_into,
            anomalies,
            window: self.window_state()?,
        })
    }

    /// Requests, newest first, each marked overdue or not.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<RequestRecord>, Error> {
        self.store.require_schema().await?;
        let mut records = self.store.list(filter).await?;
        for record in &mut records {
            self.mark_due(record)?;
        }
        Ok(records)
    }

    /// Unfinished requests past their deadline (`overdue_after`), newest
    /// first.
    pub async fn list_overdue(&self, filter: &ListFilter) -> Result<Vec<RequestRecord>, Error> {
        let deadline = self.config.overdue_after()?;
        let filter = ListFilter {
            overdue_before: Some(self.clock().now() - deadline),
            ..filter.clone()
        };
        self.list(&filter).await
    }

    /// Resumes a failed request from its checkpoint.
    pub async fn retry(&self, id: Uuid) -> Result<RequestRecord, Error> {
        let record = self.store.retry(id).await?;
        tracing::info!(request_id = %id, state = %record.state, "retried");
        Ok(record)
    }

    /// Cancels a request that has not started deleting objects.
    pub async fn cancel(&self, id: Uuid) -> Result<RequestRecord, Error> {
        let record = self.store.cancel(id).await?;
        tracing::info!(request_id = %id, "cancelled");
        Ok(record)
    }

    /// The destruction record of one request (no subject key, no object keys).
    pub async fn report(&self, id: Uuid) -> Result<DestructionRecord, Error> {
        self.store.require_schema().await?;
        crate::report::build(&self.store, id).await
    }

    /// The destruction records of every request done from `from` to `to`
    /// (days in UTC, both inclusive).
    pub async fn register(&self, from: NaiveDate, to: NaiveDate) -> Result<Register, Error> {
        self.store.require_schema().await?;
        crate::report::register(&self.store, from, to).await
    }

    /// Prunes the manifests of requests done more than
    /// `minimisation.manifest_retention_days` ago to counts, and, when the
    /// hash secret is configured, hashes the keys that done requests from
    /// before minimisation still hold.
    pub async fn prune(&self) -> Result<PruneSummary, Error> {
        self.store.require_schema().await?;
        let mut summary = PruneSummary::default();
        loop {
            let slice = crate::minimise::prune(
                &self.store,
                self.config.minimisation.manifest_retention_days,
            )
            .await?;
            if slice.is_empty() {
                break;
            }
            summary.manifests_pruned.extend(slice);
        }
        if let Ok(minimiser) = Minimiser::from_settings(&self.config.minimisation) {
            loop {
                let changed = minimiser.backfill(&self.store).await?;
                if changed == 0 {
                    break;
                }
                summary.subjects_minimised += changed;
            }
        }
        Ok(summary)
    }

    /// The subject hasher, when a secret is configured.
    fn hasher(&self) -> Option<SubjectHasher> {
        self.config
            .minimisation
            .subject_hash_secret
            .as_deref()
            .map(SubjectHasher::new)
    }

    /// The preflight (`lethe check`): whether the S3 credentials can do
    /// everything the catalog needs, bucket by bucket.
    pub async fn check(&self) -> Result<Preflight, Error> {
        run_preflight(&self.config, self.objects().await).await
    }

    /// Loads the catalog, checks it against the database, and compiles it.
    pub async fn compile_catalog(&self) -> Result<Plan, Error> {
        let catalog = Catalog::load(&self.config.catalog)?;
        let plan = self.compile(catalog).await?;
        for finding in &plan.findings {
            tracing::warn!(catalog = %plan.catalog.name, "{finding}");
        }
        Ok(plan)
    }

    /// Checks a catalog against this engine's database and compiles it:
    /// the live schema of the tables it names is read once, then compiled.
    pub async fn compile(&self, catalog: Catalog) -> Result<Plan, Error> {
        let live =
            crate::store::introspect::live_schema(&self.store, catalog.table_names()).await?;
        Ok(Plan::compile(catalog, &live)?)
    }

    /// `lethe catalog check`: the catalog checked against this database,
    /// with every problem (not just the first), the data checks run (each
    /// scans one column once), and what erasure will read and change.
    pub async fn check_catalog(&self) -> Result<CatalogReport, Error> {
        let dir = self.config.catalog.clone();
        let catalog = match Catalog::load(&dir) {
            Ok(catalog) => catalog,
            Err(err) => return Ok(CatalogReport::refused(dir, &err)),
        };
        let live =
            crate::store::introspect::live_schema(&self.store, catalog.table_names()).await?;
        let plan = match Plan::compile(catalog, &live) {
            Ok(plan) => plan,
            Err(err) => return Ok(CatalogReport::refused(dir, &err)),
        };
        let mut data = Vec::new();
        for check in &plan.data_checks {
            let count = crate::store::dynamic::fetch_count(&self.store, &check.sql, &[]).await?;
            data.push((check.clone(), count));
        }
        Ok(CatalogReport::of_plan(&plan, &data))
    }

    /// `lethe catalog init`: a draft catalog read off this database (and
    /// S3), each guess commented; reads only.
    pub async fn draft_catalog(&self, sample: i64) -> Result<crate::catalog::init::Draft, Error> {
        let objects = self.objects().await;
        crate::catalog_draft::draft(&self.store, &objects, sample).await
    }

    /// The workflow context a worker runs with. It refuses to build without
    /// the subject hash secret: a worker must be able to minimise at Done.
    pub async fn context(&self) -> Result<Context, Error> {
        let minimiser = Minimiser::from_settings(&self.config.minimisation)?;
        self.build_context(Some(minimiser)).await
    }

    async fn build_context(&self, minimiser: Option<Minimiser>) -> Result<Context, Error> {
        self.store.require_schema().await?;
        let plan = self.compile_catalog().await?;
        let resolver = Resolver::new(&plan.catalog.storage);
        let objects = self.objects().await;
        let buckets = Buckets::new(&plan.catalog.storage, objects.clone());
        Ok(Context {
            store: self.store.clone(),
            plan: Arc::new(plan),
            resolver: Arc::new(resolver),
            objects,
            buckets: Arc::new(buckets),
            minimiser: minimiser.map(Arc::new),
            settings: self.config.worker.clone(),
            pace: Pace::new(&self.config.worker, self.clock(), CancellationToken::new()),
        })
    }

    /// What erasing `subject` would touch, now: the finding-targets phase
    /// alone, with nothing written and nothing deleted (`lethe plan`).
    pub async fn dry_run(&self, subject: &str) -> Result<DryRun, Error> {
        // Reads only: no hash secret needed.
        let ctx = self.build_context(None).await?;
        crate::workflow::dry_run::run(&ctx, subject).await
    }

    /// A worker, ready to run, held to the off-peak windows unless the
    /// options say to ignore them.
    pub async fn worker(&self, options: WorkerOptions) -> Result<Worker, Error> {
        let ctx = self.context().await?;
        let windows = self.config.windows()?;
        let wakeups = match self.clock {
            Some(_) => Wakeups::Clock,
            None => Wakeups::Scheduler,
        };
        Ok(
            Worker::new(ctx, RetryPolicy::from_settings(&self.config.retry), options)
                .with_windows(windows, wakeups),
        )
    }
}

/// The preflight for a configuration, without a database: the catalog's
/// buckets checked with `objects` (`lethe check`).
pub async fn preflight(config: &Config) -> Result<Preflight, Error> {
    run_preflight(config, ObjectStore::connect(&config.s3).await).await
}

async fn run_preflight(config: &Config, objects: ObjectStore) -> Result<Preflight, Error> {
    let catalog = Catalog::load(&config.catalog)?;
    let buckets = Buckets::new(&catalog.storage, objects);
    Ok(preflight::check(&catalog.storage, &buckets).await)
}

/// How one reference (a URL, an `s3://` URI, or a `{bucket, key, url}` JSON
/// object) resolves through the catalog's storage facts, and why (`lethe
/// explain-ref`); None when it names no file. Needs only the catalog.
pub fn explain_reference(
    config: &Config,
    value: &str,
) -> Result<Option<crate::references::Explanation>, Error> {
    let catalog = Catalog::load(&config.catalog)?;
    let resolver = Resolver::new(&catalog.storage);
    let trimmed = value.trim();
    let value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|err| {
            Error::InvalidInput(format!(
                "the value starts with '{{' but is not valid JSON: {err}"
            ))
        })?
    } else {
        serde_json::Value::String(trimmed.to_owned())
    };
    Ok(resolver.explain_value(&value))
}
