//! Handling one request: route, authenticate, limit, forward with the route's headers, and
//! stream the answer back with the key masked.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::admission;
use super::auth::{self, Caller};
use super::body::{ProxyBody, Streamed};
use super::config::MAX_BUFFERED_BODY;
use super::cors;
use super::credentials::HeaderSet;
use super::limits::{Denied, Ticket};
use super::paths;
use super::record::RequestRecord;
use super::redact::StreamRedactor;
use super::usage::UsageScanner;
use super::usage_endpoint;
use super::Shared;

/// The body type sent upstream.
pub type UpstreamBody = BoxBody<Bytes, hyper::Error>;

/// Headers that describe one connection, not the message; never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Client headers that choose whose account the upstream bills; dropped unless a route
/// lets them through (`client_headers`), since the proxy's key pays.
const BILLING_HEADERS: [&str; 2] = ["openai-organization", "openai-project"];

/// The hyper service: every request gets an answer, errors included.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let path = request.uri().path();
    let patterns = shared.credentials.current().patterns.clone();
    let logged_path = if patterns.contains(path.as_bytes()) {
        let mut bytes = path.as_bytes().to_vec();
        patterns.mask(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        path.to_string()
    };
    let mut slot = Some(RequestRecord::new(
        request.method().clone(),
        logged_path,
        started,
    ));
    let origin = shared.config.cors.allowed(request.headers());
    let mut response = match &origin {
        Some(origin) if cors::is_preflight(request.method(), request.headers()) => {
            cors::preflight(origin, request.headers())
        }
        _ => forward(&shared, request, &mut slot)
            .await
            .unwrap_or_else(|local| local),
    };
    if let Some(origin) = &origin {
        cors::decorate(response.headers_mut(), origin);
    }
    // A forwarded answer took the record with it, to finish when its body ends.
    if let Some(mut record) = slot {
        record.status = response.status().as_u16();
        record.finish(&shared);
    }
    Ok(response)
}

/// A response the proxy makes itself, in the OpenAI error shape clients already parse.
fn local(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = json!({ "error": { "message": message, "type": "keywrap_proxy" } }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(ProxyBody::local(body))
        .expect("a valid local response")
}

/// Forwards the request; `Err` is a local answer (refusal or upstream failure). A forwarded
/// answer takes the record out of `slot`.
async fn forward(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    slot: &mut Option<RequestRecord>,
) -> Result<Response<ProxyBody>, Response<ProxyBody>> {
    let record = slot.as_mut().expect("the record is taken only at the end");
    // DNS rebinding: a web page's own name resolving to this proxy is not this proxy.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(|h| shared.config.host_allowed(h)) {
        return Err(local(
            StatusCode::MISDIRECTED_REQUEST,
            "this Host is not the proxy's address (add it with --allowed-host)",
        ));
    }
    let Some(path) = paths::normalise(request.uri().path()) else {
        return Err(local(
            StatusCode::BAD_REQUEST,
            "the request path cannot be forwarded",
        ));
    };
    if path == usage_endpoint::PATH {
        let caller = auth::authenticate(request.headers(), &shared.keys, false)
            .await
            .map_err(|rejected| local(StatusCode::UNAUTHORIZED, rejected.message()))?;
        record.client = caller.name().to_string();
        let Caller::Key(policy) = caller else {
            return Err(local(StatusCode::UNAUTHORIZED, "a client key is required"));
        };
        let (status, body) = usage_endpoint::answer(shared, request.method(), &policy).await;
        let response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(ProxyBody::local(body.to_string()))
            .expect("a valid local response");
        return Err(response);
    }
    let Some((route_index, route, rest)) = shared.config.route_for(&path) else {
        return Err(local(StatusCode::NOT_FOUND, "no route for this path"));
    };
    // `/a/../b/...` must not leave route /a for another route.
    if path != request.uri().path()
        && shared
            .config
            .route_for(request.uri().path())
            .is_some_and(|(raw, _, _)| raw != route_index)
    {
        return Err(local(
            StatusCode::BAD_REQUEST,
            "the request path leaves its route",
        ));
    }
    record.route = Some(route_index);
    let caller = auth::authenticate(
        request.headers(),
        &shared.keys,
        shared.config.allow_anonymous,
    )
    .await
    .map_err(|rejected| local(StatusCode::UNAUTHORIZED, rejected.message()))?;
    record.client = caller.name().to_string();
    if matches!(caller, Caller::Anonymous) && cross_site(request.headers(), &shared.config.cors) {
        // A web page on another origin would spend through an anonymous proxy.
        return Err(local(
            StatusCode::FORBIDDEN,
            "cross-origin requests without a client key are refused (see cors_origins)",
        ));
    }
    if let Caller::Key(policy) = &caller {
        record.policy = Some(policy.clone());
        if !policy.allows_route(route.label()) {
            return Err(local(
                StatusCode::FORBIDDEN,
                "this client key may not use this route",
            ));
        }
    }

    let (parts, body) = request.into_parts();
    let mut body = RequestBody::read(&parts.headers, body)
        .await
        .map_err(|_| local(StatusCode::BAD_REQUEST, "cannot read the request body"))?;
    let mut ticket: Option<Ticket> = None;
    let mut injected_length = None;
    if let Some(policy) = caller.policy() {
        let counts_tokens = policy.tpm > 0 || policy.budget > 0;
        let facts = if counts_tokens || !policy.models.is_empty() {
            body.facts()
        } else {
            BodyFacts::default()
        };
        // A request without a body (listing models, say) asks for no model.
        if !policy.models.is_empty() && !body.is_empty() {
            match &facts.model {
                Some(model) if policy.allows_model(model) => {}
                Some(_) => return Err(local(StatusCode::FORBIDDEN, "this client key may not use this model")),
                None => return Err(local(StatusCode::BAD_REQUEST, "this client key is limited to some models: send a JSON body (under 1 MiB) with \"model\"")),
            }
        }
        if counts_tokens && facts.stream && asks_for_usage(rest) {
            injected_length = body.include_usage();
        }
        let estimate = if counts_tokens {
            admission::estimate(
                body.length(&parts.headers),
                facts.max_tokens,
                route.default_max_tokens,
            )
        } else {
            0
        };
        match shared.limits.admit(policy, estimate).await {
            Ok(admitted) => ticket = Some(admitted),
            Err(Denied::Unavailable) => {
                let mut response = local(
                    StatusCode::SERVICE_UNAVAILABLE,
                    super::limits::UNAVAILABLE_MESSAGE,
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
                return Err(response);
            }
            Err(Denied::Refused(refusal)) => {
                shared
                    .metrics
                    .rate_limited(&policy.name, refusal.limit.label());
                let mut response = local(StatusCode::TOO_MANY_REQUESTS, refusal.limit.message());
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(admission::retry_after_seconds(refusal.retry_after)),
                );
                return Err(response);
            }
        }
    }
    let uri = route.upstream.uri(rest, parts.uri.query()).map_err(|_| {
        local(
            StatusCode::BAD_REQUEST,
            "the request path cannot be forwarded",
        )
    })?;
    let mut headers = client_headers(&parts.headers, &route.headers, &route.client_headers);
    if let Some(length) = injected_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    record.ticket = ticket;
    let credentials = shared.credentials.current();
    let upstream_started = Instant::now();
    let label = route.label();

    let mut response = match send(
        shared,
        label,
        &parts.method,
        &uri,
        &headers,
        credentials.headers(route_index),
        &mut body,
    )
    .await
    {
        Ok(response) => response,
        Err(failure) => {
            // Never reached the upstream: nothing to charge. A timeout may have.
            if failure.status() == StatusCode::BAD_GATEWAY {
                if let Some(ticket) = record.ticket.take() {
                    shared.limits.settle(ticket, 0);
                }
            }
            return Err(failure);
        }
    };
    if let (StatusCode::UNAUTHORIZED, Some(window)) = (response.status(), shared.config.overlap) {
        if let (Some(previous), true) = (
            credentials.previous_headers(route_index, window),
            body.replayable(),
        ) {
            record.previous_key = true;
            response = send(
                shared,
                label,
                &parts.method,
                &uri,
                &headers,
                previous,
                &mut body,
            )
            .await?;
        }
    }
    record.upstream = Some(upstream_started.elapsed());
    record.status = response.status().as_u16();
    // An encoding the proxy cannot read could carry the key past the masking.
    if response
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        shared.metrics.upstream_error(label, "encoding");
        return Err(local(
            StatusCode::BAD_GATEWAY,
            "the upstream sent a compressed answer, which the proxy cannot check for the key",
        ));
    }

    let (mut parts, incoming) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The version is the connection's, like the hop-by-hop headers: an HTTP/1.0 upstream
    // (Python's http.server) must not make the client's HTTP/1.1 answer close-delimited.
    parts.version = hyper::Version::HTTP_11;
    for value in parts.headers.values_mut() {
        if credentials.patterns.contains(value.as_bytes()) {
            let mut bytes = value.as_bytes().to_vec();
            credentials.patterns.mask(&mut bytes);
            *value = HeaderValue::from_bytes(&bytes).expect("masking keeps a header value valid");
        }
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let usage = UsageScanner::for_content_type(content_type);
    if matches!(usage, UsageScanner::Events { .. }) {
        // Tell nginx and other buffering proxies in front to pass events on at once.
        parts
            .headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    let finished = slot.take().expect("the record is still here");
    let streamed = Streamed::new(
        incoming,
        StreamRedactor::new(credentials.patterns.clone()),
        usage,
        finished,
        shared.clone(),
    );
    Ok(Response::from_parts(
        parts,
        ProxyBody::Upstream(Box::new(streamed)),
    ))
}

/// Sends one request upstream, retrying idempotent ones that can be sent again.
async fn send(
    shared: &Shared,
    label: &str,
    method: &Method,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    injected: &HeaderSet,
    body: &mut RequestBody,
) -> Result<Response<Incoming>, Response<ProxyBody>> {
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    let attempts = if idempotent && body.replayable() {
        1 + shared.config.retries
    } else {
        1
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = Request::builder().method(method.clone()).uri(uri.clone());
        let request_headers = request.headers_mut().expect("a valid request");
        request_headers.clone_from(headers);
        for (name, value) in injected {
            request_headers.insert(name.clone(), value.clone());
        }
        let request = request.body(body.take()).expect("a valid request");
        let outcome = tokio::time::timeout(
            shared.config.upstream_timeout,
            shared.upstream.request(request),
        )
        .await;
        let retry = attempt < attempts;
        match outcome {
            Ok(Ok(response)) => {
                let status = response.status();
                if status.is_server_error() {
                    shared.metrics.upstream_error(label, "status_5xx");
                }
                let transient = matches!(status.as_u16(), 502..=504);
                if !(transient && retry) {
                    return Ok(response);
                }
            }
            Ok(Err(err)) => {
                shared.metrics.upstream_error(label, "connect");
                if !retry {
                    crate::log::warn(format_args!(
                        "upstream of route {label}: {}",
                        describe(&err)
                    ));
                    return Err(local(
                        StatusCode::BAD_GATEWAY,
                        "the upstream could not be reached",
                    ));
                }
            }
            Err(_) => {
                shared.metrics.upstream_error(label, "timeout");
                if !retry {
                    return Err(local(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the upstream did not answer in time",
                    ));
                }
            }
        }
        let ceiling = 50u64 << attempt.min(6);
        tokio::time::sleep(Duration::from_millis(
            ceiling / 2 + fastrand::u64(0..=ceiling / 2),
        ))
        .await;
    }
}

fn describe(err: &hyper_util::client::legacy::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    text
}

/// The client's headers minus credentials, hop-by-hop headers, Host (set from the upstream
/// URI), Expect and every header the route injects.
fn client_headers(
    from: &HeaderMap,
    injected: &[(HeaderName, super::routes::Template)],
    allowed: &[HeaderName],
) -> HeaderMap {
    let mut headers = from.clone();
    strip_hop_by_hop(&mut headers);
    for name in BILLING_HEADERS {
        if !allowed.iter().any(|a| a.as_str() == name) {
            headers.remove(name);
        }
    }
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    // The proxy already answered `Expect: 100-continue` by reading the body.
    headers.remove(header::EXPECT);
    for (name, _) in injected {
        headers.remove(name);
    }
    // Plain bodies, so keys can be masked and usage read in answers.
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    headers
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Whether a browser says the request comes from a page on another site that CORS does not
/// allow (`Origin`, or `Sec-Fetch-Site` where a browser sends no `Origin`).
fn cross_site(headers: &HeaderMap, cors: &cors::Cors) -> bool {
    if headers.contains_key(header::ORIGIN) {
        return cors.allowed(headers).is_none();
    }
    headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
}

/// OpenAI's completion endpoints send a usage chunk at the end of a stream when asked.
fn asks_for_usage(path: &str) -> bool {
    path.ends_with("/chat/completions") || path.ends_with("/completions")
}

/// What admission and the model allow-list need from a JSON body.
#[derive(Default)]
struct BodyFacts {
    model: Option<String>,
    max_tokens: Option<u64>,
    stream: bool,
}

/// A request body: read whole when small (so it can be checked and sent again), else streamed.
enum RequestBody {
    Buffered(Bytes),
    Streaming(Option<Incoming>),
}

impl RequestBody {
    async fn read(headers: &HeaderMap, body: Incoming) -> Result<Self, hyper::Error> {
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let empty = http_body::Body::is_end_stream(&body);
        match length {
            _ if empty => Ok(RequestBody::Buffered(Bytes::new())),
            Some(length) if length <= MAX_BUFFERED_BODY => {
                Ok(RequestBody::Buffered(body.collect().await?.to_bytes()))
            }
            _ => Ok(RequestBody::Streaming(Some(body))),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, RequestBody::Buffered(bytes) if bytes.is_empty())
    }

    fn replayable(&self) -> bool {
        matches!(self, RequestBody::Buffered(_))
    }

    /// The body for one attempt; a streamed body can be taken once.
    fn take(&mut self) -> UpstreamBody {
        match self {
            RequestBody::Buffered(bytes) => Full::new(bytes.clone())
                .map_err(|never| match never {})
                .boxed(),
            RequestBody::Streaming(body) => match body.take() {
                Some(body) => body.boxed(),
                None => Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            },
        }
    }

    /// The model, the largest completion asked for and streaming, from a JSON body.
    fn facts(&self) -> BodyFacts {
        #[derive(serde::Deserialize)]
        struct Fields {
            model: Option<String>,
            max_tokens: Option<u64>,
            max_completion_tokens: Option<u64>,
            max_output_tokens: Option<u64>,
            #[serde(default)]
            stream: bool,
        }
        match self {
            RequestBody::Buffered(bytes) => serde_json::from_slice::<Fields>(bytes)
                .map(|f| BodyFacts {
                    model: f.model,
                    max_tokens: f
                        .max_tokens
                        .max(f.max_completion_tokens)
                        .max(f.max_output_tokens),
                    stream: f.stream,
                })
                .unwrap_or_default(),
            RequestBody::Streaming(_) => BodyFacts::default(),
        }
    }

    /// The body's length: read, or from Content-Length, or the most the proxy reads.
    fn length(&self, headers: &HeaderMap) -> u64 {
        match self {
            RequestBody::Buffered(bytes) => bytes.len() as u64,
            RequestBody::Streaming(_) => headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(MAX_BUFFERED_BODY),
        }
    }

    /// Sets `stream_options.include_usage` in a streaming JSON body, so the upstream reports
    /// the tokens of the stream; the new length if the body changed.
    fn include_usage(&mut self) -> Option<usize> {
        let RequestBody::Buffered(bytes) = self else {
            return None;
        };
        let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let object = value.as_object_mut()?;
        let options = object.entry("stream_options").or_insert_with(|| json!({}));
        let options = options.as_object_mut()?;
        if options.get("include_usage") == Some(&serde_json::Value::Bool(true)) {
            return None;
        }
        options.insert("include_usage".into(), serde_json::Value::Bool(true));
        let encoded = serde_json::to_vec(&value).ok()?;
        let length = encoded.len();
        *bytes = Bytes::from(encoded);
        Some(length)
    }
}
