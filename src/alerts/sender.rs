//! The webhook request: a POST of the alert's JSON body, retried with exponential backoff on
//! connection failures, 429 and 5xx, a bounded number of times. Errors name the webhook's
//! host only: the rest of a Slack webhook URL is its secret.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{Alert, Format};

/// Attempts per alert, and the first and largest waits between them.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Sender {
    url: reqwest::Url,
    format: Format,
    http: reqwest::Client,
    backoff: Duration,
}

impl Sender {
    pub fn new(url: &str, format: Format) -> Result<Sender> {
        let url = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .context("the alert webhook is not an http:// or https:// URL (not shown)")?;
        let tls = match url.scheme() {
            "https" => crate::vault::tls::client_config(&crate::settings::TlsSettings::default())?,
            _ => crate::vault::tls::plain_http_config()?,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(crate::identity::RunIdentity::user_agent())
            .tls_backend_preconfigured(tls)
            .build()
            .context("cannot create the HTTP client for alerts")?;
        Ok(Sender {
            url,
            format,
            http,
            backoff: FIRST_BACKOFF,
        })
    }

    /// The first wait between attempts (tests shorten it).
    pub fn with_backoff(mut self, first: Duration) -> Sender {
        self.backoff = first;
        self
    }

    fn host(&self) -> String {
        self.url.host_str().unwrap_or("?").to_string()
    }

    pub async fn send(&self, alert: &Alert) -> Result<()> {
        let body = serde_json::to_vec(&alert.body(self.format))?;
        let mut wait = self.backoff;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status != 429 && status < 500 {
                        bail!(
                            "the alert webhook at {} refused the alert: HTTP {status}",
                            self.host()
                        );
                    }
                    last = format!("HTTP {status}");
                }
                // reqwest's message would hold the whole URL.
                Err(err) if err.is_timeout() => last = "timed out".into(),
                Err(_) => last = "connection failed".into(),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
        bail!(
            "the alert webhook at {} did not take the alert after {ATTEMPTS} attempts: {last}",
            self.host()
        )
    }
}
