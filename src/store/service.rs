//! Running the catalog's compiled statements ([`crate::catalog::Plan`])
//! against the service's own tables: a member's client rows page by page,
//! the feature and task rows below them, the claims that prove a feature
//! row is the member's, and the erasure and read-back of rows by key. The
//! statements and their argument lists come from the plan; this module
//! only runs them ([`super::dynamic`] binds the values).

use std::collections::HashSet;

use super::dynamic::{self, Arg};
use super::{Store, Tx};
use crate::catalog::TablePlan;
use crate::catalog::dialect::Dialect;
use crate::catalog::keys::RowKey;
use crate::catalog::plan::{ChildPlan, ClientPlan, LinkPlan, Namespace};
use crate::error::Error;

/// One row read as text (NULL as None), in the statement's column order.
pub type TextRow = Vec<Option<String>>;

/// Which count of a client table's rows to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCount {
    /// The member's rows.
    Rows,
    /// Those of the member's rows with a NULL key column (possible in
    /// SQLite, whose non-integer primary keys allow NULL): rows lethe cannot
    /// name.
    NullKeys,
}

/// How many of the member's rows each of `clients` holds, in their order,
/// asked in one statement for all of them. A table that cannot hold this
/// key at all (a uuid column and `member-1`), or cannot hold a NULL key
/// when those are counted, counts none without being asked.
pub async fn count_client_rows(
    store: &Store,
    clients: &[&ClientPlan],
    subject: &str,
    what: ClientCount,
) -> Result<Vec<i64>, Error> {
    let asked: Vec<&str> = clients
        .iter()
        .filter_map(|client| count_sql(client, subject, what))
        .collect();
    if asked.is_empty() {
        return Ok(vec![0; clients.len()]);
    }
    // Every count binds the subject alone, as `$1`.
    let sql = format!("SELECT ({})", asked.join("), ("));
    let args = [Arg::Text(subject.to_owned())];
    let mut answers = dynamic::fetch_counts(store, &sql, &args).await?.into_iter();
    clients
        .iter()
        .map(|client| {
            if count_sql(client, subject, what).is_none() {
                return Ok(0);
            }
            answers.next().ok_or_else(|| {
                Error::Invariant(format!("no count came back for table {}", client.table))
            })
        })
        .collect()
}

/// The count `what` asks of `client`, or None when the answer is 0 without
/// asking.
fn count_sql<'a>(client: &'a ClientPlan, subject: &str, what: ClientCount) -> Option<&'a str> {
    if !client.can_hold(subject) {
        return None;
    }
    match what {
        ClientCount::Rows => Some(client.count_sql.as_str()),
        ClientCount::NullKeys => client.null_key_sql.as_deref(),
    }
}

/// The member's next client rows after the `after` key, in key order.
pub async fn client_page(
    store: &Store,
    dialect: Dialect,
    client: &ClientPlan,
    subject: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<TextRow>, Error> {
    if !client.can_hold(subject) {
        return Ok(Vec::new());
    }
    let args = client.page_args(subject, after, limit, dialect);
    dynamic::fetch_rows(store, &client.page_sql, &args).await
}

/// The feature rows these client link values reach; None when the table
/// no longer exists.
pub async fn feature_rows(
    store: &Store,
    link: &LinkPlan,
    values: Vec<String>,
) -> Result<Option<Vec<TextRow>>, Error> {
    rows_or_missing(store, &link.select_sql, &[Arg::TextList(values)]).await
}

/// The task rows below these feature values; None when the table no
/// longer exists.
pub async fn task_rows(
    store: &Store,
    child: &ChildPlan,
    values: Vec<String>,
) -> Result<Option<Vec<TextRow>>, Error> {
    rows_or_missing(store, &child.select_sql, &[Arg::TextList(values)]).await
}

/// Of these feature values, the ones some client row that is not the
/// member's claims.
pub async fn claimed_by_others(
    store: &Store,
    namespace: &Namespace,
    types: &[String],
    values: &[String],
    subject: &str,
) -> Result<HashSet<String>, Error> {
    if values.is_empty() {
        return Ok(HashSet::new());
    }
    let args = namespace.args(types, values, subject);
    let rows = dynamic::fetch_rows(store, &namespace.sql, &args).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect())
}

/// Erases the rows with these keys, in the batch's transaction; returns
/// how many rows it touched.
pub async fn erase(tx: &mut Tx, table: &TablePlan, keys: &[String]) -> Result<u64, Error> {
    dynamic::execute(tx, &table.erase_sql, &table.erase_args(keys)).await
}

/// How many of these rows still hold unerased values.
pub async fn count_unerased(
    store: &Store,
    table: &TablePlan,
    keys: &[String],
) -> Result<i64, Error> {
    let Some(sql) = &table.verify_sql else {
        return Ok(0);
    };
    dynamic::fetch_count(store, sql, &table.verify_args(keys)).await
}

/// The keys of these rows that still hold unerased values.
pub async fn unerased_keys(
    store: &Store,
    table: &TablePlan,
    keys: &[String],
) -> Result<Vec<String>, Error> {
    let Some(sql) = &table.unerased_sql else {
        return Ok(Vec::new());
    };
    let rows = dynamic::fetch_rows(store, sql, &table.verify_args(keys)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let values: Option<Vec<String>> = row.into_iter().collect();
            values.map(|values| table.key.encode(values))
        })
        .collect())
}

/// Rows read again by key with a plan's `by_key_sql`.
pub async fn rows_by_key(
    store: &Store,
    sql: &str,
    key: &RowKey,
    dialect: Dialect,
    keys: &[String],
) -> Result<Vec<TextRow>, Error> {
    dynamic::fetch_rows(store, sql, &key.match_args(keys, dialect)).await
}

async fn rows_or_missing(
    store: &Store,
    sql: &str,
    args: &[Arg],
) -> Result<Option<Vec<TextRow>>, Error> {
    match dynamic::fetch_rows(store, sql, args).await {
        Ok(rows) => Ok(Some(rows)),
        Err(err) if dynamic::is_undefined_table(&err) => Ok(None),
        Err(err) => Err(err),
    }
}
