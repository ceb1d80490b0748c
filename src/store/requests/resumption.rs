//! What a worker goes on from with a request it has claimed: the member's
//! key (for the worker only, never logged), the counters and the
//! checkpoint. A PostgreSQL claim returns it with the lease; otherwise
//! [`Store::resumption`] reads it.

use super::*;

/// Where a claimed request stands, for the worker that goes on with it
/// ([`Store::resumption`]). Its `Debug` leaves out the member's key and the
/// cursor.
#[derive(Clone)]
pub struct Resumption {
    pub subject: String,
    pub counters: Counters,
    pub checkpoint: StoredCheckpoint,
}

impl std::fmt::Debug for Resumption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumption")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The columns [`Store::resumption`] reads, and a PostgreSQL claim returns.
macro_rules! resumption_columns {
    () => {
        concat!(
            "subject_key, batch_done, batch_total, CAST(phase_cursor AS TEXT) AS phase_cursor, ",
            counter_columns!()
        )
    };
}
pub(crate) use resumption_columns;

/// The row [`Store::resumption`] reads; the cursor as JSON text on both
/// backends.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct ResumptionRow {
    subject_key: Option<String>,
    batch_done: i32,
    batch_total: Option<i32>,
    phase_cursor: Option<String>,
    #[sqlx(flatten)]
    counters: Counters,
}

impl ResumptionRow {
    pub(super) fn into_resumption(self, id: Uuid) -> Result<Resumption, Error> {
        let subject = self
            .subject_key
            .ok_or_else(|| Error::Invariant(format!("request {id} has no subject key left")))?;
        let cursor = self
            .phase_cursor
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|source| Error::Cursor { id, source })?;
        Ok(Resumption {
            subject,
            counters: self.counters,
            checkpoint: StoredCheckpoint {
                batch_done: self.batch_done,
                batch_total: self.batch_total,
                cursor,
            },
        })
    }
}
