//! Live progress for an operator watching `lethe worker` in a terminal: one
//! status line at the bottom of stderr, redrawn in place, naming each
//! request in hand, its phase, batch k of n and its rate.
//!
//! The rule this module keeps: the status line exists only on a terminal
//! (the binary creates a [`Terminal`] only when stderr is one), so log
//! files and pipes get plain log lines and no control codes; and it names
//! request ids, never subject keys. Log lines written while it is shown
//! clear it first and redraw it after, so the two never garble each other.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// The status line on a terminal's stderr.
#[derive(Debug)]
pub struct Terminal {
    board: Arc<Board>,
    /// Serialises drawing and log lines; true while a status line is shown.
    shown: Mutex<bool>,
    width: usize,
}

impl Terminal {
    pub fn new(board: Arc<Board>) -> Arc<Terminal> {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(120usize);
        Arc::new(Terminal {
            board,
            shown: Mutex::new(false),
            width: width.max(20),
        })
    }

    /// The board this terminal shows; hand it to the worker.
    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// Redraws the status line every quarter second until aborted.
    pub fn spawn_redraw(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let terminal = self.clone();
        tokio::spawn(async move {
            loop {
                terminal.write_log(&[]);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    }

    /// Removes the status line (at exit).
    pub fn clear(&self) {
        let mut shown = self.lock();
        if *shown {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\r\x1b[2K");
            let _ = err.flush();
            *shown = false;
        }
    }

    /// Writes one log line (may be empty) above the redrawn status line.
    fn write_log(&self, line: &[u8]) {
        let mut shown = self.lock();
        let mut err = std::io::stderr().lock();
        if *shown {
            let _ = err.write_all(b"\r\x1b[2K");
        }
        let _ = err.write_all(line);
        let status: String = self.board.line().chars().take(self.width - 1).collect();
        let _ = err.write_all(status.as_bytes());
        let _ = err.flush();
        *shown = !status.is_empty();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.shown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A log writer for `tracing_subscriber` that keeps the status line below
/// the logs.
#[derive(Debug, Clone)]
pub struct TerminalLogs(pub Arc<Terminal>);

/// One log event's bytes, written when the formatter is done with it.
pub struct LogLine {
    terminal: Arc<Terminal>,
    buffer: Vec<u8>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TerminalLogs {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            terminal: self.0.clone(),
            buffer: Vec::new(),
        }
    }
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            self.terminal.write_log(&self.buffer);
        }
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
