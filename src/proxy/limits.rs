//! One admission path over the two stores: the in-process [`Admission`] (no `[proxy]
//! store`) and the Redis store shared by every replica ([`RedisStore`]). The request path
//! only sees [`Limits`], [`Ticket`] and [`Denied`].
//!
//! With a store, every admission and settle goes through Redis; a ticket's lease is renewed
//! while its answer streams, and a ticket dropped unsettled charges its estimate in Redis.
//! When Redis cannot be reached, `store_failure` decides: `fail_closed` refuses with 503,
//! `fail_open` admits under this replica's own in-process limits (counted as a metric).

use std::sync::atomic::{AtomicU64, Ordering};

use super::admission::{self, Admission, Refusal};
use super::keys::KeyPolicy;
use super::store::redis::{self as redis_store, RedisStore};
use super::store::settings::FailureMode;
use super::store::Quota;

/// What a client is told while the store is down and the proxy fails closed. One line,
/// naming neither the store's address nor anything secret.
pub const UNAVAILABLE_MESSAGE: &str =
    "the proxy's shared limits store is unavailable; try again shortly";

/// The limits of every client key, in process or in Redis.
pub enum Limits {
    Local(Admission),
    Shared(Box<Shared>),
}

pub struct Shared {
    store: RedisStore,
    /// Used only while the store is down and `store_failure = "fail_open"`.
    fallback: Admission,
    fail_open: AtomicU64,
    warned: super::connections::Throttled,
}

/// Why a request is not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A limit refuses it: 429.
    Refused(Refusal),
    /// The store is down and the proxy fails closed: 503.
    Unavailable,
}

/// An admitted request. Settle it with [`Limits::settle`]; dropped unsettled, it charges
/// its estimate to the store that admitted it.
pub enum Ticket {
    Local(admission::Ticket),
    /// Its lease is renewed by the store while it is held.
    Shared(redis_store::Ticket),
}

impl Ticket {
    /// The tokens reserved for this request.
    pub fn estimate(&self) -> u64 {
        match self {
            Ticket::Local(ticket) => ticket.estimate(),
            Ticket::Shared(ticket) => ticket.estimate(),
        }
    }
}

impl Limits {
    pub fn local() -> Limits {
        Limits::Local(Admission::default())
    }

    pub fn shared(store: RedisStore) -> Limits {
        Limits::Shared(Box::new(Shared {
            store,
            fallback: Admission::default(),
            fail_open: AtomicU64::new(0),
            warned: Default::default(),
        }))
    }

    /// The Redis store, when `[proxy] store` is set.
    pub fn store(&self) -> Option<&RedisStore> {
        match self {
            Limits::Local(_) => None,
            Limits::Shared(shared) => Some(&shared.store),
        }
    }

    /// The in-process store: the only one without `store`, the fail-open fallback with it.
    pub fn admission(&self) -> &Admission {
        match self {
            Limits::Local(admission) => admission,
            Limits::Shared(shared) => &shared.fallback,
        }
    }

    /// Admits a request expected to cost `estimate` tokens, or says why not.
    pub async fn admit(&self, policy: &KeyPolicy, estimate: u64) -> Result<Ticket, Denied> {
        let shared = match self {
            Limits::Local(admission) => {
                return admission
                    .admit(policy, estimate)
                    .map(Ticket::Local)
                    .map_err(Denied::Refused)
            }
            Limits::Shared(shared) => shared,
        };
        let counts_tokens = policy.tpm > 0 || policy.budget > 0;
        let estimate = if counts_tokens { estimate.max(1) } else { 0 };
        let quota = Quota::of(policy, policy.concurrency);
        match shared.store.admit(&policy.name, quota, estimate).await {
            Ok(Ok(ticket)) => Ok(Ticket::Shared(ticket)),
            Ok(Err(refusal)) => Err(Denied::Refused(refusal)),
            Err(unavailable) => match shared.store.failure_mode() {
                FailureMode::FailClosed => {
                    shared.warned.warn(format_args!(
                        "{unavailable}; refusing requests (store_failure = \"fail_closed\")"
                    ));
                    Err(Denied::Unavailable)
                }
                FailureMode::FailOpen => {
                    shared.warned.warn(format_args!(
                        "{unavailable}; admitting under this replica's own limits (store_failure = \"fail_open\")"
                    ));
                    shared.fail_open.fetch_add(1, Ordering::Relaxed);
                    shared
                        .fallback
                        .admit(policy, estimate)
                        .map(Ticket::Local)
                        .map_err(Denied::Refused)
                }
            },
        }
    }

    /// Ends an admitted request that used `actual` tokens. With the store, the settle runs
    /// in the background, off the request path.
    pub fn settle(&self, ticket: Ticket, actual: u64) {
        match ticket {
            Ticket::Local(ticket) => self.admission().settle(ticket, actual),
            Ticket::Shared(ticket) => {
                tokio::spawn(async move {
                    if let Err(err) = ticket.settle(actual).await {
                        crate::log::warn(format_args!("settling a request's tokens: {err}"));
                    }
                });
            }
        }
    }

    /// The Prometheus lines for the store: errors and fail-open admissions.
    pub fn render_metrics(&self) -> String {
        match self {
            Limits::Local(_) => String::new(),
            Limits::Shared(shared) => super::metrics::store_counters(
                shared.store.errors(),
                shared.fail_open.load(Ordering::Relaxed),
            ),
        }
    }
}
