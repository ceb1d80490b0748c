//! Running the statements the catalog compiles at start-up
//! ([`crate::catalog::Plan`]): the service's own tables, whose names and
//! columns lethe learns from the catalog. The SQL is already in the
//! backend's dialect (the catalog compiler asked [`super::Store::backend`]);
//! this module binds the values the way that backend wants them.
//!
//! The rule it keeps: values are always bound, never spliced. A list of row
//! ids is bound as one parameter: a `text[]` on PostgreSQL, a JSON array of
//! strings on SQLite (the compiled SQL reads it with `json_each`).

use sqlx::{AssertSqlSafe, Row};

use super::{Store, Tx, on_backend};
pub use crate::catalog::keys::Arg;
use crate::error::Error;

/// Binds `args` to a query of either backend, in order.
macro_rules! bind_all {
    ($query:expr, $args:expr, |$ids:ident| $bind_ids:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(value) => query.bind(value.clone()),
                Arg::OptText(value) => query.bind(value.clone()),
                Arg::Int(value) => query.bind(*value),
                Arg::TextList($ids) => query.bind($bind_ids),
            };
        }
        query
    }};
}

/// Rows of text columns (NULL as None).
pub async fn fetch_rows(
    store: &Store,
    sql: &str,
    args: &[Arg],
) -> Result<Vec<Vec<Option<String>>>, Error> {
    let rows = on_backend!(store.db(), pool => {
        let query = bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids.clone());
        query.fetch_all(pool).await?.iter().map(|row| {
            (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect::<Result<Vec<_>, _>>()
        }).collect::<Result<Vec<_>, _>>()?
    }, {
        let query = bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids_json(ids));
        query.fetch_all(pool).await?.iter().map(|row| {
            (0..row.len()).map(|i| row.try_get::<Option<String>, _>(i)).collect::<Result<Vec<_>, _>>()
        }).collect::<Result<Vec<_>, _>>()?
    });
    Ok(rows)
}

/// A single count.
pub async fn fetch_count(store: &Store, sql: &str, args: &[Arg]) -> Result<i64, Error> {
    Ok(on_backend!(store.db(), pool => {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids.clone())
            .fetch_one(pool).await?
    }, {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids_json(ids))
            .fetch_one(pool).await?
    }))
}

/// One row of counts (`SELECT (SELECT count(*) ...), ...`), in column order.
pub async fn fetch_counts(store: &Store, sql: &str, args: &[Arg]) -> Result<Vec<i64>, Error> {
    Ok(on_backend!(store.db(), pool => {
        let row = bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids.clone())
            .fetch_one(pool).await?;
        (0..row.len()).map(|i| row.try_get::<i64, _>(i)).collect::<Result<Vec<_>, _>>()?
    }, {
        let row = bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids_json(ids))
            .fetch_one(pool).await?;
        (0..row.len()).map(|i| row.try_get::<i64, _>(i)).collect::<Result<Vec<_>, _>>()?
    }))
}

/// Runs a statement in a transaction; returns the rows it touched, or for a
/// `SELECT count(*)` (an erasure with nothing to change), the count.
pub async fn execute(tx: &mut Tx, sql: &str, args: &[Arg]) -> Result<u64, Error> {
    let counts = sql.starts_with("SELECT");
    Ok(on_backend!(tx.conn(), conn => {
        let query = bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids.clone());
        if counts {
            query.fetch_one(&mut *conn).await?.try_get::<i64, _>(0)? as u64
        } else {
            query.execute(&mut *conn).await?.rows_affected()
        }
    }, {
        let query = bind_all!(sqlx::query(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids_json(ids));
        if counts {
            query.fetch_one(&mut *conn).await?.try_get::<i64, _>(0)? as u64
        } else {
            query.execute(&mut *conn).await?.rows_affected()
        }
    }))
}

/// A count inside a transaction.
pub async fn count_in(tx: &mut Tx, sql: &str, args: &[Arg]) -> Result<i64, Error> {
    Ok(on_backend!(tx.conn(), conn => {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids.clone())
            .fetch_one(&mut *conn).await?
    }, {
        bind_all!(sqlx::query_scalar(AssertSqlSafe(sql.to_owned())), args,
            |ids| ids_json(ids))
            .fetch_one(&mut *conn).await?
    }))
}

/// Row ids as the JSON array SQLite's `json_each` reads.
pub(crate) fn ids_json(ids: &[String]) -> String {
    serde_json::to_string(ids).expect("strings serialise")
}

fn store_database_error(err: &Error) -> Option<&sqlx::Error> {
    match err {
        Error::Store(store) => store.database(),
        _ => None,
    }
}

/// Whether an error says a table does not exist (dropped since start-up):
/// SQLSTATE 42P01 on PostgreSQL, "no such table" on SQLite.
pub fn is_undefined_table(err: &Error) -> bool {
    let Some(sqlx::Error::Database(db)) = store_database_error(err) else {
        return false;
    };
    db.code().as_deref() == Some("42P01")
        || (db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
            && db.message().starts_with("no such table"))
}
