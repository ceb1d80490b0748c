//! Writing a drafted table's columns: the references the sampled values
//! showed (each path with its form, bucket and prefix) and a masking policy
//! for every column that is neither key nor link.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::Evidence;
use super::shapes::ColumnShape;
use super::write::{TODO, plain_policy, q};
use crate::catalog::live::LiveTable;

pub(super) fn write_references(
    out: &mut String,
    section: &str,
    name: &str,
    table: &LiveTable,
    shapes: &BTreeMap<(String, String), ColumnShape>,
    evidence: &Evidence,
) {
    for column in &table.columns {
        let Some(shape) = shapes.get(&(name.to_owned(), column.name.clone())) else {
            continue;
        };
        if !shape.has_references() {
            continue;
        }
        let mut paths: Vec<String> = Vec::new();
        let mut push = |path: String| {
            if !paths.contains(&path) {
                paths.push(path);
            }
        };
        for path in shape.objects.iter().chain(&shape.urls) {
            push(q(path));
        }
        let mut notes: Vec<String> = Vec::new();
        for (path, hosts) in &shape.other_hosts {
            let located: Vec<&String> = hosts
                .keys()
                .filter(|host| {
                    evidence
                        .host_buckets
                        .get(*host)
                        .is_some_and(|b| b.len() == 1)
                })
                .collect();
            if located.len() == hosts.len() {
                push(q(path));
            } else {
                let names: Vec<&str> = hosts.keys().map(String::as_str).collect();
                notes.push(format!(
                    "not read: {path} holds URLs on {} (no bucket holds what they name: a CDN of a bucket lethe cannot see, or not the service's files; if a CDN, add it under [[storage.cloudfront]] and add the path)",
                    names.join(", ")
                ));
            }
        }
        let mut expand = None;
        for (path, keys) in &shape.keys {
            let places: BTreeSet<&(String, String)> = keys
                .iter()
                .filter_map(|key| evidence.key_buckets.get(key))
                .flat_map(|found| found.iter())
                .collect();
            let all_found = keys
                .iter()
                .all(|key| evidence.key_buckets.get(key).is_some_and(|b| b.len() == 1));
            let entry = match (places.iter().next(), places.len(), all_found) {
                (Some((bucket, prefix)), 1, true) => {
                    if !prefix.is_empty() {
                        notes.push(format!(
                            "guess: the keys at {path} exist under {prefix} in bucket {bucket} (S3 was asked)"
                        ));
                    }
                    key_entry(path, bucket, prefix)
                }
                _ => {
                    notes.push(format!(
                        "{TODO}: {path} holds bare keys (e.g. {}) that no bucket holds as written: set the bucket, and the prefix put before them",
                        q(&keys[0])
                    ));
                    key_entry(path, TODO, "")
                }
            };
            push(entry);
            if let Some(list) =
                evidence
                    .document_lists
                    .get(&(name.to_owned(), column.name.clone(), path.clone()))
            {
                expand = Some(list.clone());
            }
        }
        for path in shape
            .documents
            .iter()
            .chain(shape.objects.iter())
            .chain(&shape.urls)
        {
            if let Some(list) =
                evidence
                    .document_lists
                    .get(&(name.to_owned(), column.name.clone(), path.clone()))
            {
                expand = Some(list.clone());
            }
        }
        let _ = writeln!(out);
        for note in &notes {
            let _ = writeln!(out, "# {note}");
        }
        for path in &shape.documents {
            if expand.is_none() {
                let _ = writeln!(
                    out,
                    "# CHECK: {path} names JSON documents; if one lists more files, add\n\
                     # expand = {{ list = \"...\" }} so they are erased too."
                );
            }
        }
        if let Some(list) = &expand {
            let _ = writeln!(
                out,
                "# Guess: the JSON documents it names list more files at {list} (one was read)."
            );
        }
        let _ = writeln!(
            out,
            "# Guess: file references found in the sampled values.\n[[{section}.references]]\ncolumn = {}\npaths = [{}]",
            q(&column.name),
            paths.join(", ")
        );
        if let Some(list) = expand {
            let _ = writeln!(out, "expand = {{ list = {} }}", q(&list));
        }
    }
}

fn key_entry(path: &str, bucket: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!(
            "{{ path = {}, form = \"key\", bucket = {} }}",
            q(path),
            q(bucket)
        )
    } else {
        format!(
            "{{ path = {}, form = \"key\", bucket = {}, prefix = {} }}",
            q(path),
            q(bucket),
            q(prefix)
        )
    }
}

pub(super) fn write_mask(
    out: &mut String,
    section: &str,
    name: &str,
    table: &LiveTable,
    shapes: &BTreeMap<(String, String), ColumnShape>,
    links: &BTreeSet<String>,
) {
    let _ = writeln!(out, "\n[{section}.mask]");
    for column in &table.columns {
        if table.primary_key.contains(&column.name) || links.contains(&column.name) {
            continue;
        }
        let shape = shapes.get(&(name.to_owned(), column.name.clone()));
        let policy = match shape {
            Some(shape) if shape.has_references() => {
                let ty = column.sql_type.to_ascii_lowercase();
                if shape.json_objects && !shape.json_arrays {
                    "\"{}\"   # holds file references (JSON objects)".to_owned()
                } else if shape.json_arrays && !shape.json_objects {
                    "\"[]\"   # holds file references (JSON arrays)".to_owned()
                } else if column.nullable {
                    "\"null\"   # holds file references".to_owned()
                } else if ty.contains("json") {
                    "\"{}\"   # holds file references; NOT NULL".to_owned()
                } else {
                    "{ fixed = \"\" }   # holds file references; NOT NULL".to_owned()
                }
            }
            Some(shape) if shape.sampled == 0 => format!(
                "{}   # CHECK: no value was sampled; if it holds files, list it under references",
                plain_policy(&column.sql_type, column.nullable)
            ),
            _ => plain_policy(&column.sql_type, column.nullable),
        };
        let _ = writeln!(out, "{} = {policy}", column.name);
    }
}
