//! Reading and writing the example service's tables (and lethe's, by plain
//! SQL) the same way on both backends, for assertions: a row snapshot, a
//! member's rows, whether a row is masked, a bare SQL submission. Each
//! helper holds one statement per backend; the tests above it do not know
//! which backend they run on.

use std::collections::{BTreeMap, BTreeSet};

use lethe::store::{Backed, Store};
use sqlx::AssertSqlSafe;
use uuid::Uuid;
use uuid::fmt::Hyphenated;

const CLIENT_TABLES: [&str; 3] = ["client_old", "client_temp", "client"];

pub struct Service<'a> {
    store: &'a Store,
}

impl<'a> Service<'a> {
    pub fn new(store: &'a Store) -> Self {
        Service { store }
    }

    /// Every row of the example tables: (table, id) -> the whole row as text.
    pub async fn snapshot(&self) -> BTreeMap<(String, String), String> {
        let mut rows = BTreeMap::new();
        for table in lethe::example::tables() {
            let found: Vec<(String, String)> = match self.store.db() {
                Backed::Postgres(pool) => sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT id::text, t::text FROM {table} t"
                )))
                .fetch_all(pool)
                .await
                .expect("snapshot query"),
                Backed::Sqlite(pool) => {
                    let columns: Vec<String> =
                        sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
                            .bind(&table)
                            .fetch_all(pool)
                            .await
                            .expect("columns");
                    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
                    sqlx::query_as(AssertSqlSafe(format!(
                        "SELECT CAST(id AS TEXT), json_array({}) FROM {table}",
                        quoted.join(", ")
                    )))
                    .fetch_all(pool)
                    .await
                    .expect("snapshot query")
                }
            };
            for (id, text) in found {
                rows.insert((table.clone(), id), text);
            }
        }
        rows
    }

    /// The (table, id) of every row that belongs to a member: client rows
    /// with their key, and the feature and task rows below them.
    pub async fn rows_of(&self, member: &str) -> BTreeSet<(String, String)> {
        let text = |expr: &str| match self.store.db() {
            Backed::Postgres(_) => format!("{expr}::text"),
            Backed::Sqlite(_) => format!("CAST({expr} AS TEXT)"),
        };
        let mut rows = BTreeSet::new();
        for client in CLIENT_TABLES {
            let sql = format!("SELECT {} FROM {client} WHERE client_key = $1", text("id"));
            for id in self.strings(&sql, member).await {
                rows.insert((client.to_owned(), id));
            }
        }
        for feature in lethe::example::features::FEATURES.iter().map(|f| f.stem) {
            let sql = format!(
                "SELECT {f_id}, {t_id} FROM {feature}_feature f \
                   LEFT JOIN {feature}_task t ON t.feature_id = f.id \
                  WHERE f.client_id IN (SELECT id FROM client_old WHERE client_key = $1 \
                                        UNION ALL SELECT id FROM client_temp WHERE client_key = $1 \
                                        UNION ALL SELECT id FROM client WHERE client_key = $1)",
                f_id = text("f.id"),
                t_id = text("t.id"),
            );
            for (feature_id, task_id) in self.pairs(&sql, member).await {
                rows.insert((format!("{feature}_feature"), feature_id));
                rows.insert((format!("{feature}_task"), task_id));
            }
        }
        rows
    }

    /// Whether every catalogued column of the example catalog is masked in
    /// this row.
    pub async fn is_masked(&self, table: &str, id: &str) -> bool {
        let sqlite = matches!(self.store.db(), Backed::Sqlite(_));
        let empty = if sqlite { "'{}'" } else { "'{}'::jsonb" };
        let check = match table {
            "client_old" | "client_temp" | "client" => {
                "client_key IS NULL AND ip_address IS NULL AND user_agent IS NULL".to_owned()
            }
            t if t.ends_with("_feature") => {
                format!("prompt IS NULL AND option = {empty} AND legacy_option IS NULL")
            }
            _ => format!("result = {empty} AND gpu IS NOT NULL"),
        };
        let id_param = if sqlite {
            "CAST($1 AS INTEGER)"
        } else {
            "$1::text::bigint"
        };
        let sql = format!("SELECT {check} FROM {table} WHERE id = {id_param}");
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap_or_else(|e| panic!("reading {table} {id}: {e}")),
            Backed::Sqlite(pool) => sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap_or_else(|e| panic!("reading {table} {id}: {e}")),
        }
    }

    /// A bare SQL submission, `INSERT INTO erasure_requests (subject_key)
    /// VALUES (...) RETURNING id`: the id, or None when the database folded
    /// it into an active request (on SQLite such an INSERT returns no row).
    pub async fn insert_request(&self, subject: &str) -> Option<Uuid> {
        const SQL: &str = "INSERT INTO erasure_requests (subject_key) VALUES ($1) RETURNING id";
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_scalar(SQL)
                .bind(subject)
                .fetch_optional(pool)
                .await
                .expect("bare INSERT"),
            Backed::Sqlite(pool) => sqlx::query_scalar::<_, Hyphenated>(SQL)
                .bind(subject)
                .fetch_optional(pool)
                .await
                .expect("bare INSERT")
                .map(Hyphenated::into_uuid),
        }
    }

    /// Requests of a subject by state: (state, how many), by state name.
    pub async fn states_of(&self, subject: &str) -> Vec<(String, i64)> {
        const SQL: &str = "SELECT state, count(*) FROM erasure_requests WHERE subject_key = $1 \
                           GROUP BY state ORDER BY state";
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_as(SQL).bind(subject).fetch_all(pool).await,
            Backed::Sqlite(pool) => sqlx::query_as(SQL).bind(subject).fetch_all(pool).await,
        }
        .expect("states")
    }

    /// Makes the next client id `next` (PostgreSQL: the sequence; SQLite:
    /// the generator's counter table).
    pub async fn set_next_client_id(&self, next: i64) {
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query("SELECT setval('client_id_seq', $1)")
                .bind(next - 1)
                .execute(pool)
                .await
                .map(drop),
            Backed::Sqlite(pool) => sqlx::query("UPDATE client_id_seq SET last_value = $1")
                .bind(next - 1)
                .execute(pool)
                .await
                .map(drop),
        }
        .expect("setting the next client id");
    }

    /// Requests that still hold this raw subject key.
    pub async fn raw_key_count(&self, subject: &str) -> i64 {
        const SQL: &str = "SELECT count(*) FROM erasure_requests WHERE subject_key = $1";
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_scalar(SQL).bind(subject).fetch_one(pool).await,
            Backed::Sqlite(pool) => sqlx::query_scalar(SQL).bind(subject).fetch_one(pool).await,
        }
        .expect("count")
    }

    /// Every request's subject hash, in submission order.
    pub async fn subject_hashes(&self) -> Vec<Option<String>> {
        const SQL: &str = "SELECT subject_hash FROM erasure_requests ORDER BY requested_at";
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await,
            Backed::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await,
        }
        .expect("hashes")
    }

    /// Manifest rows and objects left for a request.
    pub async fn manifest_size(&self, id: Uuid) -> i64 {
        const SQL: &str = "SELECT (SELECT count(*) FROM erasure_manifest_objects WHERE request_id = $1) \
                                + (SELECT count(*) FROM erasure_manifest_rows WHERE request_id = $1)";
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_scalar(SQL).bind(id).fetch_one(pool).await,
            Backed::Sqlite(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(id.hyphenated())
                    .fetch_one(pool)
                    .await
            }
        }
        .expect("manifest size")
    }

    /// Records a failed attempt on a request, as a worker does: its error,
    /// and either a retry scheduled later (`failed` false) or Failed,
    /// resumable from where it stood.
    pub async fn record_failed_attempt(&self, id: Uuid, error: &str, failed: bool) {
        const RETRYING: &str =
            "UPDATE erasure_requests SET last_error = $2, attempts = 1 WHERE id = $1";
        const FAILED: &str = "UPDATE erasure_requests SET last_error = $2, attempts = 8, \
                              resume_state = state, state = 'failed' WHERE id = $1";
        let sql = if failed { FAILED } else { RETRYING };
        let changed = match self.store.db() {
            Backed::Postgres(pool) => {
                let done = sqlx::query(sql).bind(id).bind(error).execute(pool).await;
                done.expect("recording a failed attempt").rows_affected()
            }
            Backed::Sqlite(pool) => {
                let done = sqlx::query(sql)
                    .bind(id.hyphenated())
                    .bind(error)
                    .execute(pool)
                    .await;
                done.expect("recording a failed attempt").rows_affected()
            }
        };
        assert_eq!(changed, 1, "request {id}");
    }

    /// A request recorded as done with its raw key still in place, as a
    /// lethe from before minimisation left them.
    pub async fn insert_unminimised_done_request(&self, subject: &str) -> Uuid {
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_scalar(
                "INSERT INTO erasure_requests (subject_key, state, finished_at) \
                 VALUES ($1, 'done', now()) RETURNING id",
            )
            .bind(subject)
            .fetch_one(pool)
            .await
            .expect("insert"),
            Backed::Sqlite(pool) => sqlx::query_scalar::<_, Hyphenated>(
                "INSERT INTO erasure_requests (subject_key, state, finished_at) \
                 VALUES ($1, 'done', strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) RETURNING id",
            )
            .bind(subject)
            .fetch_one(pool)
            .await
            .expect("insert")
            .into_uuid(),
        }
    }

    /// A request's raw key and hash.
    pub async fn key_and_hash(&self, id: Uuid) -> (Option<String>, Option<String>) {
        const SQL: &str = "SELECT subject_key, subject_hash FROM erasure_requests WHERE id = $1";
        match self.store.db() {
            Backed::Postgres(pool) => sqlx::query_as(SQL).bind(id).fetch_one(pool).await,
            Backed::Sqlite(pool) => {
                sqlx::query_as(SQL)
                    .bind(id.hyphenated())
                    .fetch_one(pool)
                    .await
            }
        }
        .expect("key and hash")
    }

    async fn strings(&self, sql: &str, param: &str) -> Vec<String> {
        match self.store.db() {
            Backed::Postgres(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                    .bind(param)
                    .fetch_all(pool)
                    .await
            }
            Backed::Sqlite(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
                    .bind(param)
                    .fetch_all(pool)
                    .await
            }
        }
        .expect("query")
    }

    async fn pairs(&self, sql: &str, param: &str) -> Vec<(String, String)> {
        match self.store.db() {
            Backed::Postgres(pool) => {
                sqlx::query_as(AssertSqlSafe(sql.to_owned()))
                    .bind(param)
                    .fetch_all(pool)
                    .await
            }
            Backed::Sqlite(pool) => {
                sqlx::query_as(AssertSqlSafe(sql.to_owned()))
                    .bind(param)
                    .fetch_all(pool)
                    .await
            }
        }
        .expect("query")
    }
}
