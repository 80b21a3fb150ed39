//! RFC 3339 timestamps as Vault writes them (`2026-11-30T05:07:22.226291923Z`), parsed and
//! printed by jiff (its calendar arithmetic replaced a hand-written one; the audit report,
//! which parses one per entry, kept its speed: docs/performance.md).

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
        let parsed = if text.len() == 10 {
            jiff::civil::Date::strptime("%Y-%m-%d", text)
                .ok()?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()?
                .timestamp()
        } else {
            text.parse::<jiff::Timestamp>().ok()?
        };
        Some(Timestamp(parsed.as_nanosecond()))
    }

    /// `2026-11-30T05:07:22Z` (whole seconds, UTC).
    pub fn to_rfc3339(self) -> String {
        let time = jiff::Timestamp::from_second(self.seconds()).unwrap_or(if self.0 < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        format!("{time:.0}")
    }
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
            Timestamp::parse("2024-03-01 12:00:00Z")
                .unwrap()
                .to_rfc3339(),
            "2024-03-01T12:00:00Z"
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
