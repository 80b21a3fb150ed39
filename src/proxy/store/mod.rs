//! Limits shared by every replica of the proxy: `[proxy] store = "redis://HOST:PORT/DB"`.
//!
//! - [`settings`]: the store's URL, its password reference and what to do when it is down.
//! - [`redis`]: the Redis (or Valkey) admission store: one Lua script per admission and one
//!   per settle, so the checks and the counting are one atomic step across replicas.
//!
//! The semantics are those of the in-process admission store: a request is admitted when
//! requests per minute, tokens per minute (the window plus outstanding reservations plus
//! its estimate), the budget (spent plus reserved plus its estimate) and the concurrent
//! requests all allow it; settling releases the reservation and charges the actual tokens.

pub mod redis;
pub mod settings;

use std::time::Duration;

use super::keys::KeyPolicy;

/// What one admission is checked against; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub rpm: u64,
    pub tpm: u64,
    pub budget: u64,
    /// Requests of the key in flight at once.
    pub concurrency: u64,
}

impl Quota {
    pub fn of(policy: &KeyPolicy, concurrency: u64) -> Quota {
        Quota {
            rpm: policy.rpm,
            tpm: policy.tpm,
            budget: policy.budget,
            concurrency,
        }
    }

    pub fn unlimited(&self) -> bool {
        *self == Quota::default()
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
    Budget,
    Concurrency,
}

impl Limit {
    /// The `limit` label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Requests => "rpm",
            Limit::Tokens => "tpm",
            Limit::Budget => "budget",
            Limit::Concurrency => "concurrency",
        }
    }
}

/// Why a request was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: Duration,
}
