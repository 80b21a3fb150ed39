//! Durations as people write them in keywrap.toml and on the command line: `90d`, `12h`,
//! `30s`, `1h30m`. One parser shared by `overlap`, `max_age` and the audit report's filters.
//!
//! Hand-written on purpose: humantime reads `1M` as a month beside `1m` a minute, takes
//! `1.5h` and spaces, and its errors quote the text; jiff's `SignedDuration` refuses `d` and
//! `w`. This strict grammar is small and its errors name only the length.

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// A command-line interval: like [`parse`], and a bare number is seconds (as `sleep` and
/// `timeout` take it), which is unambiguous for intervals of seconds to minutes.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        Ok(_) => Err(format!("invalid interval {text:?}: must be more than zero")),
        Err(_) => parse(text),
    }
}

/// Seconds (`2.5`) or a duration (`30s`, `10m`).
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    // A bound keeps deadlines (now + this) representable: a longer wait means "never".
    const MAX: Duration = Duration::from_secs(366 * 24 * 3600);
    let parsed = match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::try_from_secs_f64(s).unwrap_or(MAX)),
        Ok(_) => Err(format!("{text:?} is not a positive number of seconds")),
        Err(_) => parse(text).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
            format!("{text:?} is neither a number of seconds nor a duration like 30s or 10m")
        }),
    }?;
    if parsed > MAX {
        return Err(format!("{text:?} is more than a year"));
    }
    Ok(parsed)
}

/// Parses `<number><unit>` groups (units `s`, `m`, `h`, `d`, `w`), e.g. `90d` or `1d12h`.
/// A bare number is refused: `90` could mean seconds or days.
pub fn parse(text: &str) -> Result<Duration, String> {
    // The text is not repeated: in keywrap.toml it is file content (the message has the line).
    let fail = |why: &str| {
        format!(
            "invalid duration ({}, not shown): {why}; write e.g. 90d, 12h, 30m, 45s or 1d12h",
            crate::redact::length(text)
        )
    };
    if text.is_empty() {
        return Err(fail("empty"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(fail("expected a number"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| fail("number too large"))?;
        let unit = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => MINUTE,
            Some('h') => HOUR,
            Some('d') => DAY,
            Some('w') => WEEK,
            Some(_) => return Err(fail("unknown unit")),
            None => return Err(fail("missing unit")),
        };
        total = number
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(|| fail("too large"))?;
        rest = &rest[digits + 1..];
    }
    if total == 0 {
        return Err(fail("must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// A duration in its two largest units, for tables: `97d 3h`, `5h 12m`, `42s`.
pub fn format(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let units = [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (size, name) in units {
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            break;
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_and_at_most_a_year() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        for bad in ["0", "-1", "inf", "NaN", "1e19", "1e400", "400d", "x"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_take_bare_seconds() {
        assert_eq!(parse_interval("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("x").is_err());
    }

    #[test]
    fn parses_units_and_sums() {
        let cases = [
            ("30s", 30),
            ("15m", 900),
            ("12h", 43_200),
            ("90d", 7_776_000),
            ("2w", 1_209_600),
            ("1d12h", 129_600),
            ("1h30m15s", 5_415),
        ];
        for (text, seconds) in cases {
            assert_eq!(parse(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
    }

    #[test]
    fn refuses_ambiguous_or_broken_input() {
        for text in [
            "",
            "90",
            "d",
            "5x",
            "1.5h",
            "-1d",
            "0s",
            " 1d",
            "1d ",
            "99999999999999999999d",
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains("invalid duration"), "{text}: {err}");
        }
    }

    #[test]
    fn formats_two_largest_units() {
        assert_eq!(format(Duration::from_secs(0)), "0s");
        assert_eq!(format(Duration::from_secs(42)), "42s");
        assert_eq!(format(Duration::from_secs(3 * 3600 + 5)), "3h");
        assert_eq!(
            format(Duration::from_secs(97 * 86_400 + 3 * 3600 + 59)),
            "97d 3h"
        );
        assert_eq!(format(Duration::from_secs(312)), "5m 12s");
    }
}
