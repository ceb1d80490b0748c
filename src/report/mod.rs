//! The destruction record (ISMS-P 파기 관리대장): what was erased for one
//! request, how, when, and how it was verified — and the period register,
//! the records of every request done in a period.
//!
//! The rule this module keeps: a record holds no personal data. It names the
//! request, the submitter's reference, tables and buckets, counts, methods,
//! times and anomalies (whose details name tables and buckets, never keys);
//! it never reads the subject key, and never an object key (keys often embed
//! member ids). It is built from the counts written at Done, so it still
//! works after the manifest is pruned.

mod csv;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::Error;
use crate::store::manifest::{self, Anomaly, AnomalyKind};
use crate::store::record::{self, Count};
use crate::store::{RequestRecord, Store};
use crate::workflow::state::{Phase, State};

pub use csv::{record_csv, register_csv};

/// Names the format, so that a reader can tell versions apart.
pub const RECORD_FORMAT: &str = "lethe destruction record 1";

/// One request's destruction record.
#[derive(Debug, Clone, Serialize)]
pub struct DestructionRecord {
    pub format: &'static str,
    pub request_id: Uuid,
    /// The submitter's reference (the idempotency key), if any.
    pub external_reference: Option<String>,
    pub state: State,
    /// One line: destroyed, destroyed with anomalies, scheduled for expiry,
    /// or where the request stands.
    pub outcome: String,
    /// For a duplicate submission: the request that did the work.
    pub coalesced_into: Option<Uuid>,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub phases: Vec<PhaseTime>,
    pub tables: Vec<TableCount>,
    pub buckets: Vec<BucketCount>,
    /// References to objects outside the service's buckets: never deleted.
    pub foreign_references: i64,
    pub anomaly_count: i64,
    pub anomalies: Vec<Anomaly>,
    pub verification: Verification,
    pub minimisation: Minimisation,
    pub engine: EngineVersion,
    pub generated_at: DateTime<Utc>,
}

/// When one phase ran.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    pub phase: Phase,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub seconds: Option<f64>,
}

/// Rows of one table erased by one method: masked, deleted, kept (left
/// unmasked by the locked-object policy), or pending.
#[derive(Debug, Clone, Serialize)]
pub struct TableCount {
    pub table: String,
    pub method: String,
    pub rows: i64,
}

/// Objects of one bucket erased (or retained) by one method: deleted,
/// scheduled (for expiry), retained: protected | locked | denied, or pending.
#[derive(Debug, Clone, Serialize)]
pub struct BucketCount {
    pub bucket: String,
    /// For a replica bucket: the bucket it replicates.
    pub replica_of: Option<String>,
    pub method: String,
    pub objects: i64,
    /// Versions and delete markers removed (or versions tagged), in a
    /// versioned bucket.
    pub versions: Option<i64>,
}

/// What the read-back found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// passed, pending, or failed.
    pub result: String,
    pub objects_checked: i64,
    /// Objects found still there after erasure, erased again and confirmed.
    pub survivors_erased_again: i64,
    pub rows_checked: i64,
    pub verified_at: Option<DateTime<Utc>>,
    /// How objects were read back.
    pub method: &'static str,
    /// What was checked, one sentence per check, and what was not: each
    /// true of this request.
    pub checks: Vec<String>,
    /// Anomalies that could hide the member's data (a reference that could
    /// not be followed, a row that could not be proven theirs): the
    /// read-back proves the manifest gone, not what was never in it.
    pub anomalies_that_could_hide_data: i64,
}

/// What lethe still holds about the member.
#[derive(Debug, Clone, Serialize)]
pub struct Minimisation {
    /// The member's key: replaced by a keyed hash, or still held (active).
    pub subject_key: &'static str,
    /// The per-object manifest: pruned to these counts, or still kept.
    pub manifest_pruned_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineVersion {
    pub name: &'static str,
    pub version: &'static str,
}

impl EngineVersion {
    pub fn current() -> EngineVersion {
        EngineVersion {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The records of every request done in a period.
#[derive(Debug, Clone, Serialize)]
pub struct Register {
    pub format: &'static str,
    /// First day, inclusive (UTC).
    pub from: NaiveDate,
    /// Last day, inclusive (UTC).
    pub to: NaiveDate,
    pub requests: usize,
    pub records: Vec<DestructionRecord>,
    pub engine: EngineVersion,
    pub generated_at: DateTime<Utc>,
}

/// Builds one request's record.
pub async fn build(store: &Store, id: Uuid) -> Result<DestructionRecord, Error> {
    let request = store.get(id).await?;
    let counts = record::counts(store, id).await?;
    let anomalies = manifest::anomalies(store, id).await?;
    let evidence = record::evidence(store, id).await?;
    Ok(assemble(request, counts, anomalies, evidence))
}

/// Builds the register of requests done from `from` to `to`, both days
/// inclusive, in UTC.
pub async fn register(store: &Store, from: NaiveDate, to: NaiveDate) -> Result<Register, Error> {
    if to < from {
        return Err(Error::InvalidInput(format!(
            "the period ends ({to}) before it starts ({from})"
        )));
    }
    let start = from
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let end = to
        .succ_opt()
        .ok_or_else(|| Error::InvalidInput(format!("{to} is too far in the future")))?
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let ids = record::done_between(store, start, end).await?;
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        records.push(build(store, id).await?);
    }
    Ok(Register {
        format: "lethe destruction register 1",
        from,
        to,
        requests: records.len(),
        records,
        engine: EngineVersion::current(),
        generated_at: Utc::now(),
    })
}

fn assemble(
    r: RequestRecord,
    counts: Vec<Count>,
    anomalies: Vec<Anomaly>,
    evidence: record::Evidence,
) -> DestructionRecord {
    let tables: Vec<TableCount> = counts
        .iter()
        .filter(|c| c.target == "table")
        .map(|c| TableCount {
            table: c.name.clone(),
            method: c.method.clone(),
            rows: c.items,
        })
        .collect();
    let buckets: Vec<BucketCount> = counts
        .iter()
        .filter(|c| c.target == "bucket")
        .map(|c| BucketCount {
            bucket: c.name.clone(),
            replica_of: Some(c.replica_of.clone()).filter(|r| !r.is_empty()),
            method: bucket_method(&c.method),
            objects: c.items,
            versions: c.versions,
        })
        .collect();
    let foreign_references = anomalies
        .iter()
        .filter(|a| a.kind() == Some(AnomalyKind::ForeignReference))
        .count() as i64;
    // A kind this version does not know could hide data, for all it knows.
    let hiding = anomalies
        .iter()
        .filter(|a| a.kind().is_none_or(AnomalyKind::could_hide_data))
        .count() as i64;
    let scheduled: i64 = buckets
        .iter()
        .filter(|b| b.method == "scheduled")
        .map(|b| b.objects)
        .sum();
    let outcome = match r.state {
        State::Done => {
            let mut line = "destroyed".to_owned();
            if scheduled > 0 {
                line = format!(
                    "destroyed; {scheduled} object(s) scheduled for expiry by the bucket's lifecycle rule, not yet destroyed"
                );
            }
            if r.anomaly_count > 0 {
                line.push_str(&format!(" (with {} anomalies)", r.anomaly_count));
            }
            line
        }
        State::Failed => "failed: not destroyed completely; see the last error".to_owned(),
        State::Cancelled => "cancelled before any object was deleted: nothing destroyed".to_owned(),
        State::Coalesced => "a duplicate submission: see the request it was folded into".to_owned(),
        active => format!("in progress ({active}): this record is not final"),
    };
    let verification = Verification {
        result: match r.state {
            State::Done => "passed",
            State::Failed if r.resume_state.0 == Some(State::DbMasked) => "failed",
            _ => "pending",
        }
        .to_owned(),
        objects_checked: evidence.objects_verified,
        survivors_erased_again: evidence.survivors_found,
        rows_checked: evidence.rows_verified,
        verified_at: (r.state == State::Done).then_some(r.finished_at).flatten(),
        method: "every object listed in the manifest read back (HeadObject; ListObjectVersions \
                 in versioned buckets; the expiry tag in tag-and-expire buckets), and every row listed \
                 in the manifest read back",
        checks: checks(&r, &evidence, hiding),
        anomalies_that_could_hide_data: hiding,
    };
    let phases = vec![
        phase(Phase::FindingTargets, r.started_at, r.targets_found_at),
        phase(
            Phase::DeletingObjects,
            r.s3_started_at.or(r.targets_found_at),
            r.s3_cleared_at,
        ),
        phase(Phase::MaskingRows, r.s3_cleared_at, r.db_masked_at),
        phase(
            Phase::Verifying,
            r.db_masked_at,
            (r.state == State::Done).then_some(r.finished_at).flatten(),
        ),
    ];
    DestructionRecord {
        format: RECORD_FORMAT,
        request_id: r.id,
        external_reference: r.external_ref.or(r.idempotency_key),
        state: r.state,
        outcome,
        coalesced_into: r.coalesced_into,
        requested_at: r.requested_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        phases,
        tables,
        buckets,
        foreign_references,
        anomaly_count: anomalies.len() as i64,
        anomalies,
        verification,
        minimisation: Minimisation {
            subject_key: if evidence.subject_minimised {
                "replaced by its keyed hash (HMAC-SHA256)"
            } else {
                "held while the erasure is active"
            },
            manifest_pruned_at: evidence.manifest_pruned_at,
        },
        engine: EngineVersion::current(),
        generated_at: Utc::now(),
    }
}

fn phase(phase: Phase, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> PhaseTime {
    PhaseTime {
        phase,
        started_at: start,
        finished_at: end,
        seconds: match (start, end) {
            (Some(s), Some(e)) => Some((e - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        },
    }
}

/// The record's words for how a bucket's objects went.
/// What verification checked of this request, and what it could not.
fn checks(r: &RequestRecord, evidence: &record::Evidence, hiding: i64) -> Vec<String> {
    if r.state != State::Done {
        return vec!["not verified yet: the request is not done".to_owned()];
    }
    let mut checks = vec![
        format!(
            "objects listed in the manifest: {} read back absent{}",
            evidence.objects_verified,
            if evidence.survivors_found > 0 {
                format!(
                    " ({} found still there, erased again and read back absent)",
                    evidence.survivors_found
                )
            } else {
                String::new()
            }
        ),
        format!(
            "rows listed in the manifest: {} read back with their catalogued columns erased",
            evidence.rows_verified
        ),
    ];
    match evidence.key_check_tables.as_deref() {
        Some(tables) if !tables.is_empty() => checks.push(format!(
            "client tables {tables}: no row left carrying the member's key"
        )),
        Some(_) => checks.push(
            "not checked: whether a client row still carries the member's key (every client table keeps the key column)"
                .to_owned(),
        ),
        None => checks.push(
            "not recorded: which client tables were read back for the member's key (verified by an earlier lethe)"
                .to_owned(),
        ),
    }
    if let Some(tables) = evidence
        .key_unchecked_tables
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        checks.push(format!(
            "not checked: client tables {tables} keep the member's key by policy, so lethe cannot prove that no row of theirs was missed"
        ));
    }
    checks.push(if hiding == 0 {
        "anomalies that could hide data (references not followed, rows not proven the member's): none".to_owned()
    } else {
        format!(
            "anomalies that could hide data (references not followed, rows not proven the member's): {hiding}; what they point at was not in the manifest, so the read-back above does not cover it"
        )
    });
    checks
}

fn bucket_method(stored: &str) -> String {
    match stored {
        "retained_protected" => "retained: protected".to_owned(),
        "retained_locked" => "retained: locked".to_owned(),
        "retained_denied" => "retained: denied".to_owned(),
        other => other.to_owned(),
    }
}

/// Parses a day given on the command line (`YYYY-MM-DD`).
pub fn parse_day(text: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|err| {
        Error::InvalidInput(format!("{text:?} is not a date like 2026-03-31: {err}"))
    })
}
