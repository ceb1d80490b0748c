//! One throwaway PostgreSQL cluster per test-binary process, one fresh database per test.
//!
//! The cluster is started lazily by the first test that asks for it and lives until the
//! process exits: the server runs under `setpriv --pdeathsig SIGQUIT`, so it shuts down
//! (immediately) when the test process dies, however it dies. Set
//! `LETHE_TEST_DATABASE_URL` to a server URL (pointing at an admin database) to use an
//! existing server instead; databases created there are left behind.
//!
//! Only the server URL lives in the static: every `#[tokio::test]` has its own runtime,
//! and a pool built on one runtime breaks when that runtime ends.
//!
//! That cluster runs with fsync off. [`durable_server_url`] starts a second one, with
//! PostgreSQL's durable defaults, for the benchmarks that count commits; the test suite
//! does not use it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

/// Environment variable naming an existing server to use instead of a throwaway cluster.
pub const EXTERNAL_SERVER_ENV: &str = "LETHE_TEST_DATABASE_URL";

static SERVER_URL: OnceLock<String> = OnceLock::new();
static DURABLE_SERVER_URL: OnceLock<String> = OnceLock::new();

/// A database of its own for one test. Migrations are the caller's job.
pub struct TestDatabase {
    /// Connection URL of this database (hand it to a `lethe` child process).
    pub url: String,
    /// The database name, `lethe_test_<uuid>`.
    pub name: String,
    /// A pool of at most 10 connections to this database, bound to the caller's runtime.
    pub pool: PgPool,
}

/// URL of the `postgres` admin database on the shared test server, starting the
/// throwaway cluster on first use. Blocks for about a second on first use.
pub fn server_url() -> String {
    SERVER_URL
        .get_or_init(|| match std::env::var(EXTERNAL_SERVER_ENV) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => super::pg_cluster::start_cluster(),
        })
        .clone()
}

/// URL of the `postgres` admin database on a throwaway cluster of its own with fsync,
/// synchronous commit and full-page writes on (PostgreSQL's defaults), started on first
/// use; for benchmarks whose figure is a commit rate. With `LETHE_TEST_DATABASE_URL`
/// set, that server, whatever its settings.
pub fn durable_server_url() -> String {
    DURABLE_SERVER_URL
        .get_or_init(|| match std::env::var(EXTERNAL_SERVER_ENV) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => super::pg_cluster::start_cluster_with(super::pg_cluster::Durability::FsyncOn),
        })
        .clone()
}

/// Creates an empty, uniquely named database and returns a pool connected to it.
pub async fn fresh_database() -> TestDatabase {
    fresh_database_on(server_url).await
}

/// [`fresh_database`] on the durable cluster ([`durable_server_url`]).
pub async fn fresh_durable_database() -> TestDatabase {
    fresh_database_on(durable_server_url).await
}

/// A fresh database on the server `server` names (starting it if need be).
async fn fresh_database_on(server: fn() -> String) -> TestDatabase {
    // The first call starts the cluster, which blocks: keep it off the runtime thread.
    let server = match tokio::task::spawn_blocking(server).await {
        Ok(url) => url,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("starting the test PostgreSQL cluster was cancelled: {e}"),
    };
    // The name comes from a UUID only, which is what makes the unquoted DDL safe.
    let name = format!("lethe_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection(&server).await;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
    // Closing politely keeps the server log free of "unexpected EOF" noise.
    let _ = admin.close().await;

    let url = with_database(&server, &name);
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to fresh database {name} failed: {e}"));
    TestDatabase { url, name, pool }
}

/// Terminates every backend connected to `db_name` (except this call's own) and waits
/// until they are gone, to simulate the database dropping its connections. Returns how
/// many backends were terminated.
pub async fn terminate_connections(db_name: &str) -> usize {
    let mut admin = admin_connection(&server_url()).await;
    // Two steps on purpose: inside one WHERE clause the planner may evaluate
    // pg_terminate_backend before the datname filter and kill every backend.
    let candidates: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db_name)
    .fetch_all(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("listing backends of {db_name} failed: {e}"));
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT t.pid FROM unnest($1::int4[]) AS t(pid) WHERE pg_terminate_backend(t.pid)",
    )
    .bind(&candidates)
    .fetch_all(&mut admin)
    .await
    .unwrap_or_else(|e| panic!("terminating backends of {db_name} failed: {e}"));

    // pg_terminate_backend only sends a signal; wait so callers see a deterministic state.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&pids)
                .fetch_one(&mut admin)
                .await
                .expect("pg_stat_activity is always readable by the admin user");
        if alive == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "backends {pids:?} of {db_name} did not exit within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = admin.close().await;
    pids.len()
}

async fn admin_connection(server: &str) -> PgConnection {
    PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server's admin database failed: {e}"))
}

/// Replaces the database (path) part of a PostgreSQL URL, keeping any query string.
fn with_database(server_url: &str, db: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{db}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(with_database("postgres://h:5", "x"), "postgres://h:5/x");
        assert_eq!(
            with_database("postgres://h/admin?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
