//! The access log: one line per request on stderr, as text or JSON. It names the client by
//! its key's name and leaves out the query string, where some APIs take keys.

use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
    Off,
}

impl FromStr for LogFormat {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            "off" => Ok(LogFormat::Off),
            _ => anyhow::bail!("access log format {text:?}: use text, json or off"),
        }
    }
}

/// What one line says.
pub struct Entry<'a> {
    pub client: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub total: Duration,
    pub upstream: Option<Duration>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Set when the request was sent again with the previous key after a 401.
    pub previous_key: bool,
}

pub fn write(format: LogFormat, entry: &Entry) {
    let millis = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let line = match format {
        LogFormat::Off => return,
        LogFormat::Json => {
            let mut value = json!({
                "time": rfc3339(SystemTime::now()),
                "client": entry.client,
                "route": entry.route,
                "method": entry.method,
                "path": entry.path,
                "status": entry.status,
                "duration_ms": millis(entry.total),
                "upstream_ms": entry.upstream.map(millis),
                "prompt_tokens": entry.prompt_tokens,
                "completion_tokens": entry.completion_tokens,
            });
            if entry.previous_key {
                value["previous_key"] = json!(true);
            }
            format!("{value}\n")
        }
        LogFormat::Text => {
            let upstream = entry
                .upstream
                .map(|u| format!(" upstream={}ms", millis(u)))
                .unwrap_or_default();
            let tokens = if entry.prompt_tokens + entry.completion_tokens > 0 {
                format!(
                    " tokens={}+{}",
                    entry.prompt_tokens, entry.completion_tokens
                )
            } else {
                String::new()
            };
            format!(
                "{} {} {} {} {} {}ms{upstream}{tokens}{}\n",
                rfc3339(SystemTime::now()),
                entry.client,
                entry.method,
                entry.path,
                entry.status,
                millis(entry.total),
                if entry.previous_key {
                    " previous-key"
                } else {
                    ""
                }
            )
        }
    };
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `2026-11-30T05:20:00.123Z`, without a date library.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_480_000_123);
        assert_eq!(rfc3339(t), "2025-11-30T05:20:00.123Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
