//! `lethe catalog init`, the I/O around [`crate::catalog::init`]: read the
//! service's schema, sample rows to confirm each guessed link and learn the
//! feature types behind it, sample JSON and text columns, and ask S3 which
//! bucket holds what a CDN URL or a bare key names. Reads only: nothing is
//! written to the database or S3.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::init::{self, Draft, Evidence, shapes};
use crate::catalog::{Ident, TableName};
use crate::error::Error;
use crate::objects::ObjectStore;
use crate::references::Resolver;
use crate::references::percent::decode_path;
use crate::store::{Store, introspect, probe};

/// At most this many buckets are asked about one key.
const MAX_BUCKETS: usize = 20;

pub async fn draft(store: &Store, objects: &ObjectStore, sample: i64) -> Result<Draft, Error> {
    let sample = sample.clamp(1, 10_000);
    let names = introspect::service_tables(store).await?;
    let live = introspect::live_schema(store, names).await?;
    let survey = init::survey(&live);
    let mut evidence = Evidence::default();
    for link in &survey.links {
        let client = &survey.clients[link.client];
        evidence
            .links
            .push(probe::link(store, &live, client, link, sample).await?);
    }
    let features: BTreeSet<String> = survey
        .links
        .iter()
        .zip(&evidence.links)
        .filter(|(_, found)| found.matched > 0)
        .map(|(link, _)| link.feature.clone())
        .collect();
    for task in init::task_guesses(&live, &survey, &features) {
        let matched = probe::task(store, &live, &task, sample).await?;
        evidence.tasks.push((task, matched));
    }
    let mut tables = features.clone();
    tables.extend(
        evidence
            .tasks
            .iter()
            .filter(|(_, matched)| *matched > 0)
            .map(|(task, _)| task.table.clone()),
    );
    for (table, column) in init::columns_to_sample(&live, &tables) {
        let (Ok(name), Ok(ident)) = (TableName::new(&table), Ident::new(&column)) else {
            continue;
        };
        let values = introspect::sample(store, &name, &ident, sample).await?;
        evidence.samples.insert((table, column), values);
    }

    // Which bucket holds what CDN URLs and bare keys name: S3 is asked.
    let resolver = Resolver::accepting_any_bucket(Vec::new());
    let mut buckets: BTreeSet<String> = BTreeSet::new();
    let mut hosts = Vec::new();
    let mut keys = BTreeSet::new();
    for samples in evidence.samples.values() {
        let shape = shapes::analyse(samples, &resolver);
        buckets.extend(shape.buckets.iter().cloned());
        for found in shape.other_hosts.values() {
            hosts.extend(
                found
                    .iter()
                    .map(|(host, path)| (host.clone(), path.clone())),
            );
        }
        for found in shape.keys.values() {
            keys.extend(found.iter().cloned());
        }
    }
    if let Ok(listed) = objects.client().list_buckets().send().await {
        evidence.buckets = listed
            .buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect();
        buckets.extend(evidence.buckets.iter().cloned());
    }
    let candidates: Vec<String> = buckets.into_iter().take(MAX_BUCKETS).collect();
    let mut prefixes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, path) in hosts {
        if evidence.host_buckets.contains_key(&host) {
            continue;
        }
        let Ok(decoded) = decode_path(&path) else {
            continue;
        };
        let holders = holders(objects, &candidates, &decoded.text).await;
        evidence.host_buckets.insert(host, holders);
    }
    for key in keys {
        let mut found: Vec<(String, String)> = holders(objects, &candidates, &key)
            .await
            .into_iter()
            .map(|bucket| (bucket, String::new()))
            .collect();
        if found.is_empty() {
            // Not as written: under one of a bucket's top-level prefixes?
            for bucket in &candidates {
                if !prefixes.contains_key(bucket) {
                    let listed = top_prefixes(objects, bucket).await;
                    prefixes.insert(bucket.clone(), listed);
                }
                for prefix in &prefixes[bucket] {
                    let full = format!("{prefix}{key}");
                    if objects.exists(bucket, &full).await.unwrap_or(false) {
                        found.push((bucket.clone(), prefix.clone()));
                    }
                }
            }
        }
        evidence.key_buckets.insert(key, found);
    }
    read_documents(objects, &mut evidence, &resolver).await;
    Ok(init::draft(&live, &survey, &evidence))
}

/// A bucket's first-level prefixes (`avatars/`), at most a hundred; none
/// when it cannot be listed.
async fn top_prefixes(objects: &ObjectStore, bucket: &str) -> Vec<String> {
    match objects
        .client()
        .list_objects_v2()
        .bucket(bucket)
        .delimiter("/")
        .max_keys(100)
        .send()
        .await
    {
        Ok(listed) => listed
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix().map(str::to_owned))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// For each column path naming JSON documents, reads one (at most 1 MiB)
/// and notes where in it a list of more files sits.
async fn read_documents(objects: &ObjectStore, evidence: &mut Evidence, resolver: &Resolver) {
    let mut lists = BTreeMap::new();
    for ((table, column), samples) in &evidence.samples {
        let shape = shapes::analyse(samples, resolver);
        for path in &shape.documents {
            let Some(object) = first_document(&shape, path, evidence) else {
                continue;
            };
            let Ok(Some(Some(bytes))) = objects.get_bounded(&object.0, &object.1, 1 << 20).await
            else {
                continue;
            };
            let Ok(document) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if let Some(list) = shapes::list_in_document(&document) {
                lists.insert((table.clone(), column.clone(), path.clone()), list);
            }
        }
    }
    evidence.document_lists = lists;
}

/// A JSON document a column path names: (bucket, key).
fn first_document(
    shape: &shapes::ColumnShape,
    path: &str,
    evidence: &Evidence,
) -> Option<(String, String)> {
    if let Some(keys) = shape.keys.get(path) {
        let key = keys.iter().find(|k| k.ends_with(".json"))?;
        let (bucket, prefix) = evidence.key_buckets.get(key)?.first()?;
        return Some((bucket.clone(), format!("{prefix}{key}")));
    }
    shape
        .referenced
        .iter()
        .find(|(_, key)| key.ends_with(".json"))
        .cloned()
}

/// The buckets among `candidates` that hold `key` (a bucket that cannot be
/// asked counts as not holding it).
async fn holders(objects: &ObjectStore, candidates: &[String], key: &str) -> Vec<String> {
    let mut found = Vec::new();
    if key.is_empty() {
        return found;
    }
    for bucket in candidates {
        if objects.exists(bucket, key).await.unwrap_or(false) {
            found.push(bucket.clone());
        }
    }
    found
}
