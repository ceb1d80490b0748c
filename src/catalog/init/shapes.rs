//! What sampled values of a JSON or text column hold: where in them file
//! references sit (array elements generalised to `[*]`), in which form, in
//! which buckets, and which URLs point at hosts that are not S3 (a CDN in
//! front of a bucket, or something else, like a webhook).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::references::{Resolution, Resolver};

/// References found in a column's samples, by the path they were at.
#[derive(Debug, Clone, Default)]
pub struct ColumnShape {
    /// Paths of `{bucket, key}` objects.
    pub objects: BTreeSet<String>,
    /// Paths of S3 URLs and `s3://` URIs.
    pub urls: BTreeSet<String>,
    /// Paths of URLs on hosts that are not S3, with the hosts and, per
    /// host, one URL path seen (to ask S3 which bucket holds it).
    pub other_hosts: BTreeMap<String, BTreeMap<String, String>>,
    /// Paths of strings that look like bare keys, with a few of them.
    pub keys: BTreeMap<String, Vec<String>>,
    /// Buckets the references name.
    pub buckets: BTreeSet<String>,
    /// Keys of referenced objects, for spotting ones many rows share.
    pub referenced: Vec<(String, String)>,
    /// Paths whose objects are JSON documents (`.json`).
    pub documents: BTreeSet<String>,
    /// Whether samples were JSON objects (so `"{}"` masks them) or arrays.
    pub json_objects: bool,
    pub json_arrays: bool,
    /// How many values were sampled.
    pub sampled: usize,
}

impl ColumnShape {
    pub fn has_references(&self) -> bool {
        !(self.objects.is_empty()
            && self.urls.is_empty()
            && self.other_hosts.is_empty()
            && self.keys.is_empty())
    }
}

/// Reads a column's sampled values (as text).
pub fn analyse(samples: &[String], resolver: &Resolver) -> ColumnShape {
    let mut shape = ColumnShape {
        sampled: samples.len(),
        ..ColumnShape::default()
    };
    for text in samples {
        let trimmed = text.trim();
        let value = if trimmed.starts_with(['{', '[']) {
            match serde_json::from_str::<Value>(trimmed) {
                Ok(value) => value,
                Err(_) => continue,
            }
        } else {
            Value::String(trimmed.to_owned())
        };
        match &value {
            Value::Object(_) => shape.json_objects = true,
            Value::Array(_) => shape.json_arrays = true,
            _ => {}
        }
        walk(&value, "$", resolver, &mut shape);
    }
    shape
}

fn child(location: &str, name: &str) -> String {
    if location == "$" {
        name.to_owned()
    } else {
        format!("{location}.{name}")
    }
}

fn walk(value: &Value, location: &str, resolver: &Resolver, shape: &mut ColumnShape) {
    match value {
        Value::Object(map) => {
            let field = |name: &str| {
                map.get(name)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
            };
            let reference = field("bucket").zip(field("key"));
            if let Some((bucket, key)) = reference {
                shape.objects.insert(location.to_owned());
                note(shape, location, bucket, key);
            }
            for (name, item) in map {
                // A reference object's own fields are read with it; others
                // beside them may hold more files.
                let own = reference.is_some() && ["bucket", "key", "url"].contains(&name.as_str());
                if plain_name(name) && !own {
                    walk(item, &child(location, name), resolver, shape);
                }
            }
        }
        Value::Array(items) => {
            let location = if location == "$" {
                "[*]".to_owned()
            } else {
                format!("{location}[*]")
            };
            for item in items {
                walk(item, &location, resolver, shape);
            }
        }
        Value::String(text) => string(text, location, resolver, shape),
        _ => {}
    }
}

/// The catalog's path language takes letters, digits, `_` and `-`.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn string(text: &str, location: &str, resolver: &Resolver, shape: &mut ColumnShape) {
    if crate::references::s3_url::is_url(text) {
        match resolver.resolve_url(text) {
            Resolution::Object { object, .. } | Resolution::Protected { object, .. } => {
                shape.urls.insert(location.to_owned());
                note(shape, location, &object.bucket, &object.key);
            }
            Resolution::Ambiguous { plus, .. } => {
                shape.urls.insert(location.to_owned());
                note(shape, location, &plus.bucket, &plus.key);
            }
            Resolution::Foreign { .. } => {
                if let Some((host, path)) = host_and_path(text) {
                    shape
                        .other_hosts
                        .entry(location.to_owned())
                        .or_default()
                        .entry(host)
                        .or_insert(path);
                }
            }
        }
    } else if looks_like_key(text) {
        let keys = shape.keys.entry(location.to_owned()).or_default();
        if keys.len() < 5 {
            keys.push(text.to_owned());
        }
        if text.ends_with(".json") {
            shape.documents.insert(location.to_owned());
        }
    }
}

fn note(shape: &mut ColumnShape, location: &str, bucket: &str, key: &str) {
    shape.buckets.insert(bucket.to_owned());
    shape.referenced.push((bucket.to_owned(), key.to_owned()));
    if key.ends_with(".json") {
        shape.documents.insert(location.to_owned());
    }
}

/// `https://host/path?query` -> (host, path still encoded).
fn host_and_path(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://")?.1;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    Some((host.to_ascii_lowercase(), path.to_owned()))
}

/// Where in a JSON document (a manifest) a list of keys or URLs sits:
/// the path of the first array whose strings all look like keys or URLs.
pub fn list_in_document(document: &Value) -> Option<String> {
    fn find(value: &Value, location: &str) -> Option<String> {
        match value {
            Value::Array(items) if !items.is_empty() => {
                let listed = items.iter().all(|item| {
                    item.as_str().is_some_and(|text| {
                        looks_like_key(text) || crate::references::s3_url::is_url(text)
                    }) || item.get("key").is_some()
                });
                if listed {
                    return Some(if location == "$" {
                        "[*]".to_owned()
                    } else {
                        format!("{location}[*]")
                    });
                }
                None
            }
            Value::Object(map) => map
                .iter()
                .filter(|(name, _)| plain_name(name))
                .find_map(|(name, item)| find(item, &child(location, name))),
            _ => None,
        }
    }
    find(document, "$")
}

/// A string that looks like an S3 key: a path with a file extension, no
/// spaces at its ends, not a URL.
fn looks_like_key(text: &str) -> bool {
    let Some((_, name)) = text.rsplit_once('/') else {
        return false;
    };
    let extension = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    text.trim() == text
        && !text.contains("://")
        && (1..=5).contains(&extension.len())
        && extension.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_every_form() {
        let resolver = Resolver::accepting_any_bucket(Vec::new());
        let samples = vec![
            r#"{"reference": {"bucket": "up", "key": "a/b.png"}, "inputs": ["s3://up/c.png"], "extras": {"callback": "https://hooks.example/x"}}"#.to_owned(),
            r#"[{"key": "out/1.png", "bytes": 3}]"#.to_owned(),
            "m0/r1/0 small.webp".to_owned(),
            "https://cdn.example/a%20b.png".to_owned(),
        ];
        let shape = analyse(&samples, &resolver);
        assert!(shape.objects.contains("reference"));
        assert!(shape.urls.contains("inputs[*]"));
        assert!(shape.other_hosts["extras.callback"].contains_key("hooks.example"));
        assert!(shape.keys.contains_key("[*].key"));
        assert!(shape.keys.contains_key("$"));
        assert!(shape.other_hosts["$"].contains_key("cdn.example"));
        assert_eq!(shape.buckets, BTreeSet::from(["up".to_owned()]));
        assert!(shape.json_objects && shape.json_arrays);
    }
}
