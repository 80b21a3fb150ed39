//! The HTTP client for Vault and OpenBao.
//!
//! Written on reqwest rather than a Vault SDK because keywrap needs what the SDKs lack:
//! its own audit headers on every request, `VAULT_NAMESPACE` and `BAO_*` settings, retries
//! with backoff, Vault's error strings in messages, and a token that never appears in a
//! `Debug` dump. The token header is marked sensitive so HTTP libraries never log it.

pub mod kv;
pub mod tls;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::identity::RunIdentity;
use crate::secret::{ExposeSecret, SecretString};
use crate::settings::Connection;

/// Attempts per request on connection errors, 5xx and 429.
const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client bound to one Vault address, one run identity and (once set) one token.
pub struct VaultClient {
    http: reqwest::Client,
    address: reqwest::Url,
    namespace: Option<String>,
    token: Option<SecretString>,
    deadline: Instant,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.address.as_str())
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A response body, wiped from memory when dropped since it may hold secret values.
pub struct VaultResponse {
    pub status: StatusCode,
    pub body: Zeroizing<Vec<u8>>,
}

impl VaultResponse {
    /// Parses the body as JSON.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, VaultError> {
        serde_json::from_slice(&self.body).map_err(|err| VaultError::Malformed {
            path: what.to_string(),
            cause: err.to_string(),
        })
    }

    /// Vault's `errors` array, for messages.
    pub fn errors(&self) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<String>,
        }
        serde_json::from_slice::<Errors>(&self.body)
            .map(|e| e.errors)
            .unwrap_or_default()
    }
}

/// What went wrong talking to Vault, before any meaning is given to an API status.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot reach Vault at {address} ({attempts} attempts): {cause}; check VAULT_ADDR and that the server is up")]
    Unreachable {
        address: String,
        attempts: u32,
        cause: String,
    },
    #[error("TLS connection to {address} failed: {cause}; set VAULT_CACERT to the CA that signed Vault's certificate (VAULT_SKIP_VERIFY only for testing)")]
    Tls { address: String, cause: String },
    #[error("Vault at {address} is sealed; unseal it (`vault operator unseal`) and try again")]
    Sealed { address: String },
    #[error("Vault answered {status} for {path}{}", api_detail(.errors))]
    Api {
        status: u16,
        path: String,
        errors: Vec<String>,
    },
    #[error("Vault at {address} did not answer {path} within the {seconds}s deadline (--timeout); last problem: {cause}")]
    Deadline {
        address: String,
        path: String,
        seconds: u64,
        cause: String,
    },
    #[error("unexpected answer from Vault for {path}: {cause}")]
    Malformed { path: String, cause: String },
}

fn api_detail(errors: &[String]) -> String {
    let text: Vec<String> = errors
        .iter()
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|e| !e.is_empty())
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {}", text.join("; "))
    }
}

impl VaultClient {
    /// A client for the resolved connection, sending the run's identity headers.
    pub fn new(connection: &Connection, identity: &RunIdentity) -> Result<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in identity.headers() {
            let value = HeaderValue::from_str(&value)
                .with_context(|| format!("cannot send the {name} header"))?;
            let name = HeaderName::from_bytes(name.as_bytes()).expect("identity header names are valid");
            headers.insert(name, value);
        }
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(connection.timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if connection.address.value.scheme() == "https" {
            if connection.tls.skip_verify {
                crate::log::warn(
                    "TLS VERIFICATION IS OFF (VAULT_SKIP_VERIFY): anyone on the network path can read the secrets and the token. Use VAULT_CACERT instead.",
                );
            }
            builder = builder.use_preconfigured_tls(tls::client_config(&connection.tls)?);
        }
        let http = builder.build().context("cannot create the HTTP client")?;
        Ok(VaultClient {
            http,
            address: connection.address.value.clone(),
            namespace: connection.namespace.as_ref().map(|n| n.value.clone()),
            token: None,
            deadline: Instant::now() + connection.timeout,
        })
    }

    pub fn set_token(&mut self, token: SecretString) {
        self.token = Some(token);
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    pub fn address(&self) -> &str {
        self.address.as_str().trim_end_matches('/')
    }

    /// Seconds in the run's total deadline, for messages.
    fn deadline_seconds(&self) -> u64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
    }

    pub async fn get(&self, path: &str) -> Result<VaultResponse, VaultError> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<VaultResponse, VaultError> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// Sends one API request (path relative to `/v1/`, query included), retrying
    /// connection errors, 5xx and 429 with jittered exponential backoff inside the deadline.
    /// Any other status is returned for the caller to interpret.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<VaultResponse, VaultError> {
        let url = format!("{}/v1/{}", self.address(), path);
        let mut last_problem = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            if Instant::now() >= self.deadline {
                return Err(VaultError::Deadline {
                    address: self.address().to_string(),
                    path: path.to_string(),
                    seconds: self.deadline_seconds(),
                    cause: last_problem,
                });
            }
            let mut request = self.http.request(method.clone(), &url);
            if let Some(token) = &self.token {
                let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                    VaultError::Malformed {
                        path: path.to_string(),
                        cause: "the Vault token has characters that cannot be sent".into(),
                    }
                })?;
                value.set_sensitive(true);
                request = request.header("X-Vault-Token", value);
            }
            if let Some(namespace) = &self.namespace {
                request = request.header("X-Vault-Namespace", namespace);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let retry_after = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.bytes().await.map(Vec::from);
                    let body = match body {
                        Ok(body) => Zeroizing::new(body),
                        Err(err) => {
                            last_problem = describe(&err);
                            self.backoff(attempt, None).await;
                            continue;
                        }
                    };
                    let answer = VaultResponse { status, body };
                    let retryable = status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED
                        || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retryable {
                        return Ok(answer);
                    }
                    let sealed = status == StatusCode::SERVICE_UNAVAILABLE
                        && answer.errors().iter().any(|e| e.contains("sealed"));
                    if attempt == MAX_ATTEMPTS {
                        if sealed {
                            return Err(VaultError::Sealed {
                                address: self.address().to_string(),
                            });
                        }
                        return Err(VaultError::Api {
                            status: status.as_u16(),
                            path: path.to_string(),
                            errors: answer.errors(),
                        });
                    }
                    last_problem = format!("HTTP {status}");
                    retry_after
                }
                Err(err) => {
                    if let Some(cause) = tls_failure(&err) {
                        return Err(VaultError::Tls {
                            address: self.address().to_string(),
                            cause,
                        });
                    }
                    last_problem = describe(&err);
                    if attempt == MAX_ATTEMPTS {
                        return Err(VaultError::Unreachable {
                            address: self.address().to_string(),
                            attempts: attempt,
                            cause: last_problem,
                        });
                    }
                    None
                }
            };
            crate::log::verbose(format_args!(
                "{path}: {last_problem}; retrying (attempt {} of {MAX_ATTEMPTS})",
                attempt + 1
            ));
            self.backoff(attempt, retry_after).await;
        }
        Err(VaultError::Unreachable {
            address: self.address().to_string(),
            attempts: MAX_ATTEMPTS,
            cause: last_problem,
        })
    }

    /// Sleeps before the next attempt: `Retry-After` when Vault gave one, else jittered
    /// exponential backoff; never past the deadline.
    async fn backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        let delay = retry_after.unwrap_or_else(|| backoff_delay(attempt));
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(delay.min(remaining)).await;
    }
}

/// Full-jitter exponential backoff: a random delay up to 100 ms · 2^(attempt-1), capped.
fn backoff_delay(attempt: u32) -> Duration {
    let ceiling = FIRST_BACKOFF
        .saturating_mul(1 << (attempt.saturating_sub(1)).min(10))
        .min(MAX_BACKOFF);
    let millis = ceiling.as_millis() as u64;
    Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
}

/// The rustls error behind a failed request, if it was a TLS failure. The TLS stack wraps
/// it in `io::Error`s, whose `source()` skips the wrapped error, so those are opened too.
fn tls_failure(err: &reqwest::Error) -> Option<String> {
    fn search(error: &(dyn std::error::Error + 'static)) -> Option<String> {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = search(inner) {
                return Some(found);
            }
        }
        error.source().and_then(search)
    }
    search(err)
}

/// The innermost cause of a transport error, which is the informative one.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    if err.is_timeout() {
        format!("timed out ({text})")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..8 {
            let delay = backoff_delay(attempt);
            let ceiling = (100u64 << (attempt - 1)).min(2000);
            assert!(delay.as_millis() as u64 >= ceiling / 2 && delay.as_millis() as u64 <= ceiling);
        }
    }

    #[test]
    fn api_errors_are_one_line() {
        let err = VaultError::Api {
            status: 403,
            path: "secret/data/x".into(),
            errors: vec!["1 error occurred:\n\t* permission denied\n\n".into()],
        };
        assert_eq!(
            err.to_string(),
            "Vault answered 403 for secret/data/x: 1 error occurred: * permission denied"
        );
    }
}
