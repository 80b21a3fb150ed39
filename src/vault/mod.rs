//! The client for Vault and OpenBao: vaultrs's API catalogue, sent by keywrap's own
//! transport.
//!
//! Requests are vaultrs's typed endpoints (KV v1 and v2, logins, tokens, response
//! unwrapping) and, for what vaultrs lacks, keywrap's own rustify endpoints beside them
//! ([`endpoints`]); vaultrs's `EndpointMiddleware` adds the `/v1` prefix, the token and the
//! namespace. [`VaultClient`] sends them as a `rustify::client::Client` of its own, not
//! vaultrs's reqwest client, because keywrap needs what that one lacks: several nodes with
//! failover, retries with backoff within the run's deadline, redirects followed only to the
//! configured nodes, keywrap's identity headers on every request, Vault's error strings in
//! messages, answers wiped from memory, and a token that is never in a `Debug` dump
//! (vaultrs's `VaultClientSettings` prints it, so keywrap never builds one). The token
//! header is marked sensitive so HTTP libraries never log it.

pub mod endpoints;
pub mod kv;
pub mod tls;
pub mod versions;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use rustify::endpoint::{Endpoint, MiddleWare};
use rustify::errors::ClientError;
use serde::de::DeserializeOwned;
use vaultrs::api::{AuthInfo, EndpointMiddleware};
use zeroize::{Zeroize, Zeroizing};

use crate::identity::RunIdentity;
use crate::secret::{ExposeSecret, SecretString};
use crate::settings::Connection;

/// Rounds over all nodes when nothing answers (connection refused, timeouts) or a node is
/// sealed: a server that is down fails fast.
const UNREACHABLE_ROUNDS: u32 = 4;
/// Rounds when nodes answer 5xx (a cluster electing a leader recovers within seconds).
const SERVER_ERROR_ROUNDS: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client bound to one Vault cluster (one or more node addresses), one run identity and
/// (once set) one token. Clones share the connection pool, the token and the node that last
/// answered.
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    nodes: Arc<Vec<reqwest::Url>>,
    /// The URL rustify builds requests on (the first node's origin); each attempt moves the
    /// request to the node it tries.
    base: Arc<str>,
    /// Where the addresses came from, for the message when none answers.
    address_source: Arc<str>,
    /// Index of the node to try first: the one that answered last.
    current: Arc<AtomicUsize>,
    namespace: Option<String>,
    token: Option<Arc<SecretString>>,
    /// Where the token came from (`VAULT_TOKEN`, a token file, a login), for messages.
    token_source: Arc<str>,
    timeout: Duration,
    deadline: Instant,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            )
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An answer from Vault, its body wiped from memory when dropped since it may hold secret
/// values.
pub struct VaultResponse {
    pub status: StatusCode,
    pub body: Zeroizing<Vec<u8>>,
    /// The API path asked for (after `/v1/`, query included), for messages.
    pub path: String,
}

impl VaultResponse {
    /// Parses the whole body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, VaultError> {
        serde_json::from_slice(&self.body).map_err(|err| self.malformed(err.to_string()))
    }

    /// The `data` of a Vault API answer, as one of vaultrs's response types.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, VaultError> {
        self.json::<vaultrs::api::EndpointResult<T>>()?
            .data
            .ok_or_else(|| self.malformed("it has no data".into()))
    }

    /// The `auth` of an answer to a login, a renewal or a token creation, if it has one.
    /// Its `client_token` is the caller's to move into a secrecy type at once.
    pub fn auth(&self) -> Result<Option<AuthInfo>, VaultError> {
        Ok(self
            .json::<vaultrs::api::EndpointResult<serde_json::Value>>()?
            .auth)
    }

    /// Vault's `errors` array, for messages.
    pub fn errors(&self) -> Vec<String> {
        serde_json::from_slice::<vaultrs::api::EndpointError>(&self.body)
            .map(|e| e.errors)
            .unwrap_or_default()
    }

    /// The error for a status the caller has no better words for.
    pub fn api_error(&self) -> VaultError {
        VaultError::Api {
            status: self.status.as_u16(),
            path: self.path.clone(),
            errors: self.errors(),
        }
    }

    fn malformed(&self, cause: String) -> VaultError {
        VaultError::Malformed {
            path: self.path.clone(),
            cause,
        }
    }
}

/// What went wrong talking to Vault, before any meaning is given to an API status.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("cannot reach Vault ({attempts} attempts; tried {tried}); {}{}", address_hint(.address_source), tls_guess(.tried))]
    Unreachable {
        attempts: u32,
        tried: String,
        /// Where the address came from (`VAULT_ADDR`, `--address`, a keywrap.toml, `default`).
        address_source: String,
    },
    #[error("TLS connection to {address} failed: {cause}; {}", tls_hint(.cause))]
    Tls { address: String, cause: String },
    #[error("Vault is sealed (tried {tried}); unseal it (`vault operator unseal`) and try again")]
    Sealed { tried: String },
    #[error("Vault answered {status} for {path}{}", api_detail(.errors))]
    Api {
        status: u16,
        path: String,
        errors: Vec<String>,
    },
    #[error(
        "Vault did not answer {path} within the {seconds}s deadline (--timeout); tried {tried}"
    )]
    Deadline {
        path: String,
        seconds: u64,
        tried: String,
    },
    #[error("unexpected answer from Vault for {path}: {cause}")]
    Malformed { path: String, cause: String },
    #[error("Vault at {from} redirected {path} to {to}; keywrap did not follow it, so nothing was sent there: {why}")]
    Redirect {
        from: String,
        to: String,
        path: String,
        why: String,
    },
}

/// What to check when nothing answers, named after where the address came from.
fn address_hint(source: &str) -> String {
    match source {
        "default" => format!(
            "no VAULT_ADDR is set, so the default {} was tried: set VAULT_ADDR",
            crate::settings::DEFAULT_ADDRESS
        ),
        "--address" | "VAULT_ADDR" | "BAO_ADDR" => {
            format!("check {source} and that the server is up")
        }
        file => {
            format!("check the address in {file} (or set VAULT_ADDR) and that the server is up")
        }
    }
}

/// OpenBao resets a plain-HTTP connection to its TLS listener: say so.
fn tls_guess(tried: &str) -> &'static str {
    if tried.contains("http://") && tried.contains("reset by peer") {
        " (a server that speaks TLS resets plain-HTTP connections: if it does, use https://)"
    } else {
        ""
    }
}

fn tls_hint(cause: &str) -> &'static str {
    if cause.contains("not valid for name") {
        "use an address with a name the certificate holds, or reissue the certificate with this name"
    } else if cause.contains("InvalidContentType") {
        "the server does not seem to speak TLS: if it serves plain HTTP, use an http:// address"
    } else if cause.contains("received fatal alert: CertificateRequired") {
        "Vault requires a client certificate: set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY"
    } else if cause.contains("received fatal alert") {
        // An alert from the server is about keywrap's side of the handshake.
        "Vault rejected the connection: check VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (a certificate from a CA Vault trusts, not expired)"
    } else {
        "set VAULT_CACERT to the CA that signed Vault's certificate (VAULT_SKIP_VERIFY only for testing)"
    }
}

pub(crate) fn api_detail(errors: &[String]) -> String {
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

/// What each node said, for the message when a request gives up.
#[derive(Default)]
struct Attempts {
    tried: Vec<(String, String)>,
}

impl Attempts {
    fn record(&mut self, node: &str, problem: String) {
        match self.tried.iter_mut().find(|(n, _)| n == node) {
            Some(entry) => entry.1 = problem,
            None => self.tried.push((node.to_string(), problem)),
        }
    }

    fn summary(&self) -> String {
        if self.tried.is_empty() {
            return "nothing".into();
        }
        self.tried
            .iter()
            .map(|(node, problem)| format!("{node}: {problem}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How one attempt went.
enum Outcome {
    Done(VaultResponse),
    /// Nothing answered (or the answer was cut off): try the next node.
    Unreachable(String),
    Sealed,
    /// A 5xx other than sealed: the node is alive, maybe electing a leader. Or a standby
    /// that cannot serve this yet (see [`standby_not_ready`]).
    ServerError(VaultResponse),
    RateLimited(Option<Duration>),
    /// The node answered with a redirect to another node that cannot be reached: a standby
    /// pointing at an active node that just died. A new one is being elected; wait as for
    /// a 5xx.
    Electing(String),
}

/// One request on its way: what rustify built, moved to each node in turn.
struct Outgoing {
    method: Method,
    /// Path and query, from `/v1/` on.
    target: String,
    headers: HeaderMap,
    /// Wiped from memory once the last attempt has let go of it.
    body: Option<Bytes>,
    /// The API path for messages (`target` without `/v1/`).
    path: String,
}

impl From<http::Request<Vec<u8>>> for Outgoing {
    /// Takes over what rustify built; the token header is marked sensitive so that no HTTP
    /// library prints it.
    fn from(request: http::Request<Vec<u8>>) -> Self {
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        if let Some(token) = headers.get_mut("X-Vault-Token") {
            token.set_sensitive(true);
        }
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Outgoing {
            method: parts.method,
            target: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            path: api_path(&parts.uri),
            headers,
            body: (!body.is_empty()).then(|| Bytes::from_owner(Zeroizing::new(body))),
        }
    }
}

impl Outgoing {
    /// Whether Vault may have acted on the request: such a request is not sent again once
    /// it may have reached Vault, and a 301/302/303 (which would turn it into a GET without
    /// its body) is not followed.
    fn writes(&self) -> bool {
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
    }
}

/// vaultrs's middleware for one request: the `/v1` prefix, the token, the namespace. Its
/// copy of the token is wiped when the request has been built.
struct Middleware(EndpointMiddleware);

impl Drop for Middleware {
    fn drop(&mut self) {
        self.0.token.zeroize();
    }
}

impl VaultClient {
    /// A client for the resolved connection, sending the run's identity headers.
    pub fn new(connection: &Connection, identity: &RunIdentity) -> Result<Self> {
        let mut headers = HeaderMap::new();
        for (name, value) in identity.headers() {
            let value = HeaderValue::from_str(&value)
                .with_context(|| format!("cannot send the {name} header"))?;
            let name =
                HeaderName::from_bytes(name.as_bytes()).expect("identity header names are valid");
            headers.insert(name, value);
        }
        let namespace = connection.namespace.as_ref().map(|n| n.value.clone());
        if let Some(namespace) = &namespace {
            HeaderValue::from_str(namespace).with_context(|| {
                format!("the namespace {namespace:?} has characters that cannot be sent")
            })?;
        }
        let https = connection
            .address
            .value
            .iter()
            .any(|url| url.scheme() == "https");
        let tls = if https {
            if connection.tls.skip_verify {
                crate::log::warn(format_args!(
                    "TLS VERIFICATION IS OFF ({}): anyone on the network path can read the secrets and the token. Use VAULT_CACERT instead.",
                    connection.skip_verify_source.as_deref().unwrap_or("VAULT_SKIP_VERIFY")
                ));
            }
            tls::client_config(&connection.tls)?
        } else {
            tls::plain_http_config()?
        };
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(connection.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .tls_backend_preconfigured(tls)
            .build()
            .context("cannot create the HTTP client")?;
        let nodes = connection.address.value.clone();
        let base = nodes
            .first()
            .context("no Vault address")?
            .origin()
            .ascii_serialization();
        Ok(VaultClient {
            http,
            nodes: Arc::new(nodes),
            base: base.into(),
            address_source: connection.address.source.as_str().into(),
            current: Arc::new(AtomicUsize::new(0)),
            namespace,
            token: None,
            token_source: Arc::from("no token"),
            timeout: connection.timeout,
            deadline: Instant::now() + connection.timeout,
        })
    }

    /// Uses `token` from now on; `source` says where it came from, for messages.
    pub fn set_token(&mut self, token: SecretString, source: &str) {
        self.token = Some(Arc::new(token));
        self.token_source = Arc::from(source);
    }

    /// Where the token in use came from, e.g. `VAULT_TOKEN`.
    pub fn token_source(&self) -> &str {
        &self.token_source
    }

    /// The same client with a fresh deadline, for work that happens later in a run
    /// (renewing the token, revoking it when the child exits).
    pub fn renewed_deadline(&self) -> VaultClient {
        VaultClient {
            deadline: Instant::now() + self.timeout,
            ..self.clone()
        }
    }

    /// The same client using another token (e.g. a per-run child token).
    pub fn with_token(&self, token: SecretString, source: &str) -> VaultClient {
        VaultClient {
            token: Some(Arc::new(token)),
            token_source: Arc::from(source),
            ..self.clone()
        }
    }

    /// The namespace every request is sent to (`X-Vault-Namespace`), if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The node that answered last (or will be tried first).
    pub fn address(&self) -> &str {
        let index = self.current.load(Ordering::Relaxed) % self.nodes.len();
        self.nodes[index].as_str().trim_end_matches('/')
    }

    /// Sends one endpoint (vaultrs's or keywrap's own) through this client and returns
    /// Vault's answer whatever its status, which is for the caller to give meaning to.
    /// The endpoint stays the caller's, so that secrets in it can be wiped afterwards.
    pub async fn call<E: Endpoint>(&self, endpoint: &E) -> Result<VaultResponse, VaultError> {
        let named = endpoint.path().trim().trim_start_matches('/').to_string();
        let cannot_build = |err: ClientError| VaultError::Malformed {
            path: named.clone(),
            cause: format!(
                "cannot make a request of it: {}",
                describe_client_error(&err)
            ),
        };
        let mut request = endpoint.request(&self.base).map_err(&cannot_build)?;
        self.middleware(&named)?
            .0
            .request(endpoint, &mut request)
            .map_err(cannot_build)?;
        let path = api_path(request.uri());
        let response =
            rustify::client::Client::send(self, request)
                .await
                .map_err(|err| match err {
                    ClientError::GenericError { source } => match source.downcast::<VaultError>() {
                        Ok(vault) => vault,
                        Err(other) => VaultError::Malformed {
                            path: path.clone(),
                            cause: other.to_string(),
                        },
                    },
                    other => VaultError::Malformed {
                        path: path.clone(),
                        cause: describe_client_error(&other),
                    },
                })?;
        let status = response.status();
        Ok(VaultResponse {
            status,
            body: Zeroizing::new(response.into_body()),
            path,
        })
    }

    /// vaultrs's middleware with this client's token and namespace.
    fn middleware(&self, path: &str) -> Result<Middleware, VaultError> {
        let token = match &self.token {
            Some(token) => {
                // vaultrs would panic on a token that is not a valid header value.
                HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                    VaultError::Malformed {
                        path: path.to_string(),
                        cause: "the Vault token has characters that cannot be sent".into(),
                    }
                })?;
                token.expose_secret().to_string()
            }
            None => String::new(),
        };
        Ok(Middleware(EndpointMiddleware {
            token,
            version: "v1".into(),
            wrap: None,
            namespace: self.namespace.clone(),
        }))
    }

    /// Sends one API request as rustify built it. On connection errors, sealed or standby
    /// nodes and 5xx it moves to the next node and retries with jittered exponential
    /// backoff; 429 waits as `Retry-After` says. All within the run's deadline. A request
    /// that writes is retried only when Vault cannot have acted on it (no connection,
    /// sealed, rate-limited). Any other status is for the caller.
    async fn transport(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<VaultResponse, VaultError> {
        let outgoing = Outgoing::from(request);
        let path = outgoing.path.as_str();
        let node_count = self.nodes.len() as u32;
        let mut attempts = Attempts::default();
        let (mut unreachable, mut server_errors, mut limited, mut total) = (0u32, 0, 0, 0);
        let mut refusals = 0u32;
        loop {
            if Instant::now() >= self.deadline {
                return Err(VaultError::Deadline {
                    path: path.to_string(),
                    seconds: self.timeout.as_secs(),
                    tried: attempts.summary(),
                });
            }
            total += 1;
            let node = self.current.load(Ordering::Relaxed) % self.nodes.len();
            let outcome = match self.attempt(&outgoing, node).await {
                // Nothing was sent to a node whose certificate failed, nor where a node
                // redirected to somewhere keywrap does not send the token; another node
                // may do better. Once every node has failed, that error is the one to report.
                Err(refused @ (VaultError::Tls { .. } | VaultError::Redirect { .. }))
                    if refusals + 1 < node_count =>
                {
                    refusals += 1;
                    attempts.record(self.node_name(node), refused.to_string());
                    self.next_node(node);
                    continue;
                }
                other => other?,
            };
            let node_name = self.node_name(node);
            let retry_after = match outcome {
                Outcome::Done(response) => return Ok(response),
                Outcome::Unreachable(problem) => {
                    attempts.record(node_name, problem);
                    unreachable += 1;
                    if unreachable >= UNREACHABLE_ROUNDS * node_count {
                        return Err(self.unreachable(total, attempts.summary()));
                    }
                    self.next_node(node);
                    None
                }
                Outcome::Sealed => {
                    attempts.record(node_name, "sealed".into());
                    unreachable += 1;
                    if unreachable >= UNREACHABLE_ROUNDS * node_count {
                        return Err(VaultError::Sealed {
                            tried: attempts.summary(),
                        });
                    }
                    self.next_node(node);
                    None
                }
                Outcome::ServerError(response) => {
                    let status = response.status.as_u16();
                    attempts.record(
                        node_name,
                        format!("HTTP {status}{}", api_detail(&response.errors())),
                    );
                    server_errors += 1;
                    if outgoing.writes() && status != 503
                        || server_errors >= SERVER_ERROR_ROUNDS * node_count
                    {
                        return Err(response.api_error());
                    }
                    self.next_node(node);
                    None
                }
                Outcome::Electing(problem) => {
                    attempts.record(node_name, problem);
                    server_errors += 1;
                    if server_errors >= SERVER_ERROR_ROUNDS * node_count {
                        return Err(self.unreachable(total, attempts.summary()));
                    }
                    self.next_node(node);
                    None
                }
                Outcome::RateLimited(retry_after) => {
                    attempts.record(node_name, "HTTP 429 (rate limited)".into());
                    limited += 1;
                    // `Retry-After: 0` would be a busy loop: back off as without one.
                    let asked = retry_after.filter(|d| !d.is_zero());
                    Some(asked.unwrap_or_else(|| backoff_delay(limited)))
                }
            };
            // Another node may answer at once; wait only after a whole round failed.
            let round_done = node_count == 1 || total % node_count == 0;
            if retry_after.is_some() || round_done {
                crate::log::verbose(format_args!("{path}: {}; retrying", attempts.summary()));
                let round = (unreachable + server_errors).div_ceil(node_count).max(1);
                self.backoff(round, retry_after).await;
            }
        }
    }

    fn node_name(&self, node: usize) -> &str {
        self.nodes[node].as_str().trim_end_matches('/')
    }

    /// The error after every node failed to answer, listing what each did.
    fn unreachable(&self, attempts: u32, tried: String) -> VaultError {
        VaultError::Unreachable {
            attempts,
            tried,
            address_source: self.address_source.to_string(),
        }
    }

    fn next_node(&self, failed: usize) {
        if self.nodes.len() > 1 {
            let _ = self.current.compare_exchange(
                failed,
                (failed + 1) % self.nodes.len(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// One try against one node.
    async fn attempt(&self, outgoing: &Outgoing, node: usize) -> Result<Outcome, VaultError> {
        let node_name = self.node_name(node);
        let path = outgoing.path.as_str();
        let mut url = node_url(&self.nodes[node], &outgoing.target);
        // Redirects are followed here rather than by the HTTP client, to tell a standby
        // whose active node is gone (its redirect leads nowhere) from a node that is down,
        // and to follow them only where the token may go.
        let mut redirects = 0;
        let sent = loop {
            let sent = self.build(outgoing, &url).send().await;
            let next = match &sent {
                Ok(response) if redirects < MAX_REDIRECTS => {
                    redirect_location(response, !outgoing.writes())
                }
                _ => None,
            };
            match next {
                Some(next) => {
                    if let Some(why) = redirect_refusal(&url, &next, &self.nodes) {
                        return Err(VaultError::Redirect {
                            from: url.origin().ascii_serialization(),
                            to: next.origin().ascii_serialization(),
                            path: path.to_string(),
                            why,
                        });
                    }
                    url = next;
                    redirects += 1;
                }
                None => break sent,
            }
        };
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                if let Some(cause) = tls_failure(&err) {
                    return Err(VaultError::Tls {
                        address: node_name.to_string(),
                        cause,
                    });
                }
                if Instant::now() >= self.deadline {
                    return Err(VaultError::Deadline {
                        path: path.to_string(),
                        seconds: self.timeout.as_secs(),
                        tried: format!("{node_name}: {}", describe(&err)),
                    });
                }
                // Nothing reached Vault: the node redirected and its target refused.
                if redirects > 0 && err.is_connect() {
                    return Ok(Outcome::Electing(format!(
                        "redirected to {}: {}",
                        url.origin().ascii_serialization(),
                        describe(&err)
                    )));
                }
                // A request that writes may have reached Vault unless the connection failed.
                if outgoing.writes() && !err.is_connect() {
                    return Err(self.unreachable(1, format!("{node_name}: {}", describe(&err))));
                }
                return Ok(Outcome::Unreachable(describe(&err)));
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body_bytes = match read_body(response, path).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge(err)) => return Err(err),
            Err(BodyError::Cut(err)) if Instant::now() >= self.deadline => {
                return Err(VaultError::Deadline {
                    path: path.to_string(),
                    seconds: self.timeout.as_secs(),
                    tried: format!("{node_name}: {}", describe(&err)),
                })
            }
            Err(BodyError::Cut(err)) if !outgoing.writes() => {
                return Ok(Outcome::Unreachable(describe(&err)))
            }
            Err(BodyError::Cut(err)) => {
                return Err(self.unreachable(1, format!("{node_name}: {}", describe(&err))))
            }
        };
        let answer = VaultResponse {
            status,
            body: body_bytes,
            path: path.to_string(),
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Ok(Outcome::RateLimited(retry_after));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE
            && answer.errors().iter().any(|e| e.contains("sealed"))
        {
            return Ok(Outcome::Sealed);
        }
        // A standby with no active node to forward to did nothing with the request, so
        // even a write (an AppRole login) is safe to send again once a leader is elected.
        if no_active_node(&answer) {
            return Ok(Outcome::Electing(format!(
                "HTTP {} (no active node to forward to: electing a leader)",
                status.as_u16()
            )));
        }
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED
            || standby_not_ready(&answer)
        {
            return Ok(Outcome::ServerError(answer));
        }
        self.current.store(node, Ordering::Relaxed);
        Ok(Outcome::Done(answer))
    }

    /// One request to `url`, with the headers rustify and the middleware set, the time
    /// left before the deadline (so a slow answer that began in time cannot carry the run
    /// past it) and the body.
    fn build(&self, outgoing: &Outgoing, url: &reqwest::Url) -> reqwest::RequestBuilder {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let mut request = self
            .http
            .request(outgoing.method.clone(), url.clone())
            .timeout(remaining.max(Duration::from_millis(1)))
            .headers(outgoing.headers.clone());
        if let Some(body) = &outgoing.body {
            request = request.body(body.clone());
        }
        request
    }

    /// Sleeps before the next round: `Retry-After` when Vault gave one, else jittered
    /// exponential backoff; never past the deadline.
    async fn backoff(&self, round: u32, retry_after: Option<Duration>) {
        let delay = retry_after.unwrap_or_else(|| backoff_delay(round));
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(delay.min(remaining)).await;
    }
}

/// keywrap's transport under rustify's endpoints: several nodes, failover, retries,
/// redirects only to the configured nodes, the run's deadline and identity headers.
#[async_trait::async_trait]
impl rustify::client::Client for VaultClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, ClientError> {
        let mut answer = self
            .transport(request)
            .await
            .map_err(|err| ClientError::GenericError { source: err.into() })?;
        let mut response = http::Response::new(std::mem::take(&mut *answer.body));
        *response.status_mut() = answer.status;
        Ok(response)
    }

    fn base(&self) -> &str {
        &self.base
    }
}

/// Wipes every string in a JSON value vaultrs handed over (a secret's data, an unwrapped
/// answer) before it is freed.
pub(crate) fn wipe_json(value: serde_json::Value) {
    match value {
        serde_json::Value::String(mut text) => text.zeroize(),
        serde_json::Value::Array(items) => items.into_iter().for_each(wipe_json),
        serde_json::Value::Object(fields) => {
            for (mut name, value) in fields {
                name.zeroize();
                wipe_json(value);
            }
        }
        _ => {}
    }
}

/// `target` (path and query, from `/v1/` on) on `node`, after the path the address may
/// have (`https://lb/vault` → `https://lb/vault/v1/...`). Cheaper than parsing the whole
/// URL again: the node's host is not parsed for every request.
fn node_url(node: &reqwest::Url, target: &str) -> reqwest::Url {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut url = node.clone();
    url.set_path(&format!("{}{path}", node.path().trim_end_matches('/')));
    url.set_query(query);
    url.set_fragment(None);
    url
}

/// The API path of a request URI, as messages name it: `/v1/secret/data/x?version=2` →
/// `secret/data/x?version=2`.
fn api_path(uri: &http::Uri) -> String {
    let target = uri.path_and_query().map_or("", |p| p.as_str());
    target
        .strip_prefix("/v1/")
        .unwrap_or(target.trim_start_matches('/'))
        .to_string()
}

/// rustify's error with its causes, on one line.
fn describe_client_error(err: &ClientError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Why a redirect is not followed, if it is not: the token (and a login's credentials)
/// go only to the configured nodes, and never from https to plain http.
fn redirect_refusal(
    from: &reqwest::Url,
    to: &reqwest::Url,
    nodes: &[reqwest::Url],
) -> Option<String> {
    if from.scheme() == "https" && to.scheme() != "https" {
        return Some(
            "the redirect leads from https to plain http, where anyone on the network path could read the token".into(),
        );
    }
    let origin = to.origin();
    if nodes.iter().any(|node| node.origin() == origin) {
        return None;
    }
    Some(format!(
        "{} is not one of the configured Vault addresses; if it is a node of the same cluster, add it to VAULT_ADDR (addresses separated by commas)",
        origin.ascii_serialization()
    ))
}

/// A standby serving reads of a KV v2 mount whose upgrade it has not yet received from
/// the active node answers 400 with this; the active node (or the standby, moments later)
/// serves the read, so this 400 is the one a retry fixes.
fn standby_not_ready(answer: &VaultResponse) -> bool {
    answer.status == StatusCode::BAD_REQUEST
        && answer
            .errors()
            .iter()
            .any(|e| e.contains("Waiting for the primary to upgrade"))
}

/// A standby that cannot forward a request because no node is active (a leader election
/// after the active node died) answers 500 with this, before handling the request.
fn no_active_node(answer: &VaultResponse) -> bool {
    answer.status.is_server_error()
        && answer
            .errors()
            .iter()
            .any(|e| e.contains("active cluster node not found"))
}

/// Vault's own default maximum request size; no legitimate answer to keywrap is larger.
const MAX_RESPONSE_BYTES: usize = 32 << 20;

enum BodyError {
    TooLarge(VaultError),
    Cut(reqwest::Error),
}

/// Reads a response body into wipeable memory, refusing more than [`MAX_RESPONSE_BYTES`]
/// so a hostile or broken server cannot exhaust memory.
async fn read_body(
    mut response: reqwest::Response,
    path: &str,
) -> Result<Zeroizing<Vec<u8>>, BodyError> {
    let too_large = || {
        BodyError::TooLarge(VaultError::Malformed {
            path: path.to_string(),
            cause: format!("the answer is larger than {} MiB", MAX_RESPONSE_BYTES >> 20),
        })
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    // Sized up front where possible: every reallocation would leave an unwiped copy behind.
    let expected = response.content_length().unwrap_or(16 << 10) as usize;
    let mut body = Zeroizing::new(Vec::with_capacity(expected));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Cut)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

/// Redirects followed per request; Vault sends one (standby to active node).
const MAX_REDIRECTS: usize = 5;

/// Where a redirect points: a 307/308 keeps the method and body (a standby's redirect to
/// the active node); 301/302/303 (e.g. a load balancer moving http to https) are followed
/// only by requests without a body, which they would turn into a GET without it.
fn redirect_location(response: &reqwest::Response, bodiless: bool) -> Option<reqwest::Url> {
    let follow = match response.status() {
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => true,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER => bodiless,
        _ => false,
    };
    if !follow {
        return None;
    }
    let location = response.headers().get(reqwest::header::LOCATION)?;
    response.url().join(location.to_str().ok()?).ok()
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
    fn a_standby_without_an_active_node_is_told_from_other_server_errors() {
        let answer = |status: u16, body: &str| VaultResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec().into(),
            path: "auth/approle/login".into(),
        };
        assert!(no_active_node(&answer(
            500,
            r#"{"errors":["local node not active but active cluster node not found"]}"#
        )));
        assert!(!no_active_node(&answer(
            500,
            r#"{"errors":["internal error"]}"#
        )));
        assert!(!no_active_node(&answer(
            400,
            r#"{"errors":["active cluster node not found"]}"#
        )));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..8 {
            let delay = backoff_delay(attempt);
            let ceiling = (100u64 << (attempt - 1)).min(2000);
            assert!(delay.as_millis() as u64 >= ceiling / 2 && delay.as_millis() as u64 <= ceiling);
        }
    }

    #[test]
    fn tls_failures_say_which_side_to_fix() {
        let hint = |cause: &str| tls_hint(cause).to_string();
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("VAULT_CACERT"));
        assert!(hint("received fatal alert: CertificateRequired").contains("VAULT_CLIENT_CERT"));
        assert!(hint("received fatal alert: UnknownCA").contains("VAULT_CLIENT_CERT"));
        assert!(hint("received corrupt message of type InvalidContentType").contains("http://"));
    }

    #[test]
    fn redirects_go_only_to_configured_nodes_and_never_to_plain_http() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let nodes = [
            url("https://a.example:8200"),
            url("https://b.example:8200/"),
        ];
        let from = url("https://a.example:8200/v1/secret/data/x");
        assert_eq!(
            redirect_refusal(
                &from,
                &url("https://b.example:8200/v1/secret/data/x"),
                &nodes
            ),
            None
        );
        assert_eq!(
            redirect_refusal(&from, &url("https://a.example:8200/v1/other"), &nodes),
            None
        );
        for elsewhere in [
            "https://c.example:8200/v1/secret/data/x",
            "https://b.example:8201/v1/secret/data/x",
            "https://a.example/v1/secret/data/x",
        ] {
            let why = redirect_refusal(&from, &url(elsewhere), &nodes).unwrap();
            assert!(
                why.contains("not one of the configured"),
                "{elsewhere}: {why}"
            );
        }
        let mixed = [url("https://a.example:8200"), url("http://a.example:8200")];
        let why = redirect_refusal(&from, &url("http://a.example:8200/v1/x"), &mixed).unwrap();
        assert!(why.contains("plain http"), "{why}");
        let plain = [url("http://127.0.0.1:8200"), url("http://127.0.0.1:8201")];
        assert_eq!(
            redirect_refusal(
                &url("http://127.0.0.1:8200/v1/x"),
                &url("http://127.0.0.1:8201/v1/x"),
                &plain
            ),
            None
        );
    }

    #[test]
    fn the_token_header_is_never_printed() {
        let middleware = Middleware(EndpointMiddleware {
            token: "fake-token-0123456789".into(),
            version: "v1".into(),
            wrap: None,
            namespace: None,
        });
        let endpoint = vaultrs::api::token::requests::RenewTokenSelfRequest {
            increment: Some("60s".into()),
        };
        let mut request = endpoint.request("http://127.0.0.1:8200").unwrap();
        middleware.0.request(&endpoint, &mut request).unwrap();
        let outgoing = Outgoing::from(request);
        assert!(outgoing.headers["x-vault-token"].is_sensitive());
        assert!(!format!("{:?}", outgoing.headers).contains("fake-token"));
        assert_eq!(outgoing.target, "/v1/auth/token/renew-self");
        assert_eq!(outgoing.path, "auth/token/renew-self");
        assert!(outgoing.writes());
    }

    #[test]
    fn requests_go_to_the_node_after_its_path() {
        for (node, target) in [
            ("http://127.0.0.1:8200", "/v1/secret/data/a%20b?version=2"),
            (
                "https://vault.example:8200/",
                "/v1/sys/internal/ui/mounts/kv",
            ),
            ("https://lb.example/vault/", "/v1/auth/token/lookup-self"),
        ] {
            let node = reqwest::Url::parse(node).unwrap();
            let parsed = format!("{}{target}", node.as_str().trim_end_matches('/'));
            assert_eq!(node_url(&node, target).as_str(), parsed);
        }
    }

    #[test]
    fn messages_name_the_api_path() {
        let uri: http::Uri = "http://127.0.0.1:8200/v1/secret/data/a%20b?version=2"
            .parse()
            .unwrap();
        assert_eq!(api_path(&uri), "secret/data/a%20b?version=2");
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
