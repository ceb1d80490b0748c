//! Live progress: where each request a worker has in hand stands (its
//! phase, batch k of n and its rate), on a [`Board`] the worker writes and
//! a display reads — the `lethe` binary draws it as a status line on a
//! terminal. The rule it keeps: it names request ids, never subject keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::workflow::state::Phase;

/// Where one request stands, as of its last batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub phase: Phase,
    pub batch: i32,
    pub total: Option<i32>,
    /// Items per second in the last batch, and what the items are.
    pub rate: Option<(f64, &'static str)>,
}

/// The requests a worker has in hand; the worker writes, the terminal reads.
#[derive(Debug, Default)]
pub struct Board {
    entries: Mutex<BTreeMap<Uuid, Entry>>,
}

/// Requests shown in full on the line; more are counted.
const SHOWN: usize = 2;

impl Board {
    pub fn new() -> Arc<Board> {
        Arc::new(Board::default())
    }

    pub fn update(&self, request_id: Uuid, entry: Entry) {
        self.lock().insert(request_id, entry);
    }

    pub fn finish(&self, request_id: Uuid) {
        self.lock().remove(&request_id);
    }

    /// `lethe: <id> deleting_objects batch 3/12, 198.0 objects deleted/s`,
    /// or empty when idle.
    pub fn line(&self) -> String {
        let entries = self.lock();
        if entries.is_empty() {
            return String::new();
        }
        let mut parts: Vec<String> = entries
            .iter()
            .take(SHOWN)
            .map(|(id, e)| {
                let total = e.total.map_or("?".to_owned(), |t| t.to_string());
                let rate = e
                    .rate
                    .map(|(per_sec, unit)| format!(", {per_sec:.1} {unit}/s"))
                    .unwrap_or_default();
                format!("{id} {} batch {}/{total}{rate}", e.phase, e.batch)
            })
            .collect();
        if entries.len() > SHOWN {
            parts.push(format!("+{} more", entries.len() - SHOWN));
        }
        format!("lethe: {}", parts.join(" | "))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_requests_phases_batches_and_rates() {
        let board = Board::new();
        assert_eq!(board.line(), "");
        let id = Uuid::nil();
        board.update(
            id,
            Entry {
                phase: Phase::DeletingObjects,
                batch: 3,
                total: Some(12),
                rate: Some((198.04, "objects deleted")),
            },
        );
        assert_eq!(
            board.line(),
            "lethe: 00000000-0000-0000-0000-000000000000 deleting_objects batch 3/12, 198.0 objects deleted/s"
        );
        for n in 1..=3u128 {
            board.update(
                Uuid::from_u128(n),
                Entry {
                    phase: Phase::MaskingRows,
                    batch: 1,
                    total: None,
                    rate: None,
                },
            );
        }
        assert!(board.line().ends_with(" | +2 more"), "{}", board.line());
        board.finish(id);
        assert!(!board.line().contains("deleting_objects"));
    }
}
