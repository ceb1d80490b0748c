//! lethe's statements for PostgreSQL, where they differ from SQLite's (the
//! ones both accept word for word are in the backend-neutral modules). Row
//! locks (`FOR UPDATE`, `SKIP LOCKED`) and an advisory lock per subject
//! serialise what must be serialised; `NOTIFY` wakes idle workers anywhere.
//! Called only from the backend-neutral modules of [`crate::store`], which
//! hold the logic.

pub mod lease;
pub mod manifest;
pub mod record;
pub mod requests;
