//! Durations as an operator writes them in the configuration: `3h`,
//! `90m`, `1h30m`, `5d`, `45s`. Units are days, hours, minutes and seconds;
//! a day here is 24 hours of elapsed time, not a calendar day.

use std::time::Duration;

/// Parses `3h`, `1h30m`, `5d`, ... Whitespace between parts is allowed.
pub fn parse(text: &str) -> Result<Duration, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err("an empty duration: write e.g. \"3h\", \"90m\" or \"5d\"".into());
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in compact.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            other => {
                return Err(format!(
                    "duration {text:?}: unknown unit {other:?}; use d, h, m or s (e.g. \"3h\", \"1h30m\")"
                ));
            }
        };
        let value: u64 = digits
            .parse()
            .map_err(|_| format!("duration {text:?}: a unit without a number before it"))?;
        digits.clear();
        total = value
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "duration {text:?}: a number without a unit; write e.g. \"{digits}h\" or \"{digits}m\""
        ));
    }
    Ok(Duration::from_secs(total))
}

/// The shortest text [`parse`] reads back as `duration` (whole seconds).
pub fn format(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_units_an_operator_writes() {
        assert_eq!(parse("3h").unwrap(), Duration::from_secs(3 * 3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("5d").unwrap(), Duration::from_secs(5 * 86_400));
        assert_eq!(parse("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(5 * 86_400)), "5d");
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_how_to_write_it() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("3").unwrap_err().contains("\"3h\""));
        assert!(parse("3 hours").unwrap_err().contains("unknown unit"));
        assert!(parse("h").unwrap_err().contains("without a number"));
        assert!(parse("99999999999999999999d").is_err());
    }
}
