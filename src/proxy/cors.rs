//! CORS, for browser apps served from another origin than the proxy: preflight requests are
//! answered by the proxy itself (they carry no client key), and answers to allowed origins
//! say so. With no origins configured, the upstream's own CORS headers pass through.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::body::ProxyBody;

/// The allowed origins, exactly as browsers send them (`https://app.example.com`), or `*`.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: Vec<String>) -> Self {
        Cors {
            origins: origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_string())
                .collect(),
        }
    }

    /// The request's `Origin`, if it is allowed.
    pub fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == "*" || o == text)
            .then(|| origin.clone())
    }
}

/// Whether a request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The proxy's answer to a preflight from an allowed origin.
pub fn preflight(origin: &HeaderValue, headers: &HeaderMap) -> Response<ProxyBody> {
    let mut response = Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, POST, PUT, PATCH, DELETE, OPTIONS",
        )
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .body(ProxyBody::Local(None))
        .expect("a valid preflight response");
    if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    decorate(response.headers_mut(), origin);
    response
}

/// Marks an answer as readable by the allowed origin, replacing the upstream's own CORS headers.
pub fn decorate(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after, x-request-id"),
    );
    headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}
