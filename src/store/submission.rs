//! A submission as the store takes and answers it: who submits, with which
//! references, and what became of it (a new request, one it was folded
//! into, or the earlier one its idempotency key named).

use serde::Serialize;
use uuid::Uuid;

/// Who submits, and the submitter's own references.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provenance<'a> {
    /// Submitting it again returns the same request.
    pub idempotency_key: Option<&'a str>,
    /// The submitter's reference (a ticket, a withdrawal id), for the record.
    pub external_ref: Option<&'a str>,
    /// The API token (its name) submitting over HTTP.
    pub submitted_by: Option<&'a str>,
}

/// What a submission produced.
#[derive(Debug, Clone, Serialize)]
pub struct Submission {
    /// The id of this submission's request row.
    pub id: Uuid,
    /// When the subject already had an active request: that request, which
    /// this submission was folded into.
    pub coalesced_into: Option<Uuid>,
    /// True when the idempotency key named an earlier submission, which is
    /// returned instead of a new one.
    pub replayed: bool,
    /// Earlier erasures of the same member that are done (matched by the
    /// keyed hash that replaced their key), newest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub previously_done: Vec<Uuid>,
}
