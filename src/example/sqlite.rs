//! The example service on SQLite: the schema (see `sqlite_schema.sql`) and
//! inserts, one prepared statement per row inside one transaction per
//! chunk (SQLite runs in process: that is its fast path).

use sqlx::{AssertSqlSafe, SqlitePool};

use super::features::FEATURES;
use super::{Generated, MemberSummary, USER_AGENT, ip_address, prompt};
use crate::error::Error;

const SCHEMA: &str = include_str!("sqlite_schema.sql");
const FEATURE_TABLES: &str = include_str!("sqlite_feature_tables.sql");

/// What the timeline column holds (not personal; kept by the catalog).
const TIMELINE: &str = r#"{"queuedMs": 120, "runMs": 4200}"#;

pub(super) async fn create_schema(pool: &SqlitePool) -> Result<(), Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(AssertSqlSafe(SCHEMA))
        .execute(&mut *tx)
        .await?;
    for feature in &FEATURES {
        let sql = FEATURE_TABLES.replace("{name}", feature.stem);
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Client ids for `n` requests: the next `n` after the stored last value.
pub(super) async fn next_client_ids(pool: &SqlitePool, n: usize) -> Result<Vec<i64>, Error> {
    let last: i64 = sqlx::query_scalar(
        "UPDATE client_id_seq SET last_value = last_value + $1 RETURNING last_value",
    )
    .bind(n as i64)
    .fetch_one(pool)
    .await?;
    Ok((last - n as i64 + 1..=last).collect())
}

pub(super) async fn insert_chunk(
    pool: &SqlitePool,
    members: &[MemberSummary],
    chunk: &[Generated],
) -> Result<usize, Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut rows = 0;
    for g in chunk {
        let table = g.client_table;
        let member = &members[g.member].key;
        // The current table spreads its rows over time, as PostgreSQL's
        // partitions do.
        let sql = if table == "client" {
            format!(
                "INSERT INTO {table} (id, client_key, type, ip_address, user_agent, created_at) \
                 VALUES ($1, $2, $3, $4, $5, strftime('%Y-%m-%dT%H:%M:%fZ', '2025-06-01', ($1 % 500) || ' days'))"
            )
        } else {
            format!(
                "INSERT INTO {table} (id, client_key, type, ip_address, user_agent) \
                 VALUES ($1, $2, $3, $4, $5)"
            )
        };
        sqlx::query(AssertSqlSafe(sql))
            .bind(g.client_id)
            .bind(member)
            .bind(g.data.feature_type)
            .bind(ip_address(g))
            .bind(USER_AGENT)
            .execute(&mut *tx)
            .await?;
        let name = FEATURES
            .iter()
            .find(|f| f.feature_type == g.data.feature_type)
            .expect("generated types are the example's features")
            .stem;
        let feature_id: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "INSERT INTO {name}_feature (client_id, prompt, option, legacy_option) \
             VALUES ($1, $2, $3, $4) RETURNING id"
        )))
        .bind(g.client_id)
        .bind(prompt(member))
        .bind(g.data.option.as_ref().map(|o| o.to_string()))
        .bind(g.data.legacy_option.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {name}_task (feature_id, result, gpu, timeline) \
             VALUES ($1, $2, 'A100-80GB', $3)"
        )))
        .bind(feature_id)
        .bind(g.data.result.to_string())
        .bind(TIMELINE)
        .execute(&mut *tx)
        .await?;
        rows += 3;
    }
    tx.commit().await?;
    Ok(rows)
}
