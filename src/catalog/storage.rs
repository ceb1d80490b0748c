//! Checks of the catalog's per-bucket settings (`[storage.bucket."name"]`)
//! that need no database: every configured bucket is one of the service's
//! buckets or a replica of one, a replica is another bucket and has no
//! replicas of its own (erasure expands replicas one level deep), and tags
//! and listing depths are usable.

use std::collections::BTreeSet;
use std::path::Path;

use super::CatalogError;
use super::model::{ErasureMode, Storage};

/// S3's limits on a tag's key and value, in characters.
const TAG_KEY_MAX: usize = 128;
const TAG_VALUE_MAX: usize = 256;

pub(super) fn check(storage: &Storage, file: &Path) -> Result<(), CatalogError> {
    let buckets: BTreeSet<&str> = storage.buckets.iter().map(String::as_str).collect();
    let replicas: BTreeSet<&str> = storage
        .bucket_settings
        .values()
        .flat_map(|settings| settings.replicas.iter().map(String::as_str))
        .collect();
    for (name, settings) in &storage.bucket_settings {
        let entry = format!("storage.bucket.{name:?}");
        if !buckets.contains(name.as_str()) && !replicas.contains(name.as_str()) {
            return Err(CatalogError::invalid(
                file,
                entry,
                "not listed in storage.buckets and not a replica of a listed bucket",
            ));
        }
        for replica in &settings.replicas {
            if replica == name {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    "a bucket cannot be its own replica",
                ));
            }
            if !storage.replicas_of(replica).is_empty() {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    format!(
                        "replica {replica:?} has replicas of its own; list every copy as a replica of the primary bucket"
                    ),
                ));
            }
        }
        if settings.mode == ErasureMode::Delete && settings.tag.is_some() {
            return Err(CatalogError::invalid(
                file,
                entry,
                "a tag is set but mode is \"delete\"; set mode = \"tag\" or remove the tag",
            ));
        }
        if let Some(tag) = &settings.tag {
            if tag.key.is_empty() || tag.key.chars().count() > TAG_KEY_MAX {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    format!("the tag key must have 1 to {TAG_KEY_MAX} characters"),
                ));
            }
            if tag.key.starts_with("aws:") {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    "tag keys starting with \"aws:\" are reserved by AWS",
                ));
            }
            if tag.value.chars().count() > TAG_VALUE_MAX {
                return Err(CatalogError::invalid(
                    file,
                    entry,
                    format!("the tag value must have at most {TAG_VALUE_MAX} characters"),
                ));
            }
        }
        if settings.list_prefix_depth == Some(0) {
            return Err(CatalogError::invalid(
                file,
                entry,
                "list_prefix_depth must be at least 1 (0 would list the whole bucket)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(text: &str) -> Storage {
        toml::from_str(text).unwrap()
    }

    fn error(text: &str) -> String {
        check(&storage(text), Path::new("catalog.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn plain_bucket_lists_still_load() {
        let s = storage(r#"buckets = ["a", "b"]"#);
        check(&s, Path::new("catalog.toml")).unwrap();
        assert!(s.replicas_of("a").is_empty());
        assert_eq!(s.settings_of("a").mode, ErasureMode::Delete);
    }

    #[test]
    fn bucket_tables_are_read_and_checked() {
        let s = storage(
            r#"
            buckets = ["a"]
            locked_object_rows = "keep"
            [bucket.a]
            versioning = "enabled"
            replicas = ["a-copy"]
            mode = "tag"
            tag = { key = "expire", value = "yes" }
            list_prefix_depth = 2
            [bucket.a-copy]
            region = "eu-central-1"
            "#,
        );
        check(&s, Path::new("catalog.toml")).unwrap();
        assert_eq!(s.replicas_of("a"), ["a-copy"]);
        assert_eq!(
            s.settings_of("a-copy").region.as_deref(),
            Some("eu-central-1")
        );

        assert!(error("buckets = [\"a\"]\n[bucket.z]\nmode = \"tag\"").contains("not listed"));
        assert!(error("buckets = [\"a\"]\n[bucket.a]\nreplicas = [\"a\"]").contains("own replica"));
        assert!(
            error(
                "buckets = [\"a\"]\n[bucket.a]\nreplicas = [\"b\"]\n[bucket.b]\nreplicas = [\"c\"]"
            )
            .contains("replicas of its own")
        );
        assert!(
            error("buckets = [\"a\"]\n[bucket.a]\ntag = { key = \"k\", value = \"v\" }")
                .contains("mode")
        );
        assert!(
            error("buckets = [\"a\"]\n[bucket.a]\nmode = \"tag\"\ntag = { key = \"aws:x\", value = \"v\" }")
                .contains("reserved")
        );
        assert!(
            error("buckets = [\"a\"]\n[bucket.a]\nlist_prefix_depth = 0").contains("at least 1")
        );
        assert!(
            toml::from_str::<Storage>("buckets = [\"a\"]\n[bucket.a]\nmode = \"shred\"").is_err()
        );
    }
}
