//! Guessing from names alone: which column of a table looks like the
//! member's key, which like a feature type, which like a pointer to another
//! table. Every guess here is only a candidate: `catalog init` keeps a link
//! only when sampled rows confirm it, and says in a comment what it guessed.

use super::super::live::{LiveSchema, LiveTable};

/// Words in a column name that suggest it holds the member's key.
const SUBJECT_WORDS: [&str; 7] = [
    "client_key",
    "member",
    "user",
    "customer",
    "account",
    "subject",
    "owner_key",
];

/// Column names that suggest a request's kind.
const TYPE_NAMES: [&str; 8] = [
    "type",
    "kind",
    "feature_type",
    "feature",
    "category",
    "job_type",
    "request_type",
    "action",
];

/// Generic names of a column pointing at a request row.
const REQUEST_POINTERS: [&str; 5] = [
    "client_id",
    "request_id",
    "request_no",
    "req_no",
    "client_request_id",
];

/// The table name without a trailing plural `s`.
pub fn singular(table: &str) -> &str {
    let name = table.rsplit('.').next().unwrap_or(table);
    name.strip_suffix('s').unwrap_or(name)
}

/// The column most likely to hold the member's key, if any: not part of
/// the key, named like a member, user, customer or account key.
pub fn subject_column(table: &LiveTable) -> Option<String> {
    table
        .columns
        .iter()
        .filter(|c| !table.primary_key.contains(&c.name))
        .find(|c| {
            let name = c.name.to_ascii_lowercase();
            SUBJECT_WORDS.iter().any(|word| name.contains(word))
                && !name.ends_with("_name")
                && !name.contains("agent")
        })
        .map(|c| c.name.clone())
}

/// The column most likely to name a request's feature type.
pub fn type_column(table: &LiveTable) -> Option<String> {
    TYPE_NAMES.iter().find_map(|wanted| {
        table
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(wanted))
            .map(|c| c.name.clone())
    })
}

/// A client table's columns another table may point at: its key when it
/// is one column, else its first key column and any column named `id`.
pub fn pointed_at(table: &LiveTable) -> Vec<String> {
    let mut columns = Vec::new();
    match table.primary_key.as_slice() {
        [only] => columns.push(only.clone()),
        [first, ..] => columns.push(first.clone()),
        [] => {}
    }
    if table.column("id").is_some() && !columns.iter().any(|c| c == "id") {
        columns.push("id".to_owned());
    }
    columns
}

/// How well column `pointer` of some table names client table `client`'s
/// column `target`: 2 for a name that spells the client table
/// (`legacy_request_id` for `legacy_requests.id`), 1 for a generic
/// request pointer (`client_id`, `request_no`) or the same name, 0 for none.
pub fn points_at_client(pointer: &str, client: &str, target: &str) -> u8 {
    let pointer = pointer.to_ascii_lowercase();
    let singular = singular(client).to_ascii_lowercase();
    if pointer == format!("{singular}_{target}") || pointer == format!("{singular}_id") {
        return 2;
    }
    if pointer == target && target != "id" {
        return 1;
    }
    let client_word = client
        .to_ascii_lowercase()
        .split('_')
        .any(|word| word.starts_with("client"));
    if REQUEST_POINTERS.contains(&pointer.as_str()) && (pointer != "client_id" || client_word) {
        return 1;
    }
    0
}

/// Whether column `pointer` (of a client table) looks like it holds the key
/// `target` of table `table`: the same name, `<singular>_id`, or the same
/// stem before `_id`/`_ref`/`_no`/`_uuid`.
pub fn points_at_table(pointer: &str, table: &str, target: &str) -> bool {
    let pointer = pointer.to_ascii_lowercase();
    let target = target.to_ascii_lowercase();
    if pointer == target && target != "id" {
        return true;
    }
    if pointer == format!("{}_id", singular(table).to_ascii_lowercase()) {
        return true;
    }
    let stem = |name: &str| -> Option<String> {
        ["_id", "_ref", "_no", "_uuid", "_key"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .map(str::to_owned)
    };
    match (stem(&pointer), stem(&target)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// How well column `pointer` of a candidate task table names the feature
/// table `feature`'s key column `target`: higher is better, 0 is no match.
/// A generic `feature_id` counts only with the tables' shared name prefix.
pub fn points_at_feature(pointer: &str, task: &str, feature: &str, target: &str) -> usize {
    let pointer = pointer.to_ascii_lowercase();
    let target = target.to_ascii_lowercase();
    let prefix = common_prefix(task, feature);
    if pointer == format!("{}_id", singular(feature).to_ascii_lowercase()) {
        return 100 + prefix;
    }
    if (pointer == target && target != "id")
        || target
            .strip_suffix("_id")
            .is_some_and(|stem| stem == pointer)
    {
        return 50 + prefix;
    }
    if pointer == "feature_id" && prefix >= 3 {
        return prefix;
    }
    0
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Tables that look like client tables: a member-key column and a type
/// column.
pub fn client_tables(live: &LiveSchema) -> Vec<(String, String, String)> {
    live.tables
        .iter()
        .filter_map(|(name, table)| {
            Some((name.clone(), subject_column(table)?, type_column(table)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_scored_by_how_much_they_say() {
        assert_eq!(
            points_at_client("legacy_request_id", "legacy_requests", "id"),
            2
        );
        assert_eq!(
            points_at_client("request_no", "studio_requests", "req_no"),
            1
        );
        assert_eq!(points_at_client("client_id", "client_old", "id"), 1);
        assert_eq!(
            points_at_client("client_id", "studio_requests", "req_no"),
            0
        );
        assert_eq!(
            points_at_client("image_key", "studio_requests", "req_no"),
            0
        );
        assert!(points_at_table("job_ref", "render_jobs", "job_id"));
        assert!(points_at_table("job_id", "render_jobs", "job_id"));
        assert!(!points_at_table("device", "render_jobs", "job_id"));
        assert!(points_at_feature("job", "render_outputs", "render_jobs", "job_id") > 0);
        assert!(
            points_at_feature("feature_id", "upscale_task", "upscale_feature", "id")
                > points_at_feature("feature_id", "upscale_task", "colorize_feature", "id")
        );
    }
}
