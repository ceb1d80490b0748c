//! The example service on PostgreSQL: the schema (a partitioned current
//! client table, jsonb options, one id sequence for the three client
//! tables) and set-based inserts, a thousand requests a statement.

use sqlx::{AssertSqlSafe, PgPool};

use super::features::FEATURES;
use super::{Generated, MemberSummary, USER_AGENT, ip_address, prompt};
use crate::error::Error;

const SCHEMA: &str = include_str!("postgres_schema.sql");
const FEATURE_TABLES: &str = include_str!("postgres_feature_tables.sql");

pub(super) async fn create_schema(pool: &PgPool) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
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

/// Client ids for `n` requests, from the shared sequence.
pub(super) async fn next_client_ids(pool: &PgPool, n: usize) -> Result<Vec<i64>, Error> {
    Ok(
        sqlx::query_scalar("SELECT nextval('client_id_seq') FROM generate_series(1, $1)")
            .bind(n as i64)
            .fetch_all(pool)
            .await?,
    )
}

pub(super) async fn insert_chunk(
    pool: &PgPool,
    members: &[MemberSummary],
    chunk: &[Generated],
) -> Result<usize, Error> {
    let mut tx = pool.begin().await?;
    let mut rows = 0;
    for table in ["client_old", "client_temp", "client"] {
        let mine: Vec<&Generated> = chunk.iter().filter(|g| g.client_table == table).collect();
        if mine.is_empty() {
            continue;
        }
        let ids: Vec<i64> = mine.iter().map(|g| g.client_id).collect();
        let keys: Vec<&str> = mine
            .iter()
            .map(|g| members[g.member].key.as_str())
            .collect();
        let types: Vec<&str> = mine.iter().map(|g| g.data.feature_type).collect();
        let ips: Vec<String> = mine.iter().map(|g| ip_address(g)).collect();
        // The current table is partitioned by created_at: spread the rows.
        let (created_column, created_value) = if table == "client" {
            (
                ", created_at",
                ", timestamptz '2025-06-01' + (id % 500) * interval '1 day'",
            )
        } else {
            ("", "")
        };
        let sql = format!(
            "INSERT INTO {table} (id, client_key, type, ip_address, user_agent{created_column}) \
             SELECT id, k, t, ip, $5{created_value} \
               FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, k, t, ip)"
        );
        rows += sqlx::query(AssertSqlSafe(sql))
            .bind(&ids)
            .bind(&keys)
            .bind(&types)
            .bind(&ips)
            .bind(USER_AGENT)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
    }
    for feature in &FEATURES {
        let mine: Vec<&Generated> = chunk
            .iter()
            .filter(|g| g.data.feature_type == feature.feature_type)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let name = feature.stem;
        let client_ids: Vec<i64> = mine.iter().map(|g| g.client_id).collect();
        let prompts: Vec<String> = mine
            .iter()
            .map(|g| prompt(&members[g.member].key))
            .collect();
        let options: Vec<Option<serde_json::Value>> =
            mine.iter().map(|g| g.data.option.clone()).collect();
        let legacy_options: Vec<Option<&str>> = mine
            .iter()
            .map(|g| g.data.legacy_option.as_deref())
            .collect();
        let results: Vec<serde_json::Value> = mine.iter().map(|g| g.data.result.clone()).collect();
        // One feature row and one task row per request; the task row points
        // at the feature row through the ids RETURNING gives back, matched
        // by client id.
        let sql = format!(
            "WITH f AS ( \
                 INSERT INTO {name}_feature (client_id, prompt, option, legacy_option) \
                 SELECT c, p, o, l FROM UNNEST($1::bigint[], $2::text[], $3::jsonb[], $5::text[]) AS u(c, p, o, l) \
                 RETURNING id, client_id) \
             INSERT INTO {name}_task (feature_id, result, gpu, timeline) \
             SELECT f.id, u.r, 'A100-80GB', jsonb_build_object('queuedMs', 120, 'runMs', 4200) \
               FROM f JOIN UNNEST($1::bigint[], $4::jsonb[]) AS u(c, r) ON u.c = f.client_id"
        );
        let tasks = sqlx::query(AssertSqlSafe(sql))
            .bind(&client_ids)
            .bind(&prompts)
            .bind(&options)
            .bind(&results)
            .bind(&legacy_options)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
        rows += tasks * 2;
    }
    tx.commit().await?;
    Ok(rows)
}
