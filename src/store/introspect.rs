//! What the database says about the service's tables, read once into a
//! plain [`LiveSchema`] for the catalog compiler and `lethe catalog init`:
//! whether a table exists, its columns (name, declared type, nullable), its
//! primary key, indexes (unique? partial?), foreign keys and size estimate;
//! and, for `catalog init`, a sample of a column's values. PostgreSQL is
//! asked through `pg_attribute`, `pg_index`, `pg_constraint` and
//! `pg_class`, SQLite through its `pragma_*` table functions. Names are
//! bound as values, never spliced, except in [`sample`], which takes only
//! names that passed [`Ident`] validation.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use super::{Store, on_backend};
use crate::catalog::live::{ForeignKey, LiveColumn, LiveIndex, LiveSchema, LiveTable};
use crate::catalog::{Ident, TableName};

/// One column as the database declares it.
pub type Column = LiveColumn;

/// The live schema of the named tables (`table` or `schema.table`); a
/// table that does not exist is left out.
pub async fn live_schema(
    store: &Store,
    names: impl IntoIterator<Item = String>,
) -> Result<LiveSchema, sqlx::Error> {
    let mut tables = BTreeMap::new();
    for name in names {
        let (schema, table) = match name.split_once('.') {
            Some((schema, table)) => (Some(schema.to_owned()), table.to_owned()),
            None => (None, name.clone()),
        };
        if let Some(live) = live_table(store, &table, schema.as_deref()).await? {
            tables.insert(name, live);
        }
    }
    Ok(LiveSchema {
        backend: store.backend(),
        tables,
    })
}

/// One table, or None when it does not exist.
pub async fn live_table(
    store: &Store,
    table: &str,
    schema: Option<&str>,
) -> Result<Option<LiveTable>, sqlx::Error> {
    let columns = columns(store, table, schema).await?;
    if columns.is_empty() {
        return Ok(None);
    }
    let (primary_key, indexes, foreign_keys, estimated_rows) = on_backend!(store.db(), pool => {
        let name = qualified(table, schema);
        let primary_key: Vec<String> = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
               CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY k.ord",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?;
        let indexes = sqlx::query(
            "SELECT i.indisunique, i.indpred IS NOT NULL, \
                    bool_and(k.attnum > 0), \
                    array_agg(a.attname::text ORDER BY k.ord) FILTER (WHERE a.attname IS NOT NULL) \
               FROM pg_index i \
               CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              WHERE i.indrelid = to_regclass($1) AND k.ord <= i.indnkeyatts \
              GROUP BY i.indexrelid, i.indisunique, i.indpred IS NOT NULL",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            let plain: bool = row.try_get(2)?;
            let columns: Option<Vec<String>> = row.try_get(3)?;
            Ok(plain.then(|| LiveIndex {
                unique: row.try_get(0).unwrap_or(false),
                partial: row.try_get(1).unwrap_or(true),
                columns: columns.unwrap_or_default(),
            }))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        let foreign_keys = sqlx::query(
            "SELECT array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(n, o) \
                            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), \
                    c.confrelid::regclass::text, \
                    array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(n, o) \
                            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) \
               FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'f'",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok(ForeignKey {
            columns: row.try_get(0)?,
            ref_table: row.try_get::<String, _>(1)?.replace('"', ""),
            ref_columns: row.try_get(2)?,
        }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let estimated_rows: Option<i64> = sqlx::query_scalar(
            "SELECT sum(c.reltuples) FILTER (WHERE c.reltuples > 0)::bigint FROM pg_class c \
              WHERE c.oid = to_regclass($1) \
                 OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass($1))",
        )
        .bind(&name)
        .fetch_one(pool)
        .await?;
        (primary_key, indexes, foreign_keys, estimated_rows)
    }, {
        let primary_key: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_table_info($1, coalesce($2, 'main')) WHERE pk > 0 ORDER BY pk",
        )
        .bind(table)
        .bind(schema)
        .fetch_all(pool)
        .await?;
        let listed: Vec<(String, bool, bool)> = sqlx::query_as(
            "SELECT name, \"unique\" = 1, partial = 1 FROM pragma_index_list($1, coalesce($2, 'main'))",
        )
        .bind(table)
        .bind(schema)
        .fetch_all(pool)
        .await?;
        let mut indexes = Vec::new();
        for (index, unique, partial) in listed {
            let names: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT name FROM pragma_index_info($1, coalesce($2, 'main')) ORDER BY seqno",
            )
            .bind(&index)
            .bind(schema)
            .fetch_all(pool)
            .await?;
            // An expression column has no name: such an index proves nothing.
            if names.iter().all(Option::is_some) {
                indexes.push(LiveIndex { columns: names.into_iter().flatten().collect(), unique, partial });
            }
        }
        let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list($1, coalesce($2, 'main')) ORDER BY id, seq",
        )
        .bind(table)
        .bind(schema)
        .fetch_all(pool)
        .await?;
        let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        for (id, ref_table, from, to) in rows {
            let fk = by_id.entry(id).or_insert_with(|| ForeignKey {
                columns: Vec::new(),
                ref_table,
                ref_columns: Vec::new(),
            });
            fk.columns.push(from);
            fk.ref_columns.extend(to);
        }
        (primary_key, indexes, by_id.into_values().collect::<Vec<_>>(), None)
    });
    Ok(Some(LiveTable {
        columns,
        primary_key,
        indexes,
        foreign_keys,
        estimated_rows,
    }))
}

/// The service's tables: every ordinary or partitioned table on the search
/// path (PostgreSQL; partitions are left out, their parent stands for
/// them) or in the main database (SQLite), but lethe's own.
pub async fn service_tables(store: &Store) -> Result<Vec<String>, sqlx::Error> {
    let names: Vec<String> = on_backend!(store.db(), pool => {
        sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
                AND n.nspname = ANY(current_schemas(false)) ORDER BY 1",
        )
        .fetch_all(pool)
        .await?
    }, {
        sqlx::query_scalar(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
               AND name NOT LIKE 'sqlite_%' ORDER BY 1",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(names
        .into_iter()
        .filter(|name| !name.starts_with("erasure_") && !name.starts_with("_sqlx"))
        .collect())
}

/// Up to `limit` non-null values of a column, as text, for `catalog init`
/// to guess what it holds.
pub async fn sample(
    store: &Store,
    table: &TableName,
    column: &Ident,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = match store.backend() {
        crate::backend::Backend::Postgres => format!(
            "SELECT {column}::text FROM {table} WHERE {column} IS NOT NULL LIMIT $1",
            column = column.quoted(),
            table = table.quoted()
        ),
        crate::backend::Backend::Sqlite => format!(
            "SELECT CAST({column} AS TEXT) FROM {table} WHERE {column} IS NOT NULL LIMIT $1",
            column = column.quoted(),
            table = table.quoted()
        ),
    };
    Ok(on_backend!(store.db(), pool => {
        sqlx::query_scalar(AssertSqlSafe(sql.clone())).bind(limit).fetch_all(pool).await?
    }, {
        sqlx::query_scalar(AssertSqlSafe(sql.clone())).bind(limit).fetch_all(pool).await?
    }))
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

/// `"schema"."table"` for `to_regclass`, from names the catalog validated
/// (letters, digits and `_` only, so the quotes cannot be escaped).
fn qualified(table: &str, schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("\"{schema}\".\"{table}\""),
        None => format!("\"{table}\""),
    }
}
