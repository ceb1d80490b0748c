//! Reading the file references out of one column of one row: the catalog's
//! paths, each in its form; the `+` ambiguity settled by asking S3; JSON
//! manifests (a PDF extraction's image list) expanded wherever they are
//! reached.
//!
//! The rules this module keeps: nothing is skipped silently. A value of
//! another shape than its path expects is `unrecognised_shape`; a string
//! naming one of the service's objects at a path the catalog does not list
//! (nor exclude) is `undeclared_reference`; a reference that is not the
//! service's is `foreign_reference` (its text names no host: a host can be
//! a personal domain). Objects a manifest lists come before it.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::Context;
use super::findings::Findings;
use crate::catalog::RefForm;
use crate::catalog::model::{Expansion, ReferenceSource};
use crate::error::Error;
use crate::references::{Found, ObjectRef, Resolution};
use crate::store::manifest::{Anomaly, AnomalyKind};

/// Where a reference was found, for anomalies: the table and the row's key.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub table: &'a str,
    pub row_id: &'a str,
}

impl Place<'_> {
    fn anomaly(&self, kind: AnomalyKind, detail: String) -> Anomaly {
        Anomaly {
            kind: kind.as_str().to_owned(),
            table_name: Some(self.table.to_owned()),
            row_id: Some(self.row_id.to_owned()),
            detail,
        }
    }
}

/// A column's text parsed: a JSON document, a bare string, nothing (empty),
/// or JSON that does not parse.
pub type Parsed = Result<Option<Value>, serde_json::Error>;

/// A column's text as JSON: an object, an array or a string. Anything else
/// (a bare URL, a bare key, even `42`) is read as a string, as a text
/// column holding it means it. Blank means no reference.
pub fn parse(text: &str) -> Parsed {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.starts_with(['{', '[', '"']) {
        serde_json::from_str(trimmed).map(Some)
    } else {
        Ok(Some(Value::String(trimmed.to_owned())))
    }
}

pub async fn read_column(
    ctx: &Context,
    source: &ReferenceSource,
    text: &str,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    read_parsed(ctx, source, parse(text), place, findings).await
}

/// [`read_column`] of a column already parsed.
pub async fn read_parsed(
    ctx: &Context,
    source: &ReferenceSource,
    parsed: Parsed,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let document = match parsed {
        Ok(Some(document)) => document,
        Ok(None) => return Ok(()),
        Err(err) => {
            findings.anomalies.push(place.anomaly(
                AnomalyKind::MalformedJson,
                format!(
                    "column {}: {err}; its file references could not be read",
                    source.column
                ),
            ));
            return Ok(());
        }
    };
    // Every value excluded or read as a reference, by address: what the
    // sweep for missed references and the shape check need not look at.
    let mut covered: HashSet<usize> = HashSet::new();
    for excluded in &source.exclude {
        covered.extend(excluded.select(&document).into_iter().map(address));
    }
    // Values already read (two paths may select the same one).
    let mut read: HashSet<usize> = covered.clone();
    let mut mismatches = Vec::new();
    for path in source.ref_paths() {
        let selection = path.path.select_traced(&document);
        mismatches.extend(selection.mismatches);
        for (location, value) in selection.values {
            if !read.insert(address(value)) {
                continue;
            }
            let found = ctx.resolver.resolve_form(
                value,
                path.form,
                path.bucket.as_deref(),
                &path.prefix,
                path.path.is_root(),
            );
            let context = format!("column {} at {location}", source.column);
            // A value read as a reference (or reported) is covered: the
            // sweep for missed references does not look inside it. A whole
            // document read at `$` that is no reference is not.
            match (&found, value) {
                (Found::Nothing, _) => {}
                // A {bucket, key, url} object: its own fields are read;
                // others beside them are still swept.
                (Found::Reference(_), Value::Object(map)) => {
                    covered.extend(
                        ["bucket", "key", "url"]
                            .iter()
                            .filter_map(|field| map.get(*field))
                            .map(address),
                    );
                }
                _ => {
                    covered.insert(address(value));
                }
            }
            let Some(resolution) = resolution_of(found, place, findings, |why| {
                format!(
                    "{context}: {why}; the catalog's paths do not say how to read it, so any file it names was not found"
                )
            }) else {
                continue;
            };
            let Some((object, protected)) =
                settle(ctx, resolution, &context, place, findings).await?
            else {
                continue;
            };
            match &source.expand {
                Some(expansion) if !protected => {
                    if findings.expanded.insert(object.clone()) {
                        expand(ctx, expansion, &object, &context, place, findings).await?;
                    }
                    findings.push_container(object, place);
                }
                _ => findings.push(object, protected, false, place),
            }
        }
    }
    for (location, value) in mismatches {
        if covered.insert(address(value)) {
            findings.anomalies.push(place.anomaly(
                AnomalyKind::UnrecognisedShape,
                format!(
                    "column {} at {location}: a JSON {} where the catalog's paths expect another shape; any file it names was not found",
                    source.column,
                    kind_of(value)
                ),
            ));
        }
    }
    sweep(ctx, &document, "$", source, &covered, place, findings);
    Ok(())
}

/// Asks S3 ahead, `s3.concurrency / sharing` calls at a time (`sharing`
/// callers ask side by side), what reading these columns ([`read_column`])
/// would otherwise ask one call after another: the JSON manifests they
/// point to (fetched together and kept for [`expand`]), then whether the
/// objects behind each `+` reading exist, in the columns and in those
/// manifests.
pub async fn ask_ahead(
    ctx: &Context,
    columns: &[(&ReferenceSource, &Value)],
    sharing: usize,
    findings: &mut Findings,
) -> Result<(), Error> {
    let store_for = |bucket: &str| ctx.buckets.store_for(bucket).with_share(1, sharing);
    let mut ambiguous = Vec::new();
    let mut manifests: BTreeMap<String, BTreeMap<String, &Expansion>> = BTreeMap::new();
    for (source, document) in columns {
        for path in source.ref_paths() {
            for (_, value) in path.path.select_traced(document).values {
                let found = ctx.resolver.resolve_form(
                    value,
                    path.form,
                    path.bucket.as_deref(),
                    &path.prefix,
                    path.path.is_root(),
                );
                match (found, &source.expand) {
                    (Found::Reference(Resolution::Ambiguous { plus, space, .. }), _) => {
                        ambiguous.push(plus);
                        ambiguous.push(space);
                    }
                    (Found::Reference(Resolution::Object { object, .. }), Some(expansion))
                        if !findings.expanded.contains(&object)
                            && !findings.fetched.contains_key(&object) =>
                    {
                        manifests
                            .entry(object.bucket)
                            .or_default()
                            .insert(object.key, expansion);
                    }
                    _ => {}
                }
            }
        }
    }
    for (bucket, keys) in manifests {
        let items: Vec<(String, u64, Expansion)> = keys
            .into_iter()
            .map(|(key, expansion)| (key, expansion.max_bytes, expansion.clone()))
            .collect();
        let shared: std::sync::Arc<str> = std::sync::Arc::from(bucket.as_str());
        let fetched = store_for(&bucket)
            .concurrently(items, move |store, (key, max_bytes, expansion)| {
                let bucket = shared.clone();
                async move {
                    let bytes = store.get_bounded(&bucket, &key, max_bytes).await?;
                    Ok((key, expansion, bytes))
                }
            })
            .await?;
        for (key, expansion, bytes) in fetched {
            if let Some(Some(bytes)) = &bytes
                && let Ok(document) = serde_json::from_slice::<Value>(bytes)
            {
                for value in expansion.list.select(&document) {
                    if let Found::Reference(Resolution::Ambiguous { plus, space, .. }) =
                        resolve_listed(ctx, &expansion, &bucket, value)
                    {
                        ambiguous.push(plus);
                        ambiguous.push(space);
                    }
                }
            }
            let object = ObjectRef {
                bucket: bucket.clone(),
                key,
            };
            findings.fetched.insert(object, bytes);
        }
    }
    let mut by_bucket: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for object in &ambiguous {
        if !findings.existence.contains_key(object) {
            by_bucket
                .entry(object.bucket.as_str())
                .or_default()
                .insert(object.key.as_str());
        }
    }
    for (bucket, keys) in by_bucket {
        let keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        let present: HashSet<String> = store_for(bucket)
            .existing(bucket, keys.clone())
            .await?
            .into_iter()
            .collect();
        for key in keys {
            let exists = present.contains(&key);
            let object = ObjectRef {
                bucket: bucket.to_owned(),
                key,
            };
            findings.existence.insert(object, exists);
        }
    }
    Ok(())
}

/// A value's address in its document, to tell values apart by identity
/// (two equal strings at two paths are two values).
fn address(value: &Value) -> usize {
    value as *const Value as usize
}

/// Whether a path selected or excluded this value (or an ancestor: the
/// sweep stops there).
fn is_covered(value: &Value, covered: &HashSet<usize>) -> bool {
    covered.contains(&address(value))
}

/// Reports strings naming the service's objects at paths no catalog path
/// selects or excludes.
fn sweep(
    ctx: &Context,
    value: &Value,
    location: &str,
    source: &ReferenceSource,
    covered: &HashSet<usize>,
    place: Place<'_>,
    findings: &mut Findings,
) {
    if is_covered(value, covered) {
        return;
    }
    match value {
        Value::String(text) if ctx.resolver.names_our_object(text) => {
            findings.anomalies.push(place.anomaly(
                AnomalyKind::UndeclaredReference,
                format!(
                    "column {} at {location}: a reference to one of the service's buckets that no catalog path lists; add the path to the catalog (or to `exclude` if it is not the member's file), then `lethe retry`",
                    source.column
                ),
            ));
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                sweep(
                    ctx,
                    item,
                    &format!("{location}[{index}]"),
                    source,
                    covered,
                    place,
                    findings,
                );
            }
        }
        Value::Object(map) => {
            for (name, item) in map {
                let child = if location == "$" {
                    name.clone()
                } else {
                    format!("{location}.{name}")
                };
                sweep(ctx, item, &child, source, covered, place, findings);
            }
        }
        _ => {}
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn looks_like_url(text: &str) -> bool {
    crate::references::s3_url::is_url(text)
}

/// Turns a resolution into an object to list (and whether it is
/// protected), or records why there is none.
async fn settle(
    ctx: &Context,
    resolution: Resolution,
    context: &str,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<Option<(ObjectRef, bool)>, Error> {
    Ok(match resolution {
        Resolution::Object { object, .. } => Some((object, false)),
        Resolution::Protected { object, .. } => Some((object, true)),
        Resolution::Ambiguous { plus, space, .. } => {
            let objects = ctx.buckets.store_for(&plus.bucket);
            let plus_exists = match findings.existence.get(&plus) {
                Some(known) => *known,
                None => objects.exists(&plus.bucket, &plus.key).await?,
            };
            let space_exists = match findings.existence.get(&space) {
                Some(known) => *known,
                None => objects.exists(&space.bucket, &space.key).await?,
            };
            match (plus_exists, space_exists) {
                (true, true) => {
                    findings.anomalies.push(place.anomaly(
                AnomalyKind::AmbiguousPlus,
                        format!(
                            "{context}: a '+' in the URL may be a plus or a space, and both objects exist in bucket {}; neither was deleted",
                            plus.bucket
                        ),
                    ));
                    None
                }
                (false, true) => {
                    let protected = ctx.resolver.protection_rule(&space).is_some();
                    Some((space, protected))
                }
                // Only the plus exists, or neither (already gone): the URL's
                // literal reading goes into the manifest, and verification
                // confirms it is absent.
                _ => {
                    let protected = ctx.resolver.protection_rule(&plus).is_some();
                    Some((plus, protected))
                }
            }
        }
        Resolution::Foreign { reason } => {
            findings.anomalies.push(place.anomaly(
                AnomalyKind::ForeignReference,
                format!("{context}: {}", without_host(&reason)),
            ));
            None
        }
    })
}

/// A foreign reference's reason without the host it names: the record is
/// kept for years, and a host can be a personal domain.
fn without_host(reason: &str) -> String {
    match reason.strip_prefix("host ") {
        Some(rest) => match rest.split_once(' ') {
            Some((_, tail)) => format!("the host {tail}"),
            None => "the host is not the service's".to_owned(),
        },
        None => reason.to_owned(),
    }
}

/// Reads a JSON manifest object and lists the objects it names (before it).
async fn expand(
    ctx: &Context,
    expansion: &Expansion,
    manifest: &ObjectRef,
    context: &str,
    place: Place<'_>,
    findings: &mut Findings,
) -> Result<(), Error> {
    let bucket = &manifest.bucket;
    let fetched = match findings.fetched.remove(manifest) {
        Some(fetched) => fetched,
        None => {
            ctx.buckets
                .store_for(bucket)
                .get_bounded(bucket, &manifest.key, expansion.max_bytes)
                .await?
        }
    };
    let Some(bytes) = fetched else {
        findings.anomalies.push(place.anomaly(
                AnomalyKind::ManifestMissing,
            format!(
                "{context}: the JSON document it points to in bucket {bucket} does not exist, so the objects it listed cannot be found"
            ),
        ));
        return Ok(());
    };
    let Some(bytes) = bytes else {
        findings.anomalies.push(place.anomaly(
                AnomalyKind::ManifestTooLarge,
            format!(
                "{context}: the JSON document in bucket {bucket} is larger than {} bytes (expand.max_bytes); its objects were not listed",
                expansion.max_bytes
            ),
        ));
        return Ok(());
    };
    let document: Value = match serde_json::from_slice(&bytes) {
        Ok(document) => document,
        Err(err) => {
            findings.anomalies.push(place.anomaly(
                AnomalyKind::ManifestMalformed,
                format!("{context}: the JSON document in bucket {bucket} is not valid JSON ({err}); its objects were not listed"),
            ));
            return Ok(());
        }
    };
    let listed = expansion.list.select(&document);
    if listed.is_empty() {
        findings.anomalies.push(place.anomaly(
                AnomalyKind::ManifestMalformed,
            format!(
                "{context}: the JSON document in bucket {bucket} has nothing at {}; expected its list of objects",
                expansion.list
            ),
        ));
    }
    let inner = format!("{context} -> {}", expansion.list);
    for value in listed {
        let found = resolve_listed(ctx, expansion, bucket, value);
        let Some(resolution) = resolution_of(found, place, findings, |why| {
            format!("{inner}: {why}; any file it names was not found")
        }) else {
            continue;
        };
        if let Some((object, protected)) = settle(ctx, resolution, &inner, place, findings).await? {
            findings.push(object, protected, false, place);
        }
    }
    Ok(())
}

/// What a reading found, if it names an object: nothing there is `None`,
/// and so is a value of a shape the catalog does not describe, reported as
/// `unrecognised_shape` with the detail `describe` gives for the reason.
fn resolution_of(
    found: Found,
    place: Place<'_>,
    findings: &mut Findings,
    describe: impl FnOnce(String) -> String,
) -> Option<Resolution> {
    match found {
        Found::Nothing => None,
        Found::Reference(resolution) => Some(resolution),
        Found::Unrecognised(why) => {
            findings
                .anomalies
                .push(place.anomaly(AnomalyKind::UnrecognisedShape, describe(why)));
            None
        }
    }
}

/// One value a manifest in `bucket` lists, read in the expansion's form: by
/// default a string that is not a URL is a key in the listed bucket.
fn resolve_listed(ctx: &Context, expansion: &Expansion, bucket: &str, value: &Value) -> Found {
    let listed_bucket = expansion.bucket.as_deref().unwrap_or(bucket);
    let prefix = expansion.prefix.as_deref().unwrap_or_default();
    let form = match (expansion.form, value) {
        (RefForm::Auto, Value::String(text)) if !looks_like_url(text) => RefForm::Key,
        (form, _) => form,
    };
    ctx.resolver
        .resolve_form(value, form, Some(listed_bucket), prefix, false)
}
