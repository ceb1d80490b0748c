//! Checks of a feature's reference sources that need no database: a bare
//! key (`form = "key"`) names its bucket, and that bucket is one of the
//! service's; a prefix belongs to a bare key; a JSON manifest's listed keys
//! have a bucket to be in.

use super::model::{RefForm, ReferenceSource};
use super::{Catalog, CatalogError, Feature};

pub(super) fn check(catalog: &Catalog, feature: &Feature) -> Result<(), CatalogError> {
    let spec = &feature.spec;
    let tables = std::iter::once((
        format!("feature ({})", spec.feature.table),
        &spec.feature.references,
    ))
    .chain(
        spec.tasks
            .iter()
            .map(|task| (format!("task ({})", task.table), &task.references)),
    );
    for (entry, sources) in tables {
        for source in sources {
            check_source(catalog, feature, &entry, source)?;
        }
    }
    Ok(())
}

fn check_source(
    catalog: &Catalog,
    feature: &Feature,
    entry: &str,
    source: &ReferenceSource,
) -> Result<(), CatalogError> {
    let entry = format!("{entry}: references ({})", source.column);
    let fail = |problem: String| Err(CatalogError::invalid(&feature.file, &entry, problem));
    let known = |bucket: &str| catalog.storage.buckets.iter().any(|b| b == bucket);
    for path in source.ref_paths() {
        match (path.form, &path.bucket) {
            (RefForm::Key, None) => {
                return fail(format!(
                    "path {}: form = \"key\" needs the bucket the keys are in: bucket = \"...\"",
                    path.path
                ));
            }
            (RefForm::Key, Some(bucket)) if !known(bucket) => {
                return fail(format!(
                    "path {}: bucket {bucket:?} is not listed in storage.buckets",
                    path.path
                ));
            }
            (RefForm::Key, Some(_)) => {}
            (_, Some(_)) => {
                return fail(format!(
                    "path {}: `bucket` is for bare keys; add form = \"key\" (a URL or {{bucket, key}} object names its own bucket)",
                    path.path
                ));
            }
            (_, None) if !path.prefix.is_empty() => {
                return fail(format!(
                    "path {}: `prefix` is for bare keys; add form = \"key\" and bucket = \"...\"",
                    path.path
                ));
            }
            _ => {}
        }
        if source.exclude.iter().any(|excluded| excluded == &path.path) {
            return fail(format!("path {} is both read and excluded", path.path));
        }
    }
    if let Some(expand) = &source.expand {
        if let Some(bucket) = &expand.bucket
            && !known(bucket)
        {
            return fail(format!(
                "expand.bucket {bucket:?} is not listed in storage.buckets"
            ));
        }
        if expand.prefix.is_some() && !matches!(expand.form, RefForm::Key | RefForm::Auto) {
            return fail("expand.prefix is for bare keys".to_owned());
        }
    }
    Ok(())
}
