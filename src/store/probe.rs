//! Sampling the service's data to confirm what `lethe catalog init`
//! guessed from names: whether a candidate link joins any rows (and which
//! feature types the client rows behind it have), and whether a candidate
//! task table points at a feature table. Every statement reads a bounded
//! sample (`LIMIT`), and every name in it passed [`Ident`] validation.

use std::collections::BTreeSet;

use sqlx::AssertSqlSafe;

use super::{Store, on_backend};
use crate::backend::Backend;
use crate::catalog::dialect::Dialect;
use crate::catalog::init::{ClientGuess, LinkEvidence, LinkGuess, TaskGuess};
use crate::catalog::keys::ValueKind;
use crate::catalog::live::LiveSchema;
use crate::catalog::model::LinkKind;
use crate::catalog::{Ident, TableName};

/// A name from the database, if it is one lethe can quote safely.
fn table(name: &str) -> Option<String> {
    TableName::new(name).ok().map(|t| t.quoted())
}

fn column(name: &str) -> Option<String> {
    Ident::new(name).ok().map(|c| c.quoted())
}

/// `expr` (of `from` type) as a value comparable with a column of type
/// `to`: PostgreSQL needs a cast, guarded so that text that is not a number
/// (or a uuid) gives NULL, not an error; SQLite compares by affinity.
fn convert(expr: &str, from: &str, to: &str, backend: Backend) -> String {
    if backend == Backend::Sqlite {
        return expr.to_owned();
    }
    let dialect = Dialect::Postgres;
    let (from_kind, to_kind) = (ValueKind::of(from, dialect), ValueKind::of(to, dialect));
    if from_kind.same_family(to_kind) {
        return expr.to_owned();
    }
    let text = format!("CAST({expr} AS text)");
    match to_kind {
        ValueKind::Integer { .. } => {
            format!("CASE WHEN {text} ~ '^-?[0-9]{{1,18}}$' THEN CAST({text} AS bigint) END")
        }
        ValueKind::Uuid => format!(
            "CASE WHEN {text} ~* '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$' THEN CAST({text} AS uuid) END"
        ),
        ValueKind::Text => text,
        _ => format!("CAST({text} AS {to})"),
    }
}

fn type_of(live: &LiveSchema, table: &str, column: &str) -> String {
    live.tables
        .get(table)
        .and_then(|t| t.column(column))
        .map(|c| c.sql_type.clone())
        .unwrap_or_default()
}

/// Samples up to `sample` rows of the link's feature table and follows the
/// link back to client rows: how many matched, and their types.
pub async fn link(
    store: &Store,
    live: &LiveSchema,
    client: &ClientGuess,
    link: &LinkGuess,
    sample: i64,
) -> Result<LinkEvidence, sqlx::Error> {
    let backend = store.backend();
    let (Some(c), Some(t), Some(cc), Some(f), Some(ty)) = (
        table(&client.table),
        table(&link.feature),
        column(&link.client_column),
        column(&link.feature_column),
        column(&client.feature_type),
    ) else {
        return Ok(LinkEvidence::default());
    };
    let client_type = type_of(live, &client.table, &link.client_column);
    let feature_type = type_of(live, &link.feature, &link.feature_column);
    let sampled = format!("(SELECT {f} AS v FROM {t} WHERE {f} IS NOT NULL LIMIT $1) AS s");
    let type_text = match backend {
        Backend::Postgres => format!("CAST(c.{ty} AS text)"),
        Backend::Sqlite => format!("CAST(c.{ty} AS TEXT)"),
    };
    let sql = match (&link.kind, &link.join) {
        (LinkKind::Join, Some((join, join_client, join_feature))) => {
            let (Some(j), Some(jc), Some(jf)) =
                (table(join), column(join_client), column(join_feature))
            else {
                return Ok(LinkEvidence::default());
            };
            format!(
                "SELECT {type_text} FROM {sampled} JOIN {j} AS j ON j.{jf} = s.v JOIN {c} AS c ON c.{cc} = j.{jc} LIMIT $2"
            )
        }
        _ => format!(
            "SELECT {type_text} FROM {sampled} JOIN {c} AS c ON c.{cc} = {} LIMIT $2",
            convert("s.v", &feature_type, &client_type, backend)
        ),
    };
    let types: Vec<Option<String>> = on_backend!(store.db(), pool => {
        sqlx::query_scalar(AssertSqlSafe(sql.clone())).bind(sample).bind(sample * 5).fetch_all(pool).await?
    }, {
        sqlx::query_scalar(AssertSqlSafe(sql.clone())).bind(sample).bind(sample * 5).fetch_all(pool).await?
    });
    Ok(LinkEvidence {
        matched: types.len() as i64,
        types: types.into_iter().flatten().collect::<BTreeSet<_>>(),
    })
}

/// How many of up to `sample` rows of the candidate task table point at a
/// row of its feature table.
pub async fn task(
    store: &Store,
    live: &LiveSchema,
    task: &TaskGuess,
    sample: i64,
) -> Result<i64, sqlx::Error> {
    let (Some(t), Some(col), Some(f), Some(target)) = (
        table(&task.table),
        column(&task.column),
        table(&task.feature),
        column(&task.target),
    ) else {
        return Ok(0);
    };
    let from = type_of(live, &task.table, &task.column);
    let to = type_of(live, &task.feature, &task.target);
    let sql = format!(
        "SELECT count(*) FROM (SELECT {col} AS v FROM {t} WHERE {col} IS NOT NULL LIMIT $1) AS s \
          WHERE EXISTS (SELECT 1 FROM {f} AS f WHERE f.{target} = {})",
        convert("s.v", &from, &to, store.backend())
    );
    Ok(on_backend!(store.db(), pool => {
        sqlx::query_scalar(AssertSqlSafe(sql.clone())).bind(sample).fetch_one(pool).await?
    }, {
        sqlx::query_scalar(AssertSqlSafe(sql.clone())).bind(sample).fetch_one(pool).await?
    }))
}
