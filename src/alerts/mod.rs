//! Alerts to a webhook: Slack incoming-webhook messages or plain JSON, sent once per
//! threshold and period (across replicas, with [`dedup::RedisDedup`]), retried with bounded
//! backoff, and never holding a client key.
//!
//! - [`config`]: `[[proxy.alerts]]`, parsed and validated.
//! - [`dedup`]: "has this alert fired in this period already?", in process or in Redis.
//! - [`sender`]: the webhook request and its retries.

/// The `[[proxy.alerts]]` settings live with the other configuration types (a lower layer).
pub use crate::alert_settings as config;
pub mod dedup;
pub mod sender;

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use crate::proxy::keys::KEY_PREFIX;

pub use config::{AlertRule, Format};
pub use dedup::{Dedup, MemoryDedup, RedisDedup};
pub use sender::Sender;

/// One thing a person should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The rule: `budget`, `rate_limited`, `upstream_errors`, `revoked_key`, or an audit
    /// report flag (`denied`, `new_host`, `new_ci_job`, `burst`).
    pub rule: String,
    /// What it is about: a key's name, a route, a secret path. Never a key.
    pub subject: String,
    /// Which threshold was crossed (`80%`, `5 in 10m`), part of what is deduplicated.
    pub threshold: String,
    /// The period it counts in (a budget period, a day), part of what is deduplicated.
    pub period: String,
    pub message: String,
}

impl Alert {
    /// Fires once per rule, subject, threshold and period.
    pub fn dedup_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.rule, self.subject, self.threshold, self.period
        )
    }

    /// The request body in `format`, with anything shaped like a client key masked.
    pub fn body(&self, format: Format) -> Value {
        let (subject, message) = (scrub(&self.subject), scrub(&self.message));
        match format {
            Format::Slack => json!({
                "text": format!("keywrap: {message}"),
                "blocks": [{
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": format!("*keywrap {}* `{}`\n{}", self.rule, subject, message)},
                }],
            }),
            Format::Json => json!({
                "source": "keywrap",
                "rule": self.rule,
                "subject": subject,
                "threshold": self.threshold,
                "period": self.period,
                "message": message,
            }),
        }
    }
}

/// Masks every word that starts with the client-key prefix: alerts carry names, and this
/// keeps a key out even if one reached a message by mistake.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY_PREFIX) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(tail.len());
        out.push_str("[key redacted]");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A sender with its deduplication: what the proxy and `audit report --alert` use.
pub struct Alerter<D: Dedup> {
    pub sender: Sender,
    pub dedup: D,
}

impl<D: Dedup> Alerter<D> {
    /// Sends `alert` unless it already fired within `period`; true if this call sent it.
    pub async fn fire(&self, alert: &Alert, period: Duration) -> Result<bool> {
        if !self.dedup.first(&alert.dedup_key(), period).await? {
            return Ok(false);
        }
        self.sender.send(alert).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(message: &str) -> Alert {
        Alert {
            rule: "budget".into(),
            subject: "alice".into(),
            threshold: "80%".into(),
            period: "total".into(),
            message: message.into(),
        }
    }

    #[test]
    fn bodies_carry_no_key() {
        let fake = format!("{KEY_PREFIX}AAAAfakefakefakefakefake_-x");
        let a = alert(&format!("alice ({fake}) spent 80% of its budget"));
        for format in [Format::Slack, Format::Json] {
            let body = a.body(format).to_string();
            assert!(
                !body.contains(&fake) && !body.contains("fakefake"),
                "{body}"
            );
            assert!(body.contains("alice"));
        }
        assert_eq!(a.body(Format::Json)["threshold"], "80%");
        assert!(a.body(Format::Slack)["text"]
            .as_str()
            .unwrap()
            .starts_with("keywrap: alice ([key redacted]) spent"));
    }

    #[test]
    fn dedup_keys_differ_by_threshold_and_period() {
        let a = alert("x");
        let mut b = a.clone();
        b.threshold = "95%".into();
        let mut c = a.clone();
        c.period = "2026-12".into();
        assert_ne!(a.dedup_key(), b.dedup_key());
        assert_ne!(a.dedup_key(), c.dedup_key());
        assert_eq!(a.dedup_key(), alert("other words").dedup_key());
    }
}
