//! What `lethe catalog check` prints: whether the catalog is safe to erase
//! with, every problem (each with its file, entry and fix), every warning,
//! and, per client table and feature, what erasure will read, how it
//! reaches and proves each row, and what it will mask or delete. Built from
//! a compiled [`Plan`] (or the errors that stopped compiling) and the
//! answers to the plan's data checks; pure.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::model::{RefForm, ReferenceSource};
use super::plan::{DataCheck, FeatureTables, Finding, Plan};
use super::policy::{Policy, RowErasure};
use super::{CatalogError, TablePlan};

/// The outcome of checking a catalog against a live database.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogReport {
    pub catalog: PathBuf,
    /// True when nothing unsafe was found: erasure may run.
    pub safe: bool,
    /// What makes the catalog unsafe; each must be fixed.
    pub errors: Vec<Problem>,
    /// What works but deserves a look (a lookup without an index, columns
    /// the catalog does not mention, checks that cannot be made).
    pub warnings: Vec<Problem>,
    pub clients: Vec<ClientSummary>,
    pub features: Vec<FeatureSummary>,
}

/// One problem, and where it is.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: Option<PathBuf>,
    pub entry: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    pub table: String,
    /// Rows are named by these columns.
    pub key: String,
    /// What erasure does to the member's rows.
    pub erasure: String,
    /// Whether, after erasure, lethe can check that no row of this table
    /// still carries the member's key.
    pub verifies_nothing_left: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeatureSummary {
    pub file: PathBuf,
    pub types: Vec<String>,
    pub table: String,
    pub key: String,
    /// How each client table's rows reach this feature's rows.
    pub links: Vec<String>,
    /// How lethe proves a reached row is the member's.
    pub proof: Vec<String>,
    pub reads: Vec<String>,
    pub erasure: String,
    pub tasks: Vec<TaskSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskSummary {
    pub table: String,
    pub key: String,
    pub reads: Vec<String>,
    pub erasure: String,
}

impl Problem {
    fn of_error(error: &CatalogError) -> Problem {
        match error {
            CatalogError::Invalid {
                file,
                entry,
                problem,
            } => Problem {
                file: Some(file.clone()),
                entry: Some(entry.clone()),
                message: problem.clone(),
            },
            CatalogError::Parse { file, message } => Problem {
                file: Some(file.clone()),
                entry: None,
                message: message.clone(),
            },
            CatalogError::Read { path, .. } => Problem {
                file: Some(path.clone()),
                entry: None,
                message: error.to_string(),
            },
            CatalogError::Many(_) => Problem {
                file: None,
                entry: None,
                message: error.to_string(),
            },
        }
    }

    fn of_finding(finding: &Finding) -> Problem {
        Problem {
            file: Some(finding.file.clone()),
            entry: Some(finding.entry.clone()),
            message: finding.message.clone(),
        }
    }
}

impl CatalogReport {
    /// The report of a catalog that could not be loaded or compiled.
    pub fn refused(catalog: PathBuf, error: &CatalogError) -> CatalogReport {
        CatalogReport {
            catalog,
            safe: false,
            errors: error
                .problems()
                .into_iter()
                .map(Problem::of_error)
                .collect(),
            warnings: Vec::new(),
            clients: Vec::new(),
            features: Vec::new(),
        }
    }

    /// The report of a compiled plan, given how many offending rows each of
    /// its data checks found.
    pub fn of_plan(plan: &Plan, data: &[(DataCheck, i64)]) -> CatalogReport {
        let errors: Vec<Problem> = data
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(check, count)| Problem {
                file: Some(check.file.clone()),
                entry: Some(check.entry.clone()),
                message: check.problem.replace("{n}", &count.to_string()),
            })
            .collect();
        let clients = plan
            .clients
            .iter()
            .map(|client| ClientSummary {
                table: client.table.clone(),
                key: client.key.describe(),
                erasure: describe_erasure(plan.tables.get(&client.table)),
                verifies_nothing_left: client.erases_subject,
            })
            .collect();
        let features = plan
            .features
            .iter()
            .map(|feature| match &feature.tables {
                FeatureTables::Missing { table } => FeatureSummary {
                    file: feature.file.clone(),
                    types: feature.types.clone(),
                    table: table.clone(),
                    key: String::new(),
                    links: vec![format!("table {table} does not exist (optional feature): each request of these types is reported as missing_table")],
                    proof: Vec::new(),
                    reads: Vec::new(),
                    erasure: "nothing".to_owned(),
                    tasks: Vec::new(),
                },
                FeatureTables::Present(rows) => FeatureSummary {
                    file: feature.file.clone(),
                    types: feature.types.clone(),
                    table: rows.table.clone(),
                    key: rows.key.describe(),
                    links: rows
                        .links
                        .iter()
                        .zip(&plan.clients)
                        .map(|(link, client)| match link {
                            Some(link) => link.describe.clone(),
                            None => format!(
                                "no link from {}: its rows of these types are reported as no_link",
                                client.table
                            ),
                        })
                        .collect(),
                    proof: rows
                        .namespaces
                        .iter()
                        .map(|ns| {
                            format!(
                                "{}.{} {}: a row is erased only if every such client row is the member's",
                                rows.table, rows.value_columns[ns.value_column], ns.describe
                            )
                        })
                        .collect(),
                    reads: rows.references.iter().map(describe_source).collect(),
                    erasure: describe_erasure(plan.tables.get(&rows.table)),
                    tasks: rows
                        .tasks
                        .iter()
                        .map(|task| TaskSummary {
                            table: task.table.clone(),
                            key: task.key.describe(),
                            reads: task.references.iter().map(describe_source).collect(),
                            erasure: describe_erasure(plan.tables.get(&task.table)),
                        })
                        .collect(),
                },
            })
            .collect();
        CatalogReport {
            catalog: plan.catalog.dir.clone(),
            safe: errors.is_empty(),
            errors,
            warnings: plan.findings.iter().map(Problem::of_finding).collect(),
            clients,
            features,
        }
    }
}

fn describe_erasure(table: Option<&TablePlan>) -> String {
    let Some(table) = table else {
        return "nothing".to_owned();
    };
    if table.erase == RowErasure::Delete {
        return "delete the rows".to_owned();
    }
    let masked: Vec<String> = table
        .masks
        .iter()
        .filter(|m| !m.policy.is_keep())
        .map(|m| match &m.policy {
            Policy::Fixed { .. } => format!("{} -> a fixed value", m.column),
            policy => format!("{} -> {policy}", m.column),
        })
        .collect();
    let kept: Vec<&str> = table
        .masks
        .iter()
        .filter(|m| m.policy.is_keep())
        .map(|m| m.column.as_str())
        .collect();
    let mut text = if masked.is_empty() {
        "mask nothing".to_owned()
    } else {
        format!("mask {}", masked.join(", "))
    };
    if !kept.is_empty() {
        text.push_str(&format!("; keep {}", kept.join(", ")));
    }
    text
}

fn describe_source(source: &ReferenceSource) -> String {
    let paths: Vec<String> = source
        .ref_paths()
        .into_iter()
        .map(|path| match path.form {
            RefForm::Auto => path.path.to_string(),
            RefForm::Url => format!("{} (URL)", path.path),
            RefForm::BucketKeyObject => format!("{} ({{bucket, key}})", path.path),
            RefForm::Key => format!(
                "{} (bare key in {}{})",
                path.path,
                path.bucket.unwrap_or_default(),
                if path.prefix.is_empty() {
                    String::new()
                } else {
                    format!(" under {}", path.prefix)
                }
            ),
        })
        .collect();
    let mut text = format!("{}: {}", source.column, paths.join(", "));
    if !source.exclude.is_empty() {
        let excluded: Vec<&str> = source.exclude.iter().map(|p| p.as_str()).collect();
        text.push_str(&format!("; not {}", excluded.join(", ")));
    }
    if let Some(expand) = &source.expand {
        text.push_str(&format!(
            "; each is a JSON document listing more objects at {}",
            expand.list
        ));
    }
    text
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.entry) {
            (Some(file), Some(entry)) => write!(f, "{}: {entry}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl fmt::Display for CatalogReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "catalog {}", self.catalog.display())?;
        for client in &self.clients {
            writeln!(
                f,
                "\nclient table {} (rows named by {})",
                client.table, client.key
            )?;
            writeln!(f, "  erasure: {}", client.erasure)?;
            if !client.verifies_nothing_left {
                writeln!(
                    f,
                    "  its member-key column is kept: lethe cannot check afterwards that no row of the member was missed"
                )?;
            }
        }
        for feature in &self.features {
            writeln!(
                f,
                "\nfeature {} ({}) in {}",
                feature.types.join(", "),
                feature.table,
                feature.file.display()
            )?;
            if !feature.key.is_empty() {
                writeln!(f, "  rows named by {}", feature.key)?;
            }
            for link in &feature.links {
                writeln!(f, "  reached: {link}")?;
            }
            for proof in &feature.proof {
                writeln!(f, "  proven: {proof}")?;
            }
            for read in &feature.reads {
                writeln!(f, "  reads {read}")?;
            }
            writeln!(f, "  erasure: {}", feature.erasure)?;
            for task in &feature.tasks {
                writeln!(f, "  task {} (rows named by {})", task.table, task.key)?;
                for read in &task.reads {
                    writeln!(f, "    reads {read}")?;
                }
                writeln!(f, "    erasure: {}", task.erasure)?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "\n{} warning(s):", self.warnings.len())?;
            for warning in &self.warnings {
                writeln!(f, "  - {warning}")?;
            }
        }
        if self.errors.is_empty() {
            writeln!(f, "\nsafe: no problem found")
        } else {
            writeln!(
                f,
                "\nUNSAFE: {} problem(s), each must be fixed:",
                self.errors.len()
            )?;
            for error in &self.errors {
                writeln!(f, "  - {error}")?;
            }
            Ok(())
        }
    }
}
