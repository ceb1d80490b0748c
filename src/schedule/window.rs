//! One off-peak window: a cron expression read as wall-clock times in an
//! IANA time zone, and a duration.
//!
//! The rule this module keeps: **a window opens the first moment the local
//! clock reads its opening time or later, and stays open for its duration
//! of elapsed time.** The zone's rules are looked up for each date (chrono-tz),
//! never frozen into the offset of the day the schedule was made. Read
//! across a daylight-saving change, the rule says:
//!
//! - an opening time the clock skips (spring forward: 02:30 on 2027-03-14 in
//!   America/New_York, where 02:00 EST is followed by 03:00 EDT) opens the
//!   window when the clock jumps, at 03:00 EDT;
//! - an opening time the clock shows twice (fall back: 01:30 on 2027-11-07)
//!   opens the window once, at the first 01:30 (EDT); the repeated 01:30
//!   (EST) is not a new opening;
//! - a `3h` window is three real hours even on a night whose clock skips or
//!   repeats an hour (01:30 EDT + 3h closes at 03:30 EST).
//!
//! The cron expression is parsed by croner with the options
//! tokio-cron-scheduler uses (six fields, seconds first; day-of-month and
//! day-of-week both apply), and croner is asked only calendar questions in
//! UTC, where no clock skips: "which wall-clock time comes next". Mapping a
//! wall-clock time to an instant is done here.

use std::time::Duration;

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::ScheduleError;

/// Enough to step over every occurrence a repeated hour can hold, even for
/// a pattern that fires every second.
const SEARCH_STEPS: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Window {
    /// The expression as configured, for messages.
    pub cron_text: String,
    pub duration: TimeDelta,
    pub zone: Tz,
    cron: Cron,
}

impl Window {
    pub fn new(cron_text: &str, duration: Duration, zone: &str) -> Result<Window, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(cron_text)
            .map_err(|err| ScheduleError::Cron {
                cron: cron_text.to_owned(),
                reason: format!("{err:?}"),
            })?;
        let zone: Tz = zone.parse().map_err(|_| ScheduleError::Zone {
            zone: zone.to_owned(),
        })?;
        if duration.is_zero() {
            return Err(ScheduleError::Duration {
                cron: cron_text.to_owned(),
                reason: "a window must last longer than zero".into(),
            });
        }
        let duration = TimeDelta::from_std(duration).map_err(|_| ScheduleError::Duration {
            cron: cron_text.to_owned(),
            reason: "too long".into(),
        })?;
        let window = Window {
            cron_text: cron_text.to_owned(),
            duration,
            zone,
            cron,
        };
        // A pattern that names no real date (30 February) would leave the
        // workers waiting forever: refuse it now.
        let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        if window.next_opening_after(reference).is_none() {
            return Err(ScheduleError::Cron {
                cron: cron_text.to_owned(),
                reason: "it matches no date, so the window would never open".into(),
            });
        }
        Ok(window)
    }

    /// The first opening strictly after `t`.
    pub fn next_opening_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Every wall-clock time up to the one shown at `t` was first reached
        // at or before `t`, so the search starts there. After it, a time in
        // an hour that a fall-back repeats may have been reached already
        // (before the clock went back): those are skipped.
        let mut wall = t.with_timezone(&self.zone).naive_local();
        wall = wall.with_nanosecond(0).unwrap_or(wall);
        for _ in 0..SEARCH_STEPS {
            let next = self
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                .ok()?
                .naive_utc();
            let at = self.first_instant_showing(next);
            if at > t {
                return Some(at);
            }
            wall = next;
        }
        None
    }

    /// The last opening in `(after, until]`, if any.
    pub fn last_opening_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut last = None;
        let mut cursor = after;
        for _ in 0..SEARCH_STEPS {
            match self.next_opening_after(cursor) {
                Some(at) if at <= until => {
                    last = Some(at);
                    cursor = at;
                }
                _ => break,
            }
        }
        last
    }

    /// If this window is open at `t`, when the opening that covers `t`
    /// closes (the latest one, when openings overlap).
    pub fn open_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.last_opening_between(t - self.duration, t)
            .map(|opened| opened + self.duration)
    }

    /// The first instant at which the local clock reads `wall` or later.
    fn first_instant_showing(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(at) => at.with_timezone(&Utc),
            // Shown twice (fall back): the first time counts.
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            // Skipped (spring forward): the moment the clock jumps past it.
            LocalResult::None => self.end_of_gap(wall),
        }
    }

    /// For a wall-clock time the zone skips, the instant the skip ends.
    fn end_of_gap(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        let as_utc = Utc.from_utc_datetime(&wall);
        let offset = |at: DateTime<Utc>| -> i64 {
            use chrono::Offset;
            i64::from(
                self.zone
                    .offset_from_utc_datetime(&at.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        };
        // A day either side is outside any one change; the skip lies between
        // `wall` read with the later offset (before the change) and with the
        // earlier one (after it).
        let before = offset(as_utc - TimeDelta::days(1));
        let after = offset(as_utc + TimeDelta::days(1));
        let mut lo = as_utc.timestamp() - after;
        let mut hi = as_utc.timestamp() - before;
        let shows_at_least = |secs: i64| {
            let at = DateTime::from_timestamp(secs, 0).expect("in range");
            at.with_timezone(&self.zone).naive_local() >= wall
        };
        if lo >= hi || shows_at_least(lo) || !shows_at_least(hi) {
            // Not the single forward jump this expects: the later reading
            // is never early.
            return DateTime::from_timestamp(hi, 0).expect("in range");
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if shows_at_least(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        DateTime::from_timestamp(hi, 0).expect("in range")
    }
}
