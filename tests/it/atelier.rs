//! The second example service, atelier, whose schema was written
//! independently of lethe's assumptions (see `src/example/atelier/`): a
//! partitioned log keyed by two columns, a legacy log whose ids collide with
//! it, client rows pointing at feature rows, a join table, feature rows
//! pointing back through a per-log column, uuids, text holding digits, bare
//! keys, `json` and JSON-in-text columns, requests copied between logs.
//!
//! Each test asserts the exact objects deleted (the S3 server's own record)
//! and the exact cells changed (every other cell of every table
//! byte-identical), on both backends.

use std::collections::{BTreeMap, BTreeSet};

use lethe::example::atelier::{self, AtelierLoad, AtelierSpec, Row};
use lethe::references::ObjectRef;
use lethe::store::{Backed, Backend};
use serde_json::{Map, Value, json};
use sqlx::AssertSqlSafe;

use crate::app::{ExampleService, TestApp};

pub type Snapshot = BTreeMap<(String, String), Map<String, Value>>;

/// Per row of the member: the cells erasure sets, or None when it deletes the row.
pub type Changes = BTreeMap<(String, String), Option<Vec<(&'static str, Value)>>>;

pub async fn start(backend: Backend) -> TestApp {
    TestApp::start_service(backend, ExampleService::Atelier, |_| {}).await
}

pub async fn load(app: &TestApp, members: usize, requests: usize) -> AtelierLoad {
    atelier::load(
        app.store(),
        &app.objects,
        &AtelierSpec {
            members,
            requests_per_member: requests,
            member_seed: 7,
        },
    )
    .await
    .expect("atelier loads")
}

/// Every row of every atelier table, by (table, key), as a JSON object
/// whose JSON-holding strings are parsed (so both backends read alike).
pub async fn snapshot(app: &TestApp) -> Snapshot {
    let mut rows = Snapshot::new();
    for (table, key) in atelier::row_names() {
        let texts: Vec<String> = match app.store().db() {
            Backed::Postgres(pool) => sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT row_to_json(t)::text FROM {table} t"
            )))
            .fetch_all(pool)
            .await
            .unwrap(),
            Backed::Sqlite(pool) => {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                        .bind(table)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let pairs: Vec<String> =
                    columns.iter().map(|c| format!("'{c}', \"{c}\"")).collect();
                sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT json_object({}) FROM {table}",
                    pairs.join(", ")
                )))
                .fetch_all(pool)
                .await
                .unwrap()
            }
        };
        for text in texts {
            let Value::Object(mut row) = serde_json::from_str(&text).unwrap() else {
                panic!("a row is an object")
            };
            for value in row.values_mut() {
                normalise(value);
            }
            let name: Vec<String> = key.iter().map(|c| plain(&row[*c])).collect();
            rows.insert((table.to_owned(), name.join("/")), row);
        }
    }
    rows
}

/// JSON held as text is read as JSON; numbers as their text.
fn normalise(value: &mut Value) {
    if let Value::String(text) = value
        && let Ok(parsed @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(text)
    {
        *value = parsed;
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The (table, key) of every row of a member, derived from the data the
/// way the service links it, and the cells erasure changes in each: None
/// for a deleted row.
pub fn expected_changes(before: &Snapshot, member: &str) -> Changes {
    let rows_of = |table: &'static str| rows_of(before, table);
    let mut changes = BTreeMap::new();
    let mut jobs = BTreeSet::new();
    let mut req_nos = BTreeSet::new();
    let mut legacy_ids = BTreeSet::new();
    for (key, row) in rows_of("legacy_requests") {
        if row["member_uuid"] == json!(member) {
            changes.insert(("legacy_requests".to_owned(), key), None);
            legacy_ids.insert(plain(&row["id"]));
            if !row["job_id"].is_null() && row["kind"] == json!("RENDER") {
                jobs.insert(plain(&row["job_id"]));
            }
        }
    }
    for (key, row) in rows_of("studio_requests") {
        if row["member_uuid"] == json!(member) {
            changes.insert(
                ("studio_requests".to_owned(), key),
                Some(vec![("member_uuid", Value::Null), ("device", Value::Null)]),
            );
            req_nos.insert(plain(&row["req_no"]));
            if !row["job_ref"].is_null() && row["kind"] == json!("RENDER") {
                jobs.insert(plain(&row["job_ref"]));
            }
        }
    }
    for (key, row) in rows_of("render_jobs") {
        if jobs.contains(&plain(&row["job_id"])) {
            changes.insert(
                ("render_jobs".to_owned(), key),
                Some(vec![("prompt", json!("(erased)")), ("params", json!({}))]),
            );
        }
    }
    for (key, row) in rows_of("render_outputs") {
        if jobs.contains(&plain(&row["job"])) {
            changes.insert(
                ("render_outputs".to_owned(), key),
                Some(vec![
                    ("files", json!([])),
                    ("preview", Value::Null),
                    ("meta", Value::Null),
                ]),
            );
        }
    }
    let mut exports = BTreeSet::new();
    for (_, row) in rows_of("export_links") {
        if req_nos.contains(&plain(&row["req_no"])) {
            exports.insert(plain(&row["export_uuid"]));
        }
    }
    for (key, row) in rows_of("exports") {
        if exports.contains(&plain(&row["export_uuid"])) {
            changes.insert(
                ("exports".to_owned(), key),
                Some(vec![("options", json!({})), ("manifest_key", Value::Null)]),
            );
        }
    }
    for (key, row) in rows_of("avatar_uploads") {
        if req_nos.contains(&plain(&row["request_no"]))
            || legacy_ids.contains(&plain(&row["legacy_request_id"]))
        {
            changes.insert(("avatar_uploads".to_owned(), key), None);
        }
    }
    changes
}

fn rows_of<'a>(
    snapshot: &'a Snapshot,
    table: &'static str,
) -> impl Iterator<Item = (String, &'a Map<String, Value>)> {
    snapshot
        .iter()
        .filter(move |((t, _), _)| t == table)
        .map(|((_, k), row)| (k.clone(), row))
}

/// Checks that exactly the expected cells changed (and rows went), and
/// nothing else in any table.
pub fn assert_exact_changes(before: &Snapshot, after: &Snapshot, expected: &Changes) {
    for (name, row) in before {
        match (expected.get(name), after.get(name)) {
            (Some(None), None) => {}
            (Some(None), Some(_)) => panic!("{name:?} should have been deleted"),
            (_, None) => panic!("{name:?} was deleted but is not the member's"),
            (None, Some(now)) => assert_eq!(now, row, "{name:?} changed but is not the member's"),
            (Some(Some(cells)), Some(now)) => {
                for (column, value) in row {
                    match cells.iter().find(|(c, _)| c == column) {
                        Some((_, masked)) => {
                            assert_eq!(&now[column], masked, "{name:?}.{column} is not masked")
                        }
                        None => assert_eq!(
                            &now[column], value,
                            "{name:?}.{column} changed but is not catalogued as personal"
                        ),
                    }
                }
            }
        }
    }
    for name in after.keys() {
        assert!(before.contains_key(name), "{name:?} appeared");
    }
}

/// The keys deleted from S3, by the server's own record.
pub fn deleted(app: &TestApp) -> BTreeSet<ObjectRef> {
    app.s3
        .counters()
        .deletion_requests()
        .into_iter()
        .map(|(bucket, key)| ObjectRef { bucket, key })
        .collect()
}

async fn the_catalog_compiles_with_nothing_to_say(backend: Backend) {
    let app = start(backend).await;
    let plan = app.engine.compile_catalog().await.unwrap();
    assert!(plan.findings.is_empty(), "{:#?}", plan.findings);
    assert_eq!(plan.clients.len(), 2);
    assert_eq!(
        plan.tables.len(),
        6,
        "every table but the join table is erased"
    );
}

async fn a_member_is_erased_exactly(backend: Backend) {
    let app = start(backend).await;
    let loaded = load(&app, 3, 9).await;
    let before = snapshot(&app).await;
    // The logs' ids collide: an id of one is a req_no of the other.
    let legacy: BTreeSet<String> = before
        .iter()
        .filter(|((t, _), _)| t == "legacy_requests")
        .map(|(_, row)| plain(&row["id"]))
        .collect();
    let studio: BTreeSet<String> = before
        .iter()
        .filter(|((t, _), _)| t == "studio_requests")
        .map(|(_, row)| plain(&row["req_no"]))
        .collect();
    assert!(
        legacy.intersection(&studio).count() >= 3,
        "the test data has colliding ids"
    );

    let member = &loaded.members[1];
    let status = app.erase_to_done(&member.key).await;
    assert_eq!(status.record.anomaly_count, 0, "{:#?}", status.anomalies);

    let expected: BTreeSet<ObjectRef> = member.objects.iter().cloned().collect();
    assert_eq!(
        deleted(&app),
        expected,
        "exactly the member's objects are deleted"
    );
    for object in &expected {
        assert!(
            !app.s3.exists(&object.bucket, &object.key).await,
            "{object} survived"
        );
    }
    for other in loaded.members.iter().filter(|m| m.key != member.key) {
        for object in &other.objects {
            assert!(
                app.s3.exists(&object.bucket, &object.key).await,
                "{object} was deleted"
            );
        }
    }
    for object in &loaded.shared {
        assert!(
            app.s3.exists(&object.bucket, &object.key).await,
            "{object} is shared"
        );
    }
    let changes = expected_changes(&before, &member.key);
    assert!(
        changes.keys().any(|(t, _)| t == "exports")
            && changes.keys().any(|(t, _)| t == "avatar_uploads")
    );
    let copied = before
        .iter()
        .filter(|((t, _), row)| t == "studio_requests" && row["member_uuid"] == json!(member.key))
        .filter(|(_, row)| {
            before.iter().any(|((t, _), legacy)| {
                t == "legacy_requests"
                    && !legacy["job_id"].is_null()
                    && plain(&legacy["job_id"]) == plain(&row["job_ref"])
            })
        })
        .count();
    assert!(
        copied >= 1,
        "the member has a request copied between the logs"
    );
    assert_exact_changes(&before, &snapshot(&app).await, &changes);
}

/// A job another member's request also points at cannot be proven to be
/// the member's: it is reported and left, with its outputs and files.
async fn a_job_another_member_claims_is_reported_not_erased(backend: Backend) {
    let app = start(backend).await;
    let loaded = load(&app, 2, 3).await;
    let (member, other) = (&loaded.members[0], &loaded.members[1]);
    let before = snapshot(&app).await;
    // The other member's first job (from the legacy log).
    let shared_job = before
        .iter()
        .find(|((t, _), row)| t == "legacy_requests" && row["member_uuid"] == json!(other.key))
        .map(|(_, row)| plain(&row["job_id"]))
        .unwrap();
    atelier::insert(
        app.store(),
        &Row {
            table: "studio_requests",
            values: vec![
                ("req_no", Some("9001".into())),
                ("requested_on", Some("2026-05-01".into())),
                ("member_uuid", Some(member.key.clone())),
                ("kind", Some("RENDER".into())),
                ("job_ref", Some(shared_job.clone())),
                ("device", Some("tablet".into())),
            ],
        },
    )
    .await
    .unwrap();
    let before = snapshot(&app).await;

    let status = app.erase_to_done(&member.key).await;
    let shared: Vec<_> = status
        .anomalies
        .iter()
        .filter(|a| a.kind == "shared_row")
        .collect();
    assert_eq!(shared.len(), 1, "{:#?}", status.anomalies);
    assert_eq!(shared[0].table_name.as_deref(), Some("render_jobs"));
    assert_eq!(shared[0].row_id.as_deref(), Some(shared_job.as_str()));
    assert!(
        !shared[0].detail.contains(&other.key),
        "anomalies name no member"
    );

    // Everything of the other member's is intact, the shared job included.
    for object in &other.objects {
        assert!(
            app.s3.exists(&object.bucket, &object.key).await,
            "{object} was deleted"
        );
    }
    let mut changes = expected_changes(&before, &member.key);
    changes.retain(|(table, key), _| {
        let shared_row = match table.as_str() {
            "render_jobs" => *key == shared_job,
            "render_outputs" => plain(&before[&(table.clone(), key.clone())]["job"]) == shared_job,
            _ => false,
        };
        !shared_row
    });
    assert_exact_changes(&before, &snapshot(&app).await, &changes);
    let expected: BTreeSet<ObjectRef> = member.objects.iter().cloned().collect();
    assert_eq!(deleted(&app), expected);
}

/// `job_ref` holds digits; one that is not canonical digits cannot be
/// matched exactly, so it is reported, never guessed at.
async fn a_job_ref_that_is_not_canonical_digits_is_reported(backend: Backend) {
    let app = start(backend).await;
    let loaded = load(&app, 1, 1).await;
    let member = &loaded.members[0];
    let job = snapshot(&app)
        .await
        .iter()
        .find(|((t, _), _)| t == "render_jobs")
        .map(|(_, row)| plain(&row["job_id"]))
        .unwrap();
    for (req_no, job_ref) in [("8001", format!("00{job}")), ("8002", "job-7".to_owned())] {
        atelier::insert(
            app.store(),
            &Row {
                table: "studio_requests",
                values: vec![
                    ("req_no", Some(req_no.into())),
                    ("requested_on", Some("2026-05-02".into())),
                    ("member_uuid", Some(member.key.clone())),
                    ("kind", Some("RENDER".into())),
                    ("job_ref", Some(job_ref)),
                    ("device", None),
                ],
            },
        )
        .await
        .unwrap();
    }
    let status = app.erase_to_done(&member.key).await;
    let unlinkable: Vec<_> = status
        .anomalies
        .iter()
        .filter(|a| a.kind == "unlinkable_value")
        .collect();
    assert_eq!(unlinkable.len(), 2, "{:#?}", status.anomalies);
    assert!(
        unlinkable
            .iter()
            .all(|a| a.table_name.as_deref() == Some("studio_requests"))
    );
    assert!(
        unlinkable
            .iter()
            .any(|a| a.row_id.as_deref() == Some("[\"8001\",\"2026-05-02\"]")),
        "{unlinkable:#?}"
    );
}

on_both_backends!(
    the_catalog_compiles_with_nothing_to_say,
    a_member_is_erased_exactly,
    a_job_another_member_claims_is_reported_not_erased,
    a_job_ref_that_is_not_canonical_digits_is_reported,
);
