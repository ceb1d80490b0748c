//! The catalog checked against a live database: a wrong table, column or
//! policy stops start-up with an error naming the file and the entry. On
//! both backends: PostgreSQL is asked through `pg_attribute`, SQLite through
//! `pragma_table_info`.

use std::path::Path;

use lethe::catalog::Catalog;
use lethe::store::Backend;
use lethe::worker::WorkerOptions;

use crate::app::{TestApp, example_catalog};

/// A copy of the example catalog with one file rewritten.
fn catalog_with(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example_catalog(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn compile_error(app: &TestApp, dir: &Path) -> String {
    let catalog = Catalog::load(dir).unwrap();
    app.engine.compile(catalog).await.unwrap_err().to_string()
}

async fn the_example_catalog_compiles_without_warnings(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let plan = app.engine.compile_catalog().await.unwrap();
    assert!(plan.findings.is_empty(), "{:#?}", plan.findings);
    assert_eq!(plan.clients.len(), 3);
    assert_eq!(plan.tables.len(), lethe::example::tables().len());
    // Identifiers are quoted, values bound.
    let client = &plan.clients[2];
    let bound = match backend {
        Backend::Postgres => "\"client_key\" = CAST($1 AS character varying(64))",
        Backend::Sqlite => "\"client_key\" = $1",
    };
    assert!(client.page_sql.contains(bound), "{}", client.page_sql);
}

async fn an_unknown_column_names_the_file_and_entry(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let dir = catalog_with(
        "features/upscale.toml",
        "result = \"{}\"",
        "resultt = \"{}\"",
    );
    let err = compile_error(&app, dir.path()).await;
    assert!(err.contains("features/upscale.toml"), "{err}");
    assert!(err.contains("task (upscale_task): mask.resultt"), "{err}");
    assert!(
        err.contains("column \"resultt\" does not exist in table upscale_task"),
        "{err}"
    );
}

async fn an_unknown_table_names_the_file_and_entry(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let dir = catalog_with(
        "catalog.toml",
        "table = \"client_temp\"",
        "table = \"client_tmp\"",
    );
    let err = compile_error(&app, dir.path()).await;
    assert!(
        err.contains("catalog.toml: clients[1] (client_tmp)"),
        "{err}"
    );
    assert!(err.contains("does not exist in the database"), "{err}");
}

async fn a_policy_that_cannot_apply_is_refused(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let dir = catalog_with(
        "features/upscale.toml",
        "gpu = \"keep\"\ntimeline = \"keep\"\ncreated_at = \"keep\"",
        "gpu = \"keep\"\ntimeline = \"keep\"\ncreated_at = \"{}\"",
    );
    let err = compile_error(&app, dir.path()).await;
    assert!(
        err.contains("task (upscale_task): mask.created_at"),
        "{err}"
    );
    // The type as each database reports it.
    let timestamp = match backend {
        Backend::Postgres => "timestamp with time zone",
        Backend::Sqlite => "timestamp",
    };
    assert!(
        err.contains(&format!(
            "needs a json, jsonb or text column, not {timestamp}"
        )),
        "{err}"
    );

    let dir = catalog_with(
        "catalog.toml",
        "user_agent = \"null\"",
        "user_agent = \"null\"\ntype = \"null\"",
    );
    let err = compile_error(&app, dir.path()).await;
    assert!(err.contains("mask.type"), "{err}");
    assert!(err.contains("NOT NULL"), "{err}");
}

async fn uncatalogued_columns_are_warned_about(backend: Backend) {
    let app = TestApp::start_on(backend).await;
    let dir = catalog_with("features/upscale.toml", "gpu = \"keep\"\n", "");
    let catalog = Catalog::load(dir.path()).unwrap();
    let plan = app.engine.compile(catalog).await.unwrap();
    assert!(
        plan.findings
            .iter()
            .any(|w| w.entry.contains("upscale_task") && w.message.contains("\"gpu\"")),
        "{:#?}",
        plan.findings
    );
}

async fn a_worker_refuses_to_start_on_a_broken_catalog(backend: Backend) {
    let dir = catalog_with(
        "features/text_to_image.toml",
        "table = \"text_to_image_task\"",
        "table = \"t2i_task\"",
    );
    let path = dir.path().to_owned();
    let app = TestApp::start_on_with(backend, move |c| c.catalog = path).await;
    let err = app
        .engine
        .worker(WorkerOptions::default())
        .await
        .err()
        .expect("start-up fails");
    assert!(
        err.to_string().contains("features/text_to_image.toml"),
        "{err}"
    );
}

on_both_backends!(
    the_example_catalog_compiles_without_warnings,
    an_unknown_column_names_the_file_and_entry,
    an_unknown_table_names_the_file_and_entry,
    a_policy_that_cannot_apply_is_refused,
    uncatalogued_columns_are_warned_about,
    a_worker_refuses_to_start_on_a_broken_catalog,
);
