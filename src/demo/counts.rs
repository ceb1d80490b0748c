//! What the demo counts before and after the erasures, read straight from
//! the service's tables and the S3 server, not from lethe's own records:
//! a member's client rows still holding their key (per client table), the
//! feature and task rows below them, and how many of their objects exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::SqlitePool;
use tokio::task::JoinSet;

use crate::error::Error;
use crate::example::MemberSummary;
use crate::example::features::FEATURES;
use crate::objects::ObjectStore;
use crate::references::ObjectRef;

pub const CLIENT_TABLES: [&str; 3] = ["client_old", "client_temp", "client"];

/// One member's footprint.
#[derive(Debug, Clone, Default)]
pub struct Footprint {
    /// Client rows holding the member's key, per client table.
    pub client_rows: BTreeMap<&'static str, i64>,
    /// Feature and task rows below those client rows.
    pub child_rows: i64,
    /// The member's objects that exist in S3.
    pub objects: usize,
}

impl Footprint {
    pub fn rows(&self) -> i64 {
        self.client_rows.values().sum::<i64>() + self.child_rows
    }

    /// `30 = 9 old + 6 temp + 15 current`
    pub fn client_split(&self) -> String {
        format!(
            "{} = {} old + {} temp + {} current",
            self.client_rows.values().sum::<i64>(),
            self.client_rows.get("client_old").unwrap_or(&0),
            self.client_rows.get("client_temp").unwrap_or(&0),
            self.client_rows.get("client").unwrap_or(&0)
        )
    }
}

pub async fn footprint(
    pool: &SqlitePool,
    objects: &ObjectStore,
    member: &MemberSummary,
) -> Result<Footprint, Error> {
    let mut footprint = Footprint::default();
    for table in CLIENT_TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE client_key = $1"
        )))
        .bind(&member.key)
        .fetch_one(pool)
        .await?;
        footprint.client_rows.insert(table, n);
    }
    for feature in &FEATURES {
        let stem = feature.stem;
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(f.id) + count(t.id) FROM {stem}_feature f \
               LEFT JOIN {stem}_task t ON t.feature_id = f.id \
              WHERE f.client_id IN (SELECT id FROM client_old WHERE client_key = $1 \
                                    UNION ALL SELECT id FROM client_temp WHERE client_key = $1 \
                                    UNION ALL SELECT id FROM client WHERE client_key = $1)"
        )))
        .bind(&member.key)
        .fetch_one(pool)
        .await?;
        footprint.child_rows += n;
    }
    footprint.objects = existing(objects, &member.objects).await?;
    Ok(footprint)
}

/// How many of `objects` exist (HeadObject on each, 32 at a time).
pub async fn existing(objects: &ObjectStore, list: &[ObjectRef]) -> Result<usize, Error> {
    let store = Arc::new(objects.clone());
    let mut pending = list.iter().cloned();
    let mut running = JoinSet::new();
    let mut found = 0;
    loop {
        while running.len() < 32 {
            let Some(object) = pending.next() else { break };
            let store = store.clone();
            running.spawn(async move { store.exists(&object.bucket, &object.key).await });
        }
        match running.join_next().await {
            Some(joined) => found += usize::from(joined.expect("HeadObject task panicked")?),
            None => return Ok(found),
        }
    }
}
