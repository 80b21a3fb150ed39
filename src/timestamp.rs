//! RFC 3339 timestamps as Vault writes them (`2026-11-30T05:07:22.226291923Z`), converted
//! to and from Unix time by hand: keywrap needs only UTC parsing and printing, not a
//! calendar library.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i128);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    pub fn from_system(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(after.as_nanos() as i128),
            Err(before) => Timestamp(-(before.duration().as_nanos() as i128)),
        }
    }

    /// Whole seconds since the epoch.
    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1_000_000_000) as i64
    }

    /// How long after `earlier` this is; zero when it is not after.
    pub fn since(self, earlier: Timestamp) -> Duration {
        let nanos = (self.0 - earlier.0).max(0);
        Duration::from_nanos(nanos.min(u64::MAX as i128) as u64)
    }

    pub fn minus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0 - duration.as_nanos() as i128)
    }

    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0 + duration.as_nanos() as i128)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; also accepts a space for `T` and
    /// a bare date (midnight UTC), which is how people write `--since`.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = b.get(range)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(
                digits
                    .iter()
                    .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
            )
        };
        let year = number(0..4)?;
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let month = number(5..7)?;
        let day = number(8..10)?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let days = days_from_civil(year, month, day);
        if b.len() == 10 {
            return Some(Timestamp(i128::from(days) * 86_400 * 1_000_000_000));
        }
        if !matches!(b.get(10), Some(b'T' | b't' | b' '))
            || b.get(13) != Some(&b':')
            || b.get(16) != Some(&b':')
        {
            return None;
        }
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut position = 19;
        let mut nanos: i64 = 0;
        if b.get(position) == Some(&b'.') {
            position += 1;
            let start = position;
            while b.get(position).is_some_and(u8::is_ascii_digit) {
                if position - start < 9 {
                    nanos = nanos * 10 + i64::from(b[position] - b'0');
                }
                position += 1;
            }
            let digits = (position - start).min(9);
            if digits == 0 {
                return None;
            }
            nanos *= 10i64.pow(9 - digits as u32);
        }
        let offset_seconds = match b.get(position) {
            Some(b'Z' | b'z') if b.len() == position + 1 => 0,
            Some(sign @ (b'+' | b'-')) if b.len() == position + 6 && b[position + 3] == b':' => {
                let hours = number(position + 1..position + 3)?;
                let minutes = number(position + 4..position + 6)?;
                let offset = hours * 3600 + minutes * 60;
                if *sign == b'+' {
                    offset
                } else {
                    -offset
                }
            }
            _ => return None,
        };
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
        Some(Timestamp(
            i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
        ))
    }

    /// `2026-11-30T05:07:22Z` (whole seconds, UTC).
    pub fn to_rfc3339(self) -> String {
        let seconds = self.seconds();
        let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vault_timestamps() {
        let t = Timestamp::parse("2026-11-30T05:07:22.226291923Z").unwrap();
        assert_eq!(t.seconds(), 1_796_015_242);
        assert_eq!(t.0 % 1_000_000_000, 226_291_923);
        assert_eq!(t.to_rfc3339(), "2026-11-30T05:07:22Z");
        let short = Timestamp::parse("2026-11-30T05:07:22.5Z").unwrap();
        assert_eq!(short.0 % 1_000_000_000, 500_000_000);
    }

    #[test]
    fn handles_offsets_dates_and_the_epoch() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z"), Some(Timestamp(0)));
        assert_eq!(
            Timestamp::parse("2024-02-29T01:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            Timestamp::parse("2024-03-01").unwrap().to_rfc3339(),
            "2024-03-01T00:00:00Z"
        );
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "2026-11-30T05:07",
            "2026-13-01T00:00:00Z",
            "2026-11-30T05:07:22",
            "hmac-sha256:ab",
            "2026-11-30T05:07:22.Z",
        ] {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
    }
}
