//! Which requests a listing returns, and where a page of it ends: the
//! filters of `lethe list` and `GET /v1/erasures`, and the cursor that
//! pages through them (newest first, ties by id).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::requests::RequestRecord;
use crate::workflow::state::State;

/// Filters for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<State>,
    pub limit: Option<i64>,
    /// Only unfinished requests (active or failed) submitted before this
    /// instant: the overdue ones, when it is now minus the deadline.
    pub overdue_before: Option<DateTime<Utc>>,
    /// Only requests this API token submitted.
    pub submitted_by: Option<String>,
    /// Only requests after this one in the listing's order (newest first,
    /// ties by id): the cursor of the page before.
    pub after: Option<ListCursor>,
}

/// A place in the listing's order: a request's submission time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub requested_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ListCursor {
    /// The cursor just past `record`.
    pub fn after(record: &RequestRecord) -> ListCursor {
        ListCursor {
            requested_at: record.requested_at,
            id: record.id,
        }
    }

    /// The opaque text form, for a URL: microseconds since the epoch and
    /// the id.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.requested_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Reads [`ListCursor::encode`]'s form back.
    pub fn decode(text: &str) -> Option<ListCursor> {
        let (micros, id) = text.split_once('.')?;
        Some(ListCursor {
            requested_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}
