//! The status line of `lethe worker` on a terminal: the worker's progress
//! [`Board`] drawn as one line at the bottom of stderr, redrawn in place.
//!
//! The rule this module keeps: the status line exists only on a terminal
//! (the binary creates a [`Terminal`] only when stderr is one), so log
//! files and pipes get plain log lines and no control codes. Log lines
//! written while it is shown clear it first and redraw it after, so the two
//! never garble each other.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lethe::Board;

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
