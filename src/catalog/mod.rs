//! The catalog: where a member's data lives, as data rather than code.
//!
//! A catalog is a directory under `workflows/`: `catalog.toml` (storage facts
//! and the client tables to union) plus `features/*.toml` (one feature type
//! each). [`Catalog::load`] reads and checks it on its own; [`Plan::compile`]
//! then checks it against the live database's schema (a [`LiveSchema`] the
//! store read) and compiles it into a [`Plan`] of SQL statements, in that
//! database's [`dialect`]. Both are pure. Every error names the file, the
//! entry at fault and the fix.

mod compile;
pub mod dialect;
pub mod ident;
pub mod init;
pub mod jsonpath;
pub mod keys;
pub mod links;
pub mod live;
pub mod model;
mod ownership;
pub mod plan;
pub mod policy;
mod reference_check;
pub mod report;
mod storage;
pub mod table_plan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use ident::{Ident, TableName};
pub use live::LiveSchema;
pub use model::{
    BucketSettings, CatalogFile, ClientTable, CloudFrontOrigin, Columns, ErasureMode, ExpiryTag,
    FeatureFile, FeatureTable, LinkKind, LinkSpec, LockedObjectRows, Protected, RefForm,
    ReferenceSource, Storage, TaskTable, Versioning,
};
pub use plan::{Plan, TablePlan};
pub use policy::{ColumnMask, ColumnType, NamedPolicy, Policy, RowErasure};
pub use report::CatalogReport;

/// A loaded catalog, checked for internal consistency (not yet against the
/// database).
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The directory it was loaded from, for messages.
    pub dir: PathBuf,
    pub name: String,
    pub storage: Storage,
    pub client_tables: Vec<ClientTable>,
    pub features: Vec<Feature>,
}

/// One feature type, with the file it came from.
#[derive(Debug, Clone)]
pub struct Feature {
    pub file: PathBuf,
    pub spec: FeatureFile,
}

/// A catalog that cannot be used, and where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading catalog {path}: {source}; check the `catalog` setting")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: {entry}: {problem}")]
    Invalid {
        file: PathBuf,
        entry: String,
        problem: String,
    },
    /// Several problems, each with its place.
    #[error("{} problems in the catalog:\n{}", .0.len(), numbered(.0))]
    Many(Vec<CatalogError>),
}

fn numbered(errors: &[CatalogError]) -> String {
    errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("  {}. {e}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

impl CatalogError {
    /// One error, or all of them.
    pub fn many(mut errors: Vec<CatalogError>) -> Self {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            CatalogError::Many(errors)
        }
    }

    /// Every problem, one per entry.
    pub fn problems(&self) -> Vec<&CatalogError> {
        match self {
            CatalogError::Many(errors) => errors.iter().flat_map(CatalogError::problems).collect(),
            other => vec![other],
        }
    }

    pub(crate) fn invalid(
        file: &Path,
        entry: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        CatalogError::Invalid {
            file: file.to_owned(),
            entry: entry.into(),
            problem: problem.into(),
        }
    }
}

impl Catalog {
    /// Reads `dir/catalog.toml` and every `dir/features/*.toml`, in file-name
    /// order, and checks what can be checked without a database.
    pub fn load(dir: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let dir = dir.as_ref().to_owned();
        let main_file = dir.join("catalog.toml");
        let main: CatalogFile = read_toml(&main_file)?;

        let features_dir = dir.join("features");
        let mut feature_files = Vec::new();
        if features_dir.is_dir() {
            let entries =
                std::fs::read_dir(&features_dir).map_err(|source| CatalogError::Read {
                    path: features_dir.clone(),
                    source,
                })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| CatalogError::Read {
                        path: features_dir.clone(),
                        source,
                    })?
                    .path();
                if path.extension().is_some_and(|ext| ext == "toml") {
                    feature_files.push(path);
                }
            }
        }
        feature_files.sort();
        let features = feature_files
            .into_iter()
            .map(|file| {
                let spec = read_toml(&file)?;
                Ok(Feature { file, spec })
            })
            .collect::<Result<Vec<_>, CatalogError>>()?;

        let catalog = Catalog {
            dir,
            name: main.name,
            storage: main.storage,
            client_tables: main.client_tables,
            features,
        };
        catalog.check_consistency(&main_file)?;
        Ok(catalog)
    }

    /// Checks that need no database: something to erase, unique feature
    /// types, key columns that are not masked, storage that names its buckets.
    fn check_consistency(&self, main_file: &Path) -> Result<(), CatalogError> {
        if self.client_tables.is_empty() {
            return Err(CatalogError::invalid(
                main_file,
                "clients",
                "no client tables: list at least the table that maps a member's key to their requests",
            ));
        }
        for (index, client) in self.client_tables.iter().enumerate() {
            let entry = format!("clients[{index}] ({})", client.table);
            if let Some(column) = client.key.iter().find(|c| masks(&client.mask, c)) {
                return Err(CatalogError::invalid(
                    main_file,
                    entry,
                    format!(
                        "the key column {:?} cannot be masked: rows are addressed by it",
                        column.as_str()
                    ),
                ));
            }
        }
        let mut seen_types: BTreeMap<&str, &Path> = BTreeMap::new();
        for feature in &self.features {
            if feature.spec.types.is_empty() {
                return Err(CatalogError::invalid(
                    &feature.file,
                    "types",
                    "no feature types: list the values of the client table's type column this file handles",
                ));
            }
            for ty in &feature.spec.types {
                if let Some(other) = seen_types.insert(ty.as_str(), &feature.file) {
                    return Err(CatalogError::invalid(
                        &feature.file,
                        format!("types ({ty:?})"),
                        format!(
                            "feature type {ty:?} is also declared in {}",
                            other.display()
                        ),
                    ));
                }
            }
            let table = &feature.spec.feature;
            let keys = table.key.iter().chain(table.client_id.iter());
            if let Some(key) = keys.into_iter().find(|k| masks(&table.mask, k)) {
                return Err(CatalogError::invalid(
                    &feature.file,
                    format!("feature ({})", table.table),
                    format!("the key column {:?} cannot be masked", key.as_str()),
                ));
            }
            for task in &feature.spec.tasks {
                let keys = task.key.iter().chain(std::iter::once(&task.feature_id));
                if let Some(key) = keys.into_iter().find(|k| masks(&task.mask, k)) {
                    return Err(CatalogError::invalid(
                        &feature.file,
                        format!("task ({})", task.table),
                        format!("the key column {:?} cannot be masked", key.as_str()),
                    ));
                }
            }
            reference_check::check(self, feature)?;
        }
        let buckets: BTreeSet<&str> = self.storage.buckets.iter().map(String::as_str).collect();
        for origin in &self.storage.cloudfront {
            if !buckets.contains(origin.bucket.as_str()) {
                return Err(CatalogError::invalid(
                    main_file,
                    format!("storage.cloudfront ({})", origin.domain),
                    format!(
                        "bucket {:?} is not listed in storage.buckets",
                        origin.bucket
                    ),
                ));
            }
        }
        for protected in &self.storage.protected {
            if !buckets.contains(protected.bucket.as_str()) {
                return Err(CatalogError::invalid(
                    main_file,
                    "storage.protected",
                    format!(
                        "bucket {:?} is not listed in storage.buckets",
                        protected.bucket
                    ),
                ));
            }
            if protected.prefixes.iter().any(String::is_empty) {
                return Err(CatalogError::invalid(
                    main_file,
                    format!("storage.protected ({})", protected.bucket),
                    "an empty prefix would protect the whole bucket; list the bucket's shared prefixes instead",
                ));
            }
        }
        storage::check(&self.storage, main_file)
    }

    /// Every table the catalog names (client, feature, task and join
    /// tables), as it names them.
    pub fn table_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        for client in &self.client_tables {
            names.insert(client.table.to_string());
            if let Some(join) = client.link.as_ref().and_then(|l| l.join.as_ref()) {
                names.insert(join.table.to_string());
            }
        }
        for feature in &self.features {
            let spec = &feature.spec;
            names.insert(spec.feature.table.to_string());
            names.extend(spec.tasks.iter().map(|t| t.table.to_string()));
            for link in spec.feature.link.iter().chain(&spec.feature.links) {
                if let Some(join) = &link.join {
                    names.insert(join.table.to_string());
                }
            }
        }
        names
    }

    /// The feature a client row's type names, if the catalog knows it.
    pub fn feature_for_type(&self, feature_type: &str) -> Option<&Feature> {
        self.features
            .iter()
            .find(|feature| feature.spec.types.iter().any(|ty| ty == feature_type))
    }
}

/// Whether a catalog's mask changes a column (`"keep"` does not).
fn masks(mask: &BTreeMap<Ident, Policy>, column: &Ident) -> bool {
    mask.get(column).is_some_and(|policy| !policy.is_keep())
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })?;
    // A draft's TODO(lethe) is a value only the service's team knows:
    // refused until settled, so a draft is never used by accident.
    if let Some((number, _)) = text
        .lines()
        .enumerate()
        .find(|(_, line)| !line.trim_start().starts_with('#') && line.contains(init::TODO_MARKER))
    {
        return Err(CatalogError::Parse {
            file: path.to_owned(),
            message: format!(
                "line {}: {} is still to be settled (see the comment above it, left by `lethe catalog init`)",
                number + 1,
                init::TODO_MARKER
            ),
        });
    }
    toml::from_str(&text).map_err(|err| CatalogError::Parse {
        file: path.to_owned(),
        message: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const MAIN: &str = r#"
        name = "t"
        [storage]
        buckets = ["b"]
        [[clients]]
        table = "client"
        id = "id"
        subject = "client_key"
        feature_type = "type"
        mask = { client_key = "null" }
    "#;

    #[test]
    fn the_shipped_example_catalog_loads() {
        let catalog =
            Catalog::load(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows/example")).unwrap();
        assert_eq!(catalog.client_tables.len(), 3);
        assert!(catalog.features.len() >= 3);
    }

    #[test]
    fn a_non_plain_identifier_names_file_and_entry() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "catalog.toml", MAIN);
        write(
            dir.path(),
            "features/a.toml",
            r#"
            types = ["a"]
            [feature]
            table = "a_feature; drop table x"
            id = "id"
            client_id = "client_id"
            "#,
        );
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("features/a.toml"), "{err}");
        assert!(err.contains("not a plain SQL name"), "{err}");
    }

    #[test]
    fn a_bad_json_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "catalog.toml", MAIN);
        write(
            dir.path(),
            "features/a.toml",
            r#"
            types = ["a"]
            [feature]
            table = "a_feature"
            id = "id"
            client_id = "client_id"
            references = [{ column = "option", paths = ["fileList[0]"] }]
            "#,
        );
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad JSON path"), "{err}");
    }

    #[test]
    fn duplicate_feature_types_and_masked_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "catalog.toml", MAIN);
        let feature = r#"
            types = ["a"]
            [feature]
            table = "a_feature"
            id = "id"
            client_id = "client_id"
        "#;
        write(dir.path(), "features/a.toml", feature);
        write(dir.path(), "features/b.toml", feature);
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("also declared in"), "{err}");

        std::fs::remove_file(dir.path().join("features/b.toml")).unwrap();
        write(
            dir.path(),
            "features/a.toml",
            r#"
            types = ["a"]
            [feature]
            table = "a_feature"
            id = "id"
            client_id = "client_id"
            mask = { client_id = "null" }
            "#,
        );
        let err = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("cannot be masked"), "{err}");
    }
}
