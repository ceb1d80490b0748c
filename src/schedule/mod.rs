//! Off-peak windows: when workers may claim and advance work.
//!
//! A window is a cron expression (six fields, seconds first, as
//! tokio-cron-scheduler reads them), a duration and an IANA time zone:
//! `0 0 2 * * *`, `3h`, `Asia/Seoul` opens at 02:00 Seoul time every day for
//! three hours. Several windows form a union; none configured means always
//! open (and `lethe worker --ignore-window` makes it so).
//!
//! The rule this module keeps: the instants a window opens and closes are
//! computed here ([`window`]), from the zone's rules for each date.
//! tokio-cron-scheduler turns a time zone into the fixed offset it had when
//! a job was created (its issues #87 and #107), so a cron job of its own
//! would open an hour early or late after a daylight-saving change until
//! the process restarts. It is used only as the alarm that wakes a worker
//! at the instants computed here, re-armed after each one ([`gate`]).

pub mod gate;
pub mod span;
pub mod window;

#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

pub use gate::{Gate, GateDriver, Wakeups};
pub use window::Window;

/// A window as configured:
///
/// ```toml
/// [[window]]
/// cron = "0 0 2 * * *"
/// duration = "3h"
/// time_zone = "Asia/Seoul"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// When it opens: sec min hour day-of-month month day-of-week.
    pub cron: String,
    /// How long it stays open: `3h`, `90m`, `1h30m`.
    pub duration: String,
    /// The IANA zone the cron expression's times are read in.
    pub time_zone: String,
}

/// A window that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "off-peak window {cron:?}: not a cron expression ({reason}); write six fields, seconds first, e.g. \"0 0 2 * * *\" for 02:00 daily"
    )]
    Cron { cron: String, reason: String },
    #[error(
        "off-peak window: unknown time zone {zone:?}; use an IANA name such as \"Asia/Seoul\" or \"America/New_York\""
    )]
    Zone { zone: String },
    #[error("off-peak window {cron:?}: duration {reason}")]
    Duration { cron: String, reason: String },
}

/// The configured windows; open when any is.
#[derive(Debug, Clone)]
pub struct Windows {
    windows: Vec<Window>,
}

/// Whether work may run at one instant, and when that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowState {
    pub open: bool,
    /// When open: when the last overlapping window closes (unknown when
    /// windows keep overlapping for more than a year).
    pub closes_at: Option<DateTime<Utc>>,
    /// The next opening after now (closed) or after the close (open).
    pub next_opens_at: Option<DateTime<Utc>>,
    /// The zone of the window that decides `closes_at` (open) or
    /// `next_opens_at` (closed), for showing local times.
    #[serde(serialize_with = "serialize_zone")]
    pub time_zone: Tz,
}

fn serialize_zone<S: serde::Serializer>(zone: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(zone.name())
}

/// Beyond this, a union of overlapping windows counts as not closing.
const HORIZON_DAYS: i64 = 400;

impl Windows {
    /// Parses the configured windows; `None` when there are none (always open).
    pub fn parse(specs: &[WindowSpec]) -> Result<Option<Windows>, ScheduleError> {
        if specs.is_empty() {
            return Ok(None);
        }
        let windows = specs
            .iter()
            .map(|spec| {
                let duration =
                    span::parse(&spec.duration).map_err(|reason| ScheduleError::Duration {
                        cron: spec.cron.clone(),
                        reason,
                    })?;
                Window::new(&spec.cron, duration, &spec.time_zone)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Windows { windows }))
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Whether any window is open at `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.windows.iter().any(|w| w.open_until(t).is_some())
    }

    /// The state at `t`: open or not, and when that changes.
    pub fn state_at(&self, t: DateTime<Utc>) -> WindowState {
        let mut covering: Option<(DateTime<Utc>, Tz)> = None;
        for window in &self.windows {
            if let Some(until) = window.open_until(t)
                && covering.is_none_or(|(end, _)| until > end)
            {
                covering = Some((until, window.zone));
            }
        }
        let Some((mut end, mut zone)) = covering else {
            let (next, zone) = self.next_opening_after(t);
            return WindowState {
                open: false,
                closes_at: None,
                next_opens_at: next,
                time_zone: zone.unwrap_or(self.windows[0].zone),
            };
        };
        // Windows that open before the current one closes extend it.
        let horizon = t + TimeDelta::days(HORIZON_DAYS);
        loop {
            let mut extended = false;
            for window in &self.windows {
                if let Some(until) = window.open_until(end)
                    && until > end
                {
                    end = until;
                    zone = window.zone;
                    extended = true;
                }
            }
            if !extended {
                break;
            }
            if end > horizon {
                return WindowState {
                    open: true,
                    closes_at: None,
                    next_opens_at: None,
                    time_zone: zone,
                };
            }
        }
        let (next, _) = self.next_opening_after(end);
        WindowState {
            open: true,
            closes_at: Some(end),
            next_opens_at: next,
            time_zone: zone,
        }
    }

    fn next_opening_after(&self, t: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<Tz>) {
        self.windows
            .iter()
            .filter_map(|w| w.next_opening_after(t).map(|at| (at, w.zone)))
            .min_by_key(|(at, _)| *at)
            .map_or((None, None), |(at, zone)| (Some(at), Some(zone)))
    }
}

impl WindowState {
    /// The next instant the state changes (close when open, open when closed).
    pub fn next_change(&self) -> Option<DateTime<Utc>> {
        if self.open {
            self.closes_at
        } else {
            self.next_opens_at
        }
    }
}

/// `2027-03-14 03:00 EDT (07:00 UTC)`.
pub fn local_and_utc(at: DateTime<Utc>, zone: Tz) -> String {
    let local = at.with_timezone(&zone);
    format!(
        "{} ({} UTC)",
        local.format("%Y-%m-%d %H:%M:%S %Z"),
        at.format("%H:%M:%S")
    )
}

impl fmt::Display for WindowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zone = self.time_zone;
        match (self.open, self.closes_at, self.next_opens_at) {
            (true, Some(close), _) => write!(
                f,
                "open until {} [{}]",
                local_and_utc(close, zone),
                zone.name()
            ),
            (true, None, _) => write!(f, "open (windows overlap for more than a year)"),
            (false, _, Some(next)) => write!(
                f,
                "closed; next opens {} [{}]",
                local_and_utc(next, zone),
                zone.name()
            ),
            (false, _, None) => write!(f, "closed; no window opens again"),
        }
    }
}
