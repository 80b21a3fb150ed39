//! `[[proxy.alerts]]`: where alerts go and when they fire.
//!
//! ```toml
//! [[proxy.alerts]]
//! url = "secret/keywrap/slack#webhook"   # a reference: a webhook URL is a secret
//! format = "slack"                       # or "json" (the default)
//! budget_percent = [50, 80, 95, 100]
//! rate_limited = { times = 20, minutes = 10 }
//! upstream_error_rate = { percent = 5, minutes = 5 }
//! revoked_key = true
//! ```

use std::time::Duration;

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::reference::Reference;

/// The body an alert is sent as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// A Slack incoming-webhook message (`text` and one `section` block).
    Slack,
    /// `{"source": "keywrap", "rule", "subject", "threshold", "period", "message"}`.
    #[default]
    Json,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "slack" => Ok(Format::Slack),
            "json" => Ok(Format::Json),
            _ => bail!("alert format must be \"slack\" or \"json\""),
        }
    }
}

/// `[[proxy.alerts]]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSection {
    pub url: String,
    pub format: Option<String>,
    #[serde(default)]
    pub budget_percent: Vec<u32>,
    pub rate_limited: Option<RateLimitedSection>,
    pub upstream_error_rate: Option<ErrorRateSection>,
    #[serde(default)]
    pub revoked_key: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitedSection {
    pub times: u32,
    pub minutes: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRateSection {
    pub percent: f64,
    pub minutes: u32,
}

/// One validated alert destination and its thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub url: Reference,
    pub format: Format,
    /// Ascending, each 1 to 100.
    pub budget_percent: Vec<u32>,
    /// A client refused with 429 at least this many times within this long.
    pub rate_limited: Option<(u32, Duration)>,
    /// Upstream failures above this share of requests (0 to 1) within this long.
    pub upstream_error_rate: Option<(f64, Duration)>,
    /// A revoked client key is still being tried.
    pub revoked_key: bool,
}

impl AlertSection {
    /// `index` is the entry's place in the file (from 1), for messages.
    pub fn validate(&self, index: usize) -> Result<AlertRule> {
        let at = format!("[[proxy.alerts]] entry {index}");
        if self.url.contains("://") && !self.url.starts_with("vault://") {
            bail!("{at}: url must be a reference to the webhook URL in Vault (PATH#FIELD), not the URL itself (not shown)");
        }
        let url = self
            .url
            .parse::<Reference>()
            .map_err(|err| anyhow::anyhow!("{at}: url: {err}"))?;
        let format = self
            .format
            .as_deref()
            .map_or(Ok(Format::default()), str::parse)?;
        let mut budget_percent = self.budget_percent.clone();
        if let Some(bad) = budget_percent.iter().find(|p| !(1..=100).contains(*p)) {
            bail!("{at}: budget_percent {bad} is not from 1 to 100");
        }
        budget_percent.sort_unstable();
        budget_percent.dedup();
        let minutes = |m: u32, name: &str| -> Result<Duration> {
            if m == 0 {
                bail!("{at}: {name}.minutes must be at least 1");
            }
            Ok(Duration::from_secs(u64::from(m) * 60))
        };
        let rate_limited = match &self.rate_limited {
            Some(r) if r.times == 0 => bail!("{at}: rate_limited.times must be at least 1"),
            Some(r) => Some((r.times, minutes(r.minutes, "rate_limited")?)),
            None => None,
        };
        let upstream_error_rate = match &self.upstream_error_rate {
            Some(e) if !(e.percent > 0.0 && e.percent <= 100.0) => {
                bail!("{at}: upstream_error_rate.percent must be above 0 and at most 100")
            }
            Some(e) => Some((
                e.percent / 100.0,
                minutes(e.minutes, "upstream_error_rate")?,
            )),
            None => None,
        };
        if budget_percent.is_empty()
            && rate_limited.is_none()
            && upstream_error_rate.is_none()
            && !self.revoked_key
        {
            bail!("{at}: no thresholds: set budget_percent, rate_limited, upstream_error_rate or revoked_key");
        }
        Ok(AlertRule {
            url,
            format,
            budget_percent,
            rate_limited,
            upstream_error_rate,
            revoked_key: self.revoked_key,
        })
    }
}

impl AlertRule {
    /// The budget thresholds crossed by going from `before` to `after` tokens spent.
    pub fn budget_crossed(&self, budget: u64, before: u64, after: u64) -> Vec<u32> {
        if budget == 0 {
            return Vec::new();
        }
        let level = |p: u32| (budget * u64::from(p)).div_ceil(100);
        self.budget_percent
            .iter()
            .copied()
            .filter(|p| before < level(*p) && after >= level(*p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        proxy: Proxy,
    }
    #[derive(Deserialize)]
    struct Proxy {
        alerts: Vec<AlertSection>,
    }

    fn parse(toml_text: &str) -> Result<AlertRule> {
        let file: File = toml::from_str(toml_text)?;
        file.proxy.alerts[0].validate(1)
    }

    #[test]
    fn parses_every_threshold() {
        let rule = parse(
            r#"
            [[proxy.alerts]]
            url = "secret/keywrap/slack#webhook"
            format = "slack"
            budget_percent = [95, 50, 80, 100, 80]
            rate_limited = { times = 20, minutes = 10 }
            upstream_error_rate = { percent = 5, minutes = 5 }
            revoked_key = true
            "#,
        )
        .unwrap();
        assert_eq!(rule.url.path, "secret/keywrap/slack");
        assert_eq!(rule.format, Format::Slack);
        assert_eq!(rule.budget_percent, [50, 80, 95, 100]);
        assert_eq!(rule.rate_limited, Some((20, Duration::from_secs(600))));
        assert_eq!(
            rule.upstream_error_rate,
            Some((0.05, Duration::from_secs(300)))
        );
        assert!(rule.revoked_key);
        assert_eq!(rule.budget_crossed(1000, 400, 810), [50, 80]);
        assert_eq!(rule.budget_crossed(1000, 810, 900), Vec::<u32>::new());
        assert_eq!(rule.budget_crossed(1000, 900, 1000), [95, 100]);
    }

    #[test]
    fn rejects_mistakes() {
        for (entry, says) in [
            (
                "url = \"https://hooks.example.invalid/T000/B000/not-real\"\nrevoked_key = true",
                "not the URL itself",
            ),
            ("url = \"secret/s#f\"", "no thresholds"),
            (
                "url = \"secret/s#f\"\nbudget_percent = [0]",
                "budget_percent 0",
            ),
            (
                "url = \"secret/s#f\"\nformat = \"xml\"\nrevoked_key = true",
                "slack",
            ),
            (
                "url = \"secret/s#f\"\nrate_limited = { times = 1, minutes = 0 }",
                "minutes",
            ),
            (
                "url = \"secret/s#f\"\nupstream_error_rate = { percent = 200, minutes = 1 }",
                "percent",
            ),
        ] {
            let err = parse(&format!("[[proxy.alerts]]\n{entry}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{entry}: {err}");
            assert!(!err.contains("not-real"), "{err}");
        }
        assert!(parse("[[proxy.alerts]]\nurl = \"secret/s#f\"\nbogus = 1").is_err());
    }
}
