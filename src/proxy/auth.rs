//! Who is calling: a client key from `Authorization: Bearer KEY`, or anonymous when allowed.

use std::sync::Arc;

use hyper::header::{HeaderMap, AUTHORIZATION};

use super::keys::{KeyPolicy, KeyRing, KEY_PREFIX};

/// The caller of one request.
#[derive(Debug, Clone)]
pub enum Caller {
    Key(Arc<KeyPolicy>),
    Anonymous,
}

impl Caller {
    /// The client label in metrics and logs: the key's name, never the key.
    pub fn name(&self) -> &str {
        match self {
            Caller::Key(policy) => &policy.name,
            Caller::Anonymous => "anonymous",
        }
    }

    pub fn policy(&self) -> Option<&KeyPolicy> {
        match self {
            Caller::Key(policy) => Some(policy),
            Caller::Anonymous => None,
        }
    }
}

/// Why a request was not let in; the message goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Missing,
    Unknown,
}

impl Rejected {
    pub fn message(self) -> &'static str {
        match self {
            Rejected::Missing => "missing client key: send Authorization: Bearer <key from `keywrap proxy keys create`>",
            Rejected::Unknown => "unknown or revoked client key",
        }
    }
}

/// Identifies the caller. A client key (`kwp_…`) that is present must be valid even when
/// anonymous access is on, so a revoked key is told so; any other `Authorization` (a browser
/// app's own session token, say) is no client key: it is removed like every client
/// `Authorization`, and the request is anonymous if that is allowed. Such values never make
/// the proxy reload its keys.
pub async fn authenticate(
    headers: &HeaderMap,
    keys: &KeyRing,
    allow_anonymous: bool,
) -> Result<Caller, Rejected> {
    let header = headers.get(AUTHORIZATION);
    let key = header.and_then(|v| bearer(v.as_bytes()));
    match key {
        Some(key) if key.starts_with(KEY_PREFIX) => keys
            .authenticate(key)
            .await
            .map(Caller::Key)
            .ok_or(Rejected::Unknown),
        _ if allow_anonymous => Ok(Caller::Anonymous),
        _ if header.is_none() => Err(Rejected::Missing),
        _ => Err(Rejected::Unknown),
    }
}

/// The credentials of `Bearer <token>`; the scheme is case-insensitive (RFC 9110).
fn bearer(value: &[u8]) -> Option<&str> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    std::str::from_utf8(token).ok().map(str::trim)
}
