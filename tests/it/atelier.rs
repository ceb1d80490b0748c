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
    // What loading sent is not the erasure's.
    app.s3.counters().reset();
    let status = app.erase_to_done(&member.key).await;
    assert_eq!(status.record.anomaly_count, 0, "{:#?}", status.anomalies);
    // The exports bucket is in another region: every call the erasure made
    // about it (the manifests read, the deletions, the read-back) was
    // signed for that region; the other buckets' for the default one.
    let counters = app.s3.counters();
    assert_eq!(
        counters.regions_signed_for(atelier::EXPORTS_BUCKET),
        ["eu-central-1"]
    );
    assert_eq!(
        counters.regions_signed_for(atelier::RENDERS_BUCKET),
        [app.s3.region()]
    );

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
    // The record counts the anomaly among those that could hide data.
    let record = app.engine.report(status.record.id).await.unwrap();
    assert_eq!(record.verification.anomalies_that_could_hide_data, 1);
    assert!(
        record
            .verification
            .checks
            .iter()
            .any(|c| c.contains("could hide data") && c.contains(": 1;")),
        "{:#?}",
        record.verification.checks
    );
}

/// The record states what verification checked, per check: here one client
/// table keeps the member's key by policy, so that check cannot be made,
/// and the record says so instead of claiming it.
async fn the_record_says_which_key_checks_were_made(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    crate::catalog::copy_dir(&crate::app::atelier_catalog(), dir.path());
    let main = dir.path().join("catalog.toml");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace("member_uuid = \"null\"", "member_uuid = \"keep\""),
    )
    .unwrap();
    let path = dir.path().to_owned();
    let app =
        TestApp::start_service(backend, ExampleService::Atelier, move |c| c.catalog = path).await;
    let plan = app.engine.compile_catalog().await.unwrap();
    assert!(
        plan.findings
            .iter()
            .any(|f| f.message.contains("subject column \"member_uuid\" is kept")),
        "{:#?}",
        plan.findings
    );
    let loaded = load(&app, 1, 3).await;
    let status = app.erase_to_done(&loaded.members[0].key).await;
    let record = app.engine.report(status.record.id).await.unwrap();
    let checks = &record.verification.checks;
    assert!(
        checks
            .iter()
            .any(|c| c == "client tables legacy_requests: no row left carrying the member's key"),
        "{checks:#?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c
                .starts_with("not checked: client tables studio_requests keep the member's key")),
        "{checks:#?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("objects listed in the manifest: ")),
        "{checks:#?}"
    );
    assert!(
        !record.verification.method.contains("no client row"),
        "{}",
        record.verification.method
    );
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
    the_record_says_which_key_checks_were_made,
);

/// `lethe catalog check` as an operator runs it: safe on the shipped
/// catalog (exit 0, with what each feature reads and how rows are proven);
/// unsafe, exit 5, with every problem named, when a link's target is not
/// unique and nothing says how duplicates are resolved, when link columns
/// differ in type without a cast, and when a key is not the table's key.
/// PostgreSQL only: the binary's output does not depend on the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_check_explains_and_refuses_what_is_unsafe() {
    let app = start(Backend::Postgres).await;
    let out = app.run_lethe(&["catalog", "check"]).await;
    let shown = crate::app::text(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        crate::app::text(&out.stderr)
    );
    assert!(shown.contains("safe: no problem found"), "{shown}");
    assert!(
        shown.contains("studio_requests.job_ref points at render_jobs.job_id"),
        "{shown}"
    );
    assert!(
        shown.contains("proven: render_jobs.job_id claimed by"),
        "{shown}"
    );
    assert!(
        shown.contains("manifest_key: $ (bare key in atelier-exports)"),
        "{shown}"
    );

    let dir = tempfile::tempdir().unwrap();
    crate::catalog::copy_dir(&crate::app::atelier_catalog(), dir.path());
    let edit = |file: &str, from: &str, to: &str| {
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit("features/export.toml", "duplicates = \"member_only\"", "");
    edit("features/render.toml", "cast = \"bigint\"", "");
    edit(
        "catalog.toml",
        "key = [\"req_no\", \"requested_on\"]",
        "key = \"req_no\"",
    );
    let out = app
        .lethe_command()
        .env("LETHE_CATALOG", dir.path())
        .args(["catalog", "check", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        crate::app::text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["safe"], false);
    let errors: Vec<String> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["file"], e["entry"], e["message"]))
        .collect();
    let all = errors.join("\n");
    assert!(
        all.contains("key req_no is not unique in studio_requests"),
        "{all}"
    );
    assert!(
        all.contains(
            "studio_requests.job_ref (text) and render_jobs.job_id (bigint) differ in type"
        ),
        "{all}"
    );
    assert!(all.contains("features/render.toml"), "{all}");
    assert!(
        all.contains("features/export.toml")
            && all.contains("declare duplicates = \\\"member_only\\\""),
        "{all}"
    );
}
