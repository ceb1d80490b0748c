//! An indexed ListObjectsV2 for the test S3 server, for benchmarks: the same answer as
//! s3s-fs's, found by walking only the directory the prefix names.
//!
//! s3s-fs answers every ListObjectsV2 by walking the whole bucket, one blocking-pool
//! hop per file and a metadata read for each, then filtering by the prefix. With tens of
//! thousands of objects in a bucket a listing of one member's directory costs the
//! server seconds of this machine's CPU, where AWS answers from an index in one round
//! trip. [`Latency::set_indexed_listing`](super::s3_latency::Latency) turns this on
//! (off unless set); the modelled cost per call and per entry is charged either way.
//!
//! Only listings without a delimiter whose prefix's directory part is a plain relative
//! path are answered here; [`list`] returns `None` for the rest, which go to s3s-fs.

use std::path::{Component, Path, PathBuf};

use s3s::dto::{ListObjectsV2Input, ListObjectsV2Output, Object, Timestamp};

/// `input` answered from `bucket_dir` (`<root>/<bucket>`, which exists), or `None` when
/// this shortcut does not apply.
pub(super) fn list(
    bucket_dir: &Path,
    input: ListObjectsV2Input,
) -> Option<std::io::Result<ListObjectsV2Output>> {
    if input.delimiter.is_some() {
        return None;
    }
    let prefix = input
        .prefix
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_owned();
    let directory = match prefix.rfind('/') {
        Some(end) => plain_directory(&prefix[..end])?,
        None => PathBuf::new(),
    };
    Some(answer(bucket_dir, &directory, &prefix, input))
}

/// `dir` as a relative path of normal components (s3s-fs maps `a//b` to `a/b`).
fn plain_directory(dir: &str) -> Option<PathBuf> {
    let path = Path::new(dir);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_owned())
}

fn answer(
    bucket_dir: &Path,
    directory: &Path,
    prefix: &str,
    input: ListObjectsV2Input,
) -> std::io::Result<ListObjectsV2Output> {
    let mut objects = Vec::new();
    let start = bucket_dir.join(directory);
    if start.is_dir() {
        walk(bucket_dir, &start, prefix, &mut objects)?;
    }
    objects.sort_by(|a: &Object, b: &Object| a.key.cmp(&b.key));
    // As s3s-fs: resume after the later of the continuation token and StartAfter.
    let resume = match (
        input.continuation_token.as_deref(),
        input.start_after.as_deref(),
    ) {
        (Some(token), Some(after)) => Some(token.max(after)),
        (token, after) => token.or(after),
    };
    if let Some(resume) = resume {
        objects.retain(|o| o.key.as_deref().unwrap_or("") > resume);
    }
    let max_keys = input.max_keys.unwrap_or(1000);
    let limit = usize::try_from(max_keys).unwrap_or(1000);
    let is_truncated = limit > 0 && objects.len() > limit;
    objects.truncate(limit);
    let next_continuation_token = if is_truncated {
        objects.last().and_then(|o| o.key.clone())
    } else {
        None
    };
    Ok(ListObjectsV2Output {
        key_count: Some(i32::try_from(objects.len()).unwrap_or(i32::MAX)),
        max_keys: Some(max_keys),
        is_truncated: Some(is_truncated),
        contents: (!objects.is_empty()).then_some(objects),
        continuation_token: input.continuation_token,
        next_continuation_token,
        encoding_type: input.encoding_type,
        name: Some(input.bucket),
        prefix: input.prefix,
        start_after: input.start_after,
        ..Default::default()
    })
}

/// Every file under `dir` whose key (its path below `bucket_dir`, `/`-joined) starts
/// with `prefix`.
fn walk(
    bucket_dir: &Path,
    dir: &Path,
    prefix: &str,
    objects: &mut Vec<Object>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(bucket_dir, &path, prefix, objects)?;
            continue;
        }
        let Some(key) = key_of(bucket_dir, &path) else {
            continue;
        };
        if !key.starts_with(prefix) {
            continue;
        }
        let metadata = entry.metadata()?;
        objects.push(Object {
            key: Some(key),
            last_modified: Some(Timestamp::from(metadata.modified()?)),
            size: Some(i64::try_from(metadata.len()).unwrap_or(i64::MAX)),
            ..Default::default()
        });
    }
    Ok(())
}

/// The key s3s-fs gives the file at `path`: its components below the bucket, joined by
/// `/` (`None` for a name that is not UTF-8, which s3s-fs skips too).
fn key_of(bucket_dir: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(bucket_dir).ok()?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}
