//! The dry run behind `lethe plan`: the finding-targets phase alone, in
//! memory, with nothing written to the database and nothing deleted. It
//! reads the same pages with the same code as a real erasure
//! ([`super::targets`]), so what it counts is what an erasure would do now.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;

use super::Context;
use super::targets::{self, Cursor};
use crate::error::Error;
use crate::references::ObjectRef;
use crate::store::manifest::{Anomaly, AnomalyKind};

/// At most this many anomalies are listed one by one (all are counted).
const LISTED_ANOMALIES: usize = 100;

/// What an erasure of one member would touch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DryRun {
    /// Discovery batches (pages of `worker.batch_size` client records).
    pub batches: u32,
    /// Client records: the member's requests, over all client tables.
    pub requests: u64,
    pub requests_per_feature: BTreeMap<String, u64>,
    /// Rows that would be masked (or deleted), per table.
    pub rows_per_table: BTreeMap<String, u64>,
    /// Objects that would be deleted, per bucket.
    pub objects_per_bucket: BTreeMap<String, u64>,
    /// Objects that would be retained because they are protected (shared).
    pub retained_per_bucket: BTreeMap<String, u64>,
    /// JSON manifests read to list more objects (PDF extractions).
    pub manifests_expanded: u64,
    /// References to objects that are not the service's.
    pub foreign: u64,
    pub anomalies_per_kind: BTreeMap<String, u64>,
    /// The first anomalies, one by one.
    pub anomalies: Vec<Anomaly>,
}

impl DryRun {
    pub fn objects(&self) -> u64 {
        self.objects_per_bucket.values().sum()
    }

    pub fn rows(&self) -> u64 {
        self.rows_per_table.values().sum()
    }

    pub fn anomaly_count(&self) -> u64 {
        self.anomalies_per_kind.values().sum()
    }
}

/// Walks every page of the member's records and counts what it finds.
pub async fn run(ctx: &Context, subject: &str) -> Result<DryRun, Error> {
    let mut report = DryRun::default();
    let mut seen: HashSet<ObjectRef> = HashSet::new();
    let mut cursor = Cursor::default();
    loop {
        let page = targets::next_client_page(ctx, subject, cursor).await?;
        if page.rows.is_empty() && page.anomalies.is_empty() {
            return Ok(report);
        }
        cursor = page.cursor;
        let clients = page.rows;
        let unnamed = page.anomalies;
        report.batches += 1;
        report.requests += clients.len() as u64;
        for client in &clients {
            let feature = client
                .feature_type
                .clone()
                .unwrap_or_else(|| "(none)".into());
            *report.requests_per_feature.entry(feature).or_default() += 1;
        }
        let mut findings = targets::find(ctx, subject, &clients).await?;
        findings.anomalies.extend(unnamed);
        for row in &findings.rows {
            *report.rows_per_table.entry(row.table.clone()).or_default() += 1;
        }
        for found in &findings.objects {
            // Pages are deduplicated inside; across pages, here.
            if !seen.insert(found.object.clone()) {
                continue;
            }
            let bucket = found.object.bucket.clone();
            if found.protected {
                *report.retained_per_bucket.entry(bucket).or_default() += 1;
            } else {
                *report.objects_per_bucket.entry(bucket).or_default() += 1;
            }
            if found.container {
                report.manifests_expanded += 1;
            }
        }
        for anomaly in findings.anomalies {
            if anomaly.kind() == Some(AnomalyKind::ForeignReference) {
                report.foreign += 1;
            }
            *report
                .anomalies_per_kind
                .entry(anomaly.kind.clone())
                .or_default() += 1;
            if report.anomalies.len() < LISTED_ANOMALIES {
                report.anomalies.push(anomaly);
            }
        }
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dry run: nothing was changed")?;
        writeln!(
            f,
            "requests   {} in {} batch(es); rows {}; objects to delete {}; retained {}; foreign {}; anomalies {}",
            self.requests,
            self.batches,
            self.rows(),
            self.objects(),
            self.retained_per_bucket.values().sum::<u64>(),
            self.foreign,
            self.anomaly_count()
        )?;
        writeln!(f, "\nper feature (requests)")?;
        for (feature, n) in &self.requests_per_feature {
            writeln!(f, "  {feature:<28} {n:>8}")?;
        }
        writeln!(f, "\nper table (rows to mask or delete)")?;
        for (table, n) in &self.rows_per_table {
            writeln!(f, "  {table:<28} {n:>8}")?;
        }
        writeln!(f, "\nper bucket (objects)")?;
        let buckets: std::collections::BTreeSet<&String> = self
            .objects_per_bucket
            .keys()
            .chain(self.retained_per_bucket.keys())
            .collect();
        for bucket in buckets {
            writeln!(
                f,
                "  {bucket:<28} {:>8} to delete, {} retained (protected)",
                self.objects_per_bucket.get(bucket).copied().unwrap_or(0),
                self.retained_per_bucket.get(bucket).copied().unwrap_or(0)
            )?;
        }
        if self.manifests_expanded > 0 {
            writeln!(
                f,
                "  ({} JSON manifest(s) read to list their objects)",
                self.manifests_expanded
            )?;
        }
        if !self.anomalies_per_kind.is_empty() {
            writeln!(f, "\nanomalies (reported, never skipped silently)")?;
            for (kind, n) in &self.anomalies_per_kind {
                writeln!(f, "  {kind:<28} {n:>8}")?;
            }
            for anomaly in self.anomalies.iter().take(10) {
                let place = match (&anomaly.table_name, &anomaly.row_id) {
                    (Some(table), Some(row)) => format!("{table} row {row}: "),
                    _ => String::new(),
                };
                writeln!(f, "  - {}: {place}{}", anomaly.kind, anomaly.detail)?;
            }
        }
        Ok(())
    }
}
