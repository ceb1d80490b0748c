//! The compiler without a database: a catalog and a hand-written live
//! schema in, a plan or every problem out.

use std::collections::BTreeMap;

use super::*;
use crate::backend::Backend;
use crate::catalog::live::{LiveColumn, LiveIndex};

fn table(columns: &[(&str, &str)], primary_key: &[&str], indexed: &[&str]) -> LiveTable {
    LiveTable {
        columns: columns
            .iter()
            .map(|(name, ty)| LiveColumn {
                name: (*name).into(),
                sql_type: (*ty).into(),
                nullable: !primary_key.contains(name),
            })
            .collect(),
        primary_key: primary_key.iter().map(|c| (*c).into()).collect(),
        indexes: indexed
            .iter()
            .map(|c| LiveIndex {
                columns: vec![(*c).into()],
                unique: false,
                partial: false,
            })
            .collect(),
        ..LiveTable::default()
    }
}

fn schema() -> LiveSchema {
    let mut tables = BTreeMap::new();
    tables.insert(
        "log".into(),
        table(
            &[
                ("no", "bigint"),
                ("day", "date"),
                ("member", "uuid"),
                ("kind", "text"),
                ("job_ref", "text"),
            ],
            &["no", "day"],
            &["member", "job_ref", "no"],
        ),
    );
    tables.insert(
        "jobs".into(),
        table(&[("id", "bigint"), ("params", "json")], &["id"], &[]),
    );
    LiveSchema {
        backend: Backend::Postgres,
        tables,
    }
}

fn catalog(log_key: &str, link: &str) -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("features")).unwrap();
    std::fs::write(
        dir.path().join("catalog.toml"),
        format!(
            "name = \"t\"\n[storage]\nbuckets = [\"b\"]\n[[clients]]\ntable = \"log\"\nkey = {log_key}\n\
             subject = \"member\"\nfeature_type = \"kind\"\n[clients.mask]\nmember = \"null\"\njob_ref = \"keep\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("features/job.toml"),
        format!(
            "types = [\"JOB\"]\n[feature]\ntable = \"jobs\"\nkey = \"id\"\n{link}\n\
             [[feature.references]]\ncolumn = \"params\"\npaths = [\"file\"]\n[feature.mask]\nparams = \"{{}}\"\n"
        ),
    )
    .unwrap();
    let loaded = Catalog::load(dir.path()).unwrap();
    (dir, loaded)
}

#[test]
fn a_reverse_link_with_a_cast_compiles_and_proves_ownership_per_namespace() {
    let (_dir, catalog) = catalog(
        "[\"no\", \"day\"]",
        "link = { kind = \"client_to_feature\", client_column = \"job_ref\", cast = \"bigint\" }",
    );
    let plan = Plan::compile(catalog, &schema()).unwrap();
    let FeatureTables::Present(rows) = &plan.features[0].tables else {
        panic!("jobs exists")
    };
    let link = rows.links[0].as_ref().unwrap();
    assert!(
        link.select_sql
            .contains("\"jobs\".\"id\" = ANY(CAST($1 AS bigint[]))"),
        "{}",
        link.select_sql
    );
    assert_eq!(rows.namespaces.len(), 1);
    assert!(
        rows.namespaces[0].sql.contains("IS NOT TRUE"),
        "{}",
        rows.namespaces[0].sql
    );
    // The text side of the cast must hold canonical digits: a data check.
    assert_eq!(plan.data_checks.len(), 1);
    assert!(
        plan.data_checks[0].sql.contains("\"log\".\"job_ref\" !~"),
        "{}",
        plan.data_checks[0].sql
    );
    // json is verified as jsonb.
    let verify = plan.tables["jobs"].verify_sql.as_deref().unwrap();
    assert!(verify.contains("CAST(\"params\" AS jsonb)"), "{verify}");
}

#[test]
fn rows_with_a_null_key_are_counted_only_where_the_schema_allows_them() {
    let link =
        "link = { kind = \"client_to_feature\", client_column = \"job_ref\", cast = \"bigint\" }";
    let (_dir, loaded) = catalog("[\"no\", \"day\"]", link);
    let plan = Plan::compile(loaded, &schema()).unwrap();
    assert_eq!(
        plan.clients[0].null_key_sql, None,
        "a primary key is NOT NULL"
    );

    // SQLite lets a non-integer primary key column hold NULL.
    let mut nullable = schema();
    let log = nullable.tables.get_mut("log").unwrap();
    log.columns
        .iter_mut()
        .find(|c| c.name == "day")
        .unwrap()
        .nullable = true;
    let (_dir, loaded) = catalog("[\"no\", \"day\"]", link);
    let plan = Plan::compile(loaded, &nullable).unwrap();
    let sql = plan.clients[0].null_key_sql.as_deref().expect("counted");
    assert!(
        sql.contains("\"log\".\"no\" IS NULL OR \"log\".\"day\" IS NULL"),
        "{sql}"
    );
}

#[test]
fn every_unsafe_thing_is_reported_at_once() {
    let (_dir, catalog) = catalog(
        "\"no\"",
        "link = { kind = \"client_to_feature\", client_column = \"job_ref\" }",
    );
    let err = Plan::compile(catalog, &schema()).unwrap_err();
    let problems: Vec<String> = err.problems().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains("key no is not unique in log"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("differ in type") && problems[1].contains("cast = \"bigint\""),
        "{problems:#?}"
    );
}
