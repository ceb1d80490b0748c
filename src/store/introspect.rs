//! What the database says about the service's tables, for the catalog
//! check at start-up: whether a table exists, its columns (name, declared
//! type, nullable), and whether a column leads an index. PostgreSQL is asked
//! through `pg_attribute` and `pg_index`, SQLite through `pragma_table_info`,
//! `pragma_index_list` and `pragma_index_info`. Names are bound as values,
//! never spliced.

use sqlx::Row;

use super::{Store, on_backend};

/// One column as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// PostgreSQL: `format_type()` (e.g. `jsonb`, `character varying(64)`).
    /// SQLite: the declared type, lowercased (e.g. `integer`, `text`, `json`).
    pub sql_type: String,
    pub nullable: bool,
}

/// Whether `table` (in `schema`, or on the search path / in `main`) exists.
pub async fn table_exists(
    store: &Store,
    table: &str,
    schema: Option<&str>,
) -> Result<bool, sqlx::Error> {
    Ok(on_backend!(store.db(), pool => {
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(qualified(table, schema))
            .fetch_one(pool)
            .await?
    }, {
        sqlx::query_scalar(
            "SELECT count(*) > 0 FROM pragma_table_list WHERE name = $1 AND schema = coalesce($2, 'main') \
               AND type IN ('table', 'view')",
        )
        .bind(table)
        .bind(schema)
        .fetch_one(pool)
        .await?
    }))
}

/// The table's columns in order; empty when the table does not exist.
pub async fn columns(
    store: &Store,
    table: &str,
    schema: Option<&str>,
) -> Result<Vec<Column>, sqlx::Error> {
    Ok(on_backend!(store.db(), pool => {
        sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
             FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(qualified(table, schema))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok(Column { name: row.try_get(0)?, sql_type: row.try_get(1)?, nullable: row.try_get(2)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?
    }, {
        // A primary key column may be NULL in SQLite unless declared NOT
        // NULL, except INTEGER PRIMARY KEY (the rowid), which never is.
        sqlx::query(
            "SELECT name, lower(type), \"notnull\" = 0 AND NOT (pk = 1 AND lower(type) = 'integer') \
               FROM pragma_table_info($1, coalesce($2, 'main')) ORDER BY cid",
        )
        .bind(table)
        .bind(schema)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok(Column { name: row.try_get(0)?, sql_type: row.try_get(1)?, nullable: row.try_get(2)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?
    }))
}

/// Whether some index of `table` starts with `column`.
pub async fn leads_an_index(
    store: &Store,
    table: &str,
    schema: Option<&str>,
    column: &str,
) -> Result<bool, sqlx::Error> {
    Ok(on_backend!(store.db(), pool => {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index i \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
              WHERE i.indrelid = to_regclass($1) AND a.attname = $2)",
        )
        .bind(qualified(table, schema))
        .bind(column)
        .fetch_one(pool)
        .await?
    }, {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pragma_index_list($1, coalesce($3, 'main')) AS il, \
                    pragma_index_info(il.name, coalesce($3, 'main')) AS ii \
              WHERE ii.seqno = 0 AND ii.name = $2)",
        )
        .bind(table)
        .bind(column)
        .bind(schema)
        .fetch_one(pool)
        .await?
    }))
}

/// `"schema"."table"` for `to_regclass`, from names the catalog validated
/// (letters, digits and `_` only, so the quotes cannot be escaped).
fn qualified(table: &str, schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("\"{schema}\".\"{table}\""),
        None => format!("\"{table}\""),
    }
}
