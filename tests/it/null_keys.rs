//! Rows whose key column is NULL, which SQLite allows in a primary key that
//! is not an INTEGER: lethe cannot name them, so it reports them and never
//! lets a NULL become `""` or `0` (which would name another member's row).
//! The member's unnamed client row still carries their key, so the request
//! cannot be proven complete and stops in Failed, saying so.
//!
//! SQLite only: PostgreSQL refuses NULL in a primary key.

use lethe::store::{Backed, Backend};
use sqlx::AssertSqlSafe;

use crate::app::{ExampleService, TestApp};

const BUCKET: &str = "lethe-example-results";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_key_is_reported_and_never_names_another_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("features")).unwrap();
    std::fs::write(
        dir.path().join("catalog.toml"),
        format!(
            "name = \"nulls\"\n[storage]\nbuckets = [\"{BUCKET}\"]\n\
             [[clients]]\ntable = \"requests\"\nkey = \"id\"\nsubject = \"member\"\nfeature_type = \"kind\"\n\
             [clients.mask]\nmember = \"null\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("features/job.toml"),
        "types = [\"JOB\"]\n[feature]\ntable = \"jobs\"\nkey = \"id\"\nclient_id = \"req\"\n\
         [[feature.references]]\ncolumn = \"payload\"\npaths = [\"file\"]\n[feature.mask]\npayload = \"null\"\n",
    )
    .unwrap();
    let path = dir.path().to_owned();
    let app = TestApp::start_service(Backend::Sqlite, ExampleService::Seed, move |c| {
        c.catalog = path
    })
    .await;
    let Backed::Sqlite(pool) = app.store().db() else {
        unreachable!()
    };
    let file =
        |n: u32| format!("{{\"file\": {{\"bucket\": \"{BUCKET}\", \"key\": \"jobs/{n}.png\"}}}}");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE requests (id text PRIMARY KEY, member text, kind text NOT NULL);
         CREATE INDEX requests_member ON requests (member);
         CREATE TABLE jobs (id text PRIMARY KEY, req text, payload text);
         CREATE INDEX jobs_req ON jobs (req);
         INSERT INTO requests VALUES ('r1', 'm0', 'JOB'), (NULL, 'm0', 'JOB'), ('', 'other', 'JOB'), ('0', 'other', 'JOB');
         INSERT INTO jobs VALUES ('j1', 'r1', '{}'), (NULL, 'r1', '{}'), ('j3', '', '{}'), ('j4', '0', '{}');",
        file(1),
        file(2),
        file(3),
        file(4)
    )))
    .execute(pool)
    .await
    .unwrap();
    for n in 1..=4 {
        app.s3
            .put(BUCKET, &format!("jobs/{n}.png"), b"x".to_vec())
            .await;
    }
    let before: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, member FROM requests WHERE member = 'other' ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();

    let id = app.submit("m0").await;
    app.run_worker_once().await;
    let status = app.engine.status(id).await.unwrap();

    let unnamed: Vec<_> = status
        .anomalies
        .iter()
        .filter(|a| a.kind == "unaddressable_row")
        .map(|a| a.table_name.clone().unwrap_or_default())
        .collect();
    assert_eq!(unnamed, ["jobs", "requests"], "{:#?}", status.anomalies);
    assert_eq!(status.record.state, lethe::State::Failed);
    let error = status.record.last_error.clone().unwrap_or_default();
    assert!(error.contains("still carry the member's key"), "{error}");

    // The named rows of the member are erased, the unnamed ones left.
    assert!(!app.s3.exists(BUCKET, "jobs/1.png").await);
    assert!(
        app.s3.exists(BUCKET, "jobs/2.png").await,
        "an unnamed row's file is not followed"
    );
    let masked: Option<String> = sqlx::query_scalar("SELECT member FROM requests WHERE id = 'r1'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(masked, None);
    // Nothing of the rows named '' and '0' changed.
    for n in [3, 4] {
        assert!(app.s3.exists(BUCKET, &format!("jobs/{n}.png")).await);
    }
    let after: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, member FROM requests WHERE member = 'other' ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(after, before);
    let payloads: Vec<Option<String>> =
        sqlx::query_scalar("SELECT payload FROM jobs WHERE id IN ('j3', 'j4') ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(payloads, vec![Some(file(3)), Some(file(4))]);
}
