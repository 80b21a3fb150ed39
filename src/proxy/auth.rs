//! Who is calling: a client key from `Authorization: Bearer KEY`, or anonymous when allowed.

use std::sync::Arc;

use hyper::header::{HeaderMap, AUTHORIZATION};

use super::keys::{KeyPolicy, KeyRing};

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

/// Identifies the caller. A key that is present must be valid even when anonymous access is on.
pub async fn authenticate(
    headers: &HeaderMap,
    keys: &KeyRing,
    allow_anonymous: bool,
) -> Result<Caller, Rejected> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return if allow_anonymous {
            Ok(Caller::Anonymous)
        } else {
            Err(Rejected::Missing)
        };
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(Rejected::Unknown)?;
    keys.authenticate(key)
        .await
        .map(Caller::Key)
        .ok_or(Rejected::Unknown)
}
