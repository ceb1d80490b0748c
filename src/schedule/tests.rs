//! Windows across time zones and daylight-saving changes. America/New_York
//! springs forward on 2027-03-14 (02:00 EST -> 03:00 EDT, at 07:00 UTC) and
//! falls back on 2027-11-07 (02:00 EDT -> 01:00 EST, at 06:00 UTC).

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn windows(cron: &str, duration: &str, zone: &str) -> Windows {
    Windows::parse(&[WindowSpec {
        cron: cron.into(),
        duration: duration.into(),
        time_zone: zone.into(),
    }])
    .unwrap()
    .unwrap()
}

fn window(cron: &str, duration: &str, zone: &str) -> Window {
    windows(cron, duration, zone).windows()[0].clone()
}

#[test]
fn seoul_window_opens_at_two_local_for_three_hours() {
    let w = windows("0 0 2 * * *", "3h", "Asia/Seoul");
    // 02:00 KST is 17:00 UTC the day before.
    let before = w.state_at(utc(2026, 6, 1, 16, 59, 59));
    assert!(!before.open);
    assert_eq!(before.next_opens_at, Some(utc(2026, 6, 1, 17, 0, 0)));
    let at_open = w.state_at(utc(2026, 6, 1, 17, 0, 0));
    assert!(at_open.open);
    assert_eq!(at_open.closes_at, Some(utc(2026, 6, 1, 20, 0, 0)));
    assert_eq!(at_open.next_opens_at, Some(utc(2026, 6, 2, 17, 0, 0)));
    assert!(w.is_open(utc(2026, 6, 1, 19, 59, 59)));
    let closed = w.state_at(utc(2026, 6, 1, 20, 0, 0));
    assert!(!closed.open, "the close is exclusive");
    assert_eq!(closed.next_opens_at, Some(utc(2026, 6, 2, 17, 0, 0)));
    assert_eq!(
        closed.to_string(),
        "closed; next opens 2026-06-03 02:00:00 KST (17:00:00 UTC) [Asia/Seoul]"
    );
}

#[test]
fn spring_forward_a_skipped_opening_time_opens_when_the_clock_jumps() {
    // 02:30 does not exist in New York on 2027-03-14.
    let w = windows("0 30 2 * * *", "1h", "America/New_York");
    // The day before: 02:30 EST = 07:30 UTC.
    assert_eq!(
        w.state_at(utc(2027, 3, 13, 12, 0, 0)).next_opens_at,
        Some(utc(2027, 3, 14, 7, 0, 0)),
        "opens at 03:00 EDT, the moment the clock jumps past 02:30"
    );
    assert!(!w.is_open(utc(2027, 3, 14, 6, 59, 59)), "01:59:59 EST");
    let open = w.state_at(utc(2027, 3, 14, 7, 0, 0));
    assert!(open.open);
    assert_eq!(
        open.closes_at,
        Some(utc(2027, 3, 14, 8, 0, 0)),
        "one real hour"
    );
    // The next day, 02:30 EDT = 06:30 UTC: the offset followed the change.
    assert_eq!(open.next_opens_at, Some(utc(2027, 3, 15, 6, 30, 0)));
    assert!(!w.is_open(utc(2027, 3, 14, 8, 0, 0)));
    // And the day before the change it was 02:30 EST.
    assert!(w.is_open(utc(2027, 3, 13, 7, 30, 0)));
    assert!(!w.is_open(utc(2027, 3, 13, 7, 29, 59)));
}

#[test]
fn fall_back_a_repeated_opening_time_opens_once_at_its_first_occurrence() {
    // 01:30 happens twice in New York on 2027-11-07: 05:30 UTC (EDT) and
    // 06:30 UTC (EST).
    let w = windows("0 30 1 * * *", "30m", "America/New_York");
    let before = w.state_at(utc(2027, 11, 7, 5, 0, 0));
    assert_eq!(before.next_opens_at, Some(utc(2027, 11, 7, 5, 30, 0)));
    let open = w.state_at(utc(2027, 11, 7, 5, 45, 0));
    assert!(open.open);
    assert_eq!(open.closes_at, Some(utc(2027, 11, 7, 6, 0, 0)));
    // The second 01:30 (EST) is not a new opening...
    for minute in [0, 30, 40, 59] {
        assert!(
            !w.is_open(utc(2027, 11, 7, 6, minute, 0)),
            "06:{minute:02} UTC, 01:{minute:02} EST the second time"
        );
    }
    // ...the next one is the day after, 01:30 EST = 06:30 UTC.
    assert_eq!(
        w.state_at(utc(2027, 11, 7, 6, 40, 0)).next_opens_at,
        Some(utc(2027, 11, 8, 6, 30, 0))
    );
    // A three-hour window that night lasts three real hours: 01:30 EDT to
    // 03:30 EST.
    let long = windows("0 30 1 * * *", "3h", "America/New_York");
    assert_eq!(
        long.state_at(utc(2027, 11, 7, 6, 40, 0)).closes_at,
        Some(utc(2027, 11, 7, 8, 30, 0))
    );
}

#[test]
fn an_hourly_window_does_not_reopen_in_the_repeated_hour() {
    // Opening times 00:00, 01:00, 02:00 ... for 30 minutes. On fall-back
    // night 01:00 EDT (05:00 UTC) opens; 01:00 EST (06:00 UTC) is shown a
    // second time and does not; 02:00 EST (07:00 UTC) does.
    let w = windows("0 0 * * * *", "30m", "America/New_York");
    assert!(w.is_open(utc(2027, 11, 7, 5, 10, 0)));
    assert!(!w.is_open(utc(2027, 11, 7, 6, 10, 0)));
    assert_eq!(
        w.state_at(utc(2027, 11, 7, 5, 40, 0)).next_opens_at,
        Some(utc(2027, 11, 7, 7, 0, 0))
    );
    // Spring forward: 02:00 is skipped; it and 03:00 both open at 07:00 UTC.
    let state = w.state_at(utc(2027, 3, 14, 6, 40, 0));
    assert_eq!(state.next_opens_at, Some(utc(2027, 3, 14, 7, 0, 0)));
}

/// The drift tokio-cron-scheduler shows (issues #87, #107): a job made in
/// winter keeps winter's offset all summer. Every night of 2027 here opens
/// at 02:00 New York time (03:00 on the night 02:00 does not exist), and
/// lasts exactly three hours.
#[test]
fn no_drift_across_a_whole_year_in_new_york() {
    let w = window("0 0 2 * * *", "3h", "America/New_York");
    let zone: Tz = "America/New_York".parse().unwrap();
    let mut t = utc(2027, 1, 1, 0, 0, 0);
    for _ in 0..365 {
        let opens = w.next_opening_after(t).unwrap();
        let local = opens.with_timezone(&zone);
        let expected_hour = if local.date_naive() == NaiveDate::from_ymd_opt(2027, 3, 14).unwrap() {
            3
        } else {
            2
        };
        assert_eq!(
            (local.hour(), local.minute(), local.second()),
            (expected_hour, 0, 0),
            "{opens} is {local}"
        );
        assert_eq!(w.open_until(opens), Some(opens + TimeDelta::hours(3)));
        t = opens;
    }
}

#[test]
fn several_windows_form_a_union() {
    let w = Windows::parse(&[
        WindowSpec {
            cron: "0 0 2 * * *".into(),
            duration: "2h".into(),
            time_zone: "Asia/Seoul".into(),
        },
        // 03:30-05:00 KST, overlapping the first.
        WindowSpec {
            cron: "0 30 18 * * *".into(),
            duration: "90m".into(),
            time_zone: "UTC".into(),
        },
    ])
    .unwrap()
    .unwrap();
    let state = w.state_at(utc(2026, 6, 1, 17, 30, 0));
    assert!(state.open);
    assert_eq!(state.closes_at, Some(utc(2026, 6, 1, 20, 0, 0)));
    assert_eq!(state.next_change(), Some(utc(2026, 6, 1, 20, 0, 0)));
    // Overlapping for ever (every hour, two hours long): open, no close.
    let always = windows("0 0 * * * *", "2h", "UTC");
    let state = always.state_at(utc(2026, 6, 1, 0, 0, 0));
    assert!(state.open && state.closes_at.is_none());
}

#[test]
fn bad_windows_are_refused_with_what_to_write() {
    let parse = |cron: &str, duration: &str, zone: &str| {
        Windows::parse(&[WindowSpec {
            cron: cron.into(),
            duration: duration.into(),
            time_zone: zone.into(),
        }])
        .unwrap_err()
        .to_string()
    };
    assert!(parse("0 2 * * *", "3h", "UTC").contains("six fields"));
    assert!(parse("0 0 2 * * *", "3h", "Asia/Sejong").contains("IANA"));
    assert!(parse("0 0 2 * * *", "0h", "UTC").contains("longer than zero"));
    assert!(parse("0 0 2 * * *", "3 hours", "UTC").contains("unknown unit"));
    assert!(parse("0 0 2 30 2 *", "3h", "UTC").contains("never open"));
    assert!(Windows::parse(&[]).unwrap().is_none(), "none: always open");
}
