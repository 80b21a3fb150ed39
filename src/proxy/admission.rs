//! Admission: requests and tokens per minute, budgets and concurrent requests per client key,
//! checked and reserved under one lock so that concurrent requests cannot overspend.
//!
//! Tokens are known only when an answer ends, so each request reserves an estimate when it
//! is admitted ([`estimate`]): a request is let in only if what the window holds, plus what
//! the requests in flight reserved, plus its own estimate stays within the limit, and the
//! same for the budget. When the answer ends, [`Admission::settle`] replaces the reservation
//! with the tokens the upstream reported; a [`Ticket`] dropped unsettled (the client hung up,
//! the stream broke, the upstream sent no usage) charges its estimate, never 0. So a key
//! can overspend its budget by at most what one answer used beyond its estimate.
//!
//! The budget counts every token the key has spent: what Vault had stored (see
//! [`super::spend`]) plus what this proxy counted since, of which the part not saved yet is
//! kept apart. The store is in-process; a shared store (issue 14) keeps this shape.
//!
//! Not the governor crate (issue 16): its GCRA cells take a cost up front and cannot settle a
//! reservation later to the actual tokens, nor live in the Redis store of issue 14 that shapes these limits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::keys::KeyPolicy;

const WINDOW: Duration = Duration::from_secs(60);
/// What `Retry-After` says when the budget is spent: it does not refill by waiting.
const BUDGET_RETRY: Duration = Duration::from_secs(3600);
/// What `Retry-After` says when the key's requests in flight are at its cap, or its tokens
/// are all reserved by requests in flight: they end within seconds, mostly.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

/// Why a request was refused, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub retry_after: Duration,
}

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

    pub fn message(self) -> &'static str {
        match self {
            Limit::Requests => "requests-per-minute limit reached for this client key",
            Limit::Tokens => "tokens-per-minute limit reached for this client key",
            Limit::Budget => "token budget of this client key is spent",
            Limit::Concurrency => "too many requests in flight for this client key",
        }
    }
}

/// The tokens a request is expected to cost, reserved at admission: a quarter of the body's
/// bytes (about a token per 4 bytes of prompt) plus the completion it may ask for,
/// `max_tokens` (or `max_completion_tokens`, `max_output_tokens`) from the JSON body, else
/// the route's `default_max_tokens`. A request without a body is 1 token. `body_len` is the
/// body's length as far as known (a streamed upload counts by its Content-Length, or as
/// `MAX_BUFFERED_BODY` without one).
pub fn estimate(body_len: u64, max_tokens: Option<u64>, default_max_tokens: u64) -> u64 {
    if body_len == 0 {
        return 1;
    }
    (body_len.div_ceil(4) + max_tokens.unwrap_or(default_max_tokens)).max(1)
}

#[derive(Default)]
struct ClientState {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    tokens_in_window: u64,
    /// Estimates of the requests in flight.
    reserved: u64,
    in_flight: u64,
    /// Everything the key spent, as far as this proxy knows.
    spent: u64,
    /// The part of `spent` not yet saved to Vault.
    unsaved: u64,
}

impl ClientState {
    fn expire(&mut self, now: Instant) {
        while self
            .requests
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.requests.pop_front();
        }
        while let Some(&(t, n)) = self.tokens.front() {
            if now.duration_since(t) < WINDOW {
                break;
            }
            self.tokens_in_window -= n;
            self.tokens.pop_front();
        }
    }

    /// How long until enough tokens leave the window for `needed` more to fit in `tpm`.
    fn token_wait(&self, tpm: u64, needed: u64, now: Instant) -> Duration {
        let mut left = self.tokens_in_window + self.reserved + needed;
        for &(t, n) in &self.tokens {
            left -= n;
            if left <= tpm {
                return (t + WINDOW).saturating_duration_since(now);
            }
        }
        IN_FLIGHT_RETRY
    }
}

type Clients = Arc<Mutex<HashMap<String, ClientState>>>;

/// Every client's usage, by key name, in this process.
#[derive(Default)]
pub struct Admission {
    clients: Clients,
}

/// An admitted request: its reservation and its place among the key's requests in flight.
/// Settle it with the tokens the answer used; dropped unsettled, it charges its estimate.
#[must_use = "a ticket dropped at once charges its estimate"]
pub struct Ticket {
    /// `None` for a key without limits: nothing to release.
    clients: Option<Clients>,
    name: String,
    estimate: u64,
    counts_tokens: bool,
    budgeted: bool,
}

impl Ticket {
    /// The tokens reserved for this request.
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    fn release(&mut self, actual: u64, now: Instant) {
        let Some(clients) = self.clients.take() else {
            return;
        };
        let mut clients = clients.lock().expect("admission lock");
        let state = clients.entry(std::mem::take(&mut self.name)).or_default();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.reserved = state.reserved.saturating_sub(self.estimate);
        if actual == 0 {
            return;
        }
        state.spent += actual;
        if self.budgeted {
            state.unsaved += actual;
        }
        if self.counts_tokens {
            state.tokens.push_back((now, actual));
            state.tokens_in_window += actual;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let estimate = self.estimate;
        self.release(estimate, Instant::now());
    }
}

impl Admission {
    /// Admits one request that is expected to cost `estimate_tokens`, or says which limit
    /// refuses it. Every check and the reservation happen under one lock.
    pub fn admit(&self, policy: &KeyPolicy, estimate_tokens: u64) -> Result<Ticket, Refusal> {
        self.admit_at(policy, estimate_tokens, Instant::now())
    }

    fn admit_at(
        &self,
        policy: &KeyPolicy,
        estimate_tokens: u64,
        now: Instant,
    ) -> Result<Ticket, Refusal> {
        let counts_tokens = policy.tpm > 0 || policy.budget > 0;
        let mut ticket = Ticket {
            clients: None,
            name: policy.name.clone(),
            estimate: if counts_tokens {
                estimate_tokens.max(1)
            } else {
                0
            },
            counts_tokens: policy.tpm > 0,
            budgeted: policy.budget > 0,
        };
        if policy.rpm == 0 && !counts_tokens && policy.concurrency == 0 {
            return Ok(ticket);
        }
        let mut clients = self.clients.lock().expect("admission lock");
        let state = clients.entry(policy.name.clone()).or_default();
        state.expire(now);
        let estimate = ticket.estimate;
        if policy.budget > 0 && state.spent + state.reserved + estimate > policy.budget {
            let retry_after = if state.spent >= policy.budget {
                BUDGET_RETRY
            } else {
                // What is left may be enough once the requests in flight have settled.
                IN_FLIGHT_RETRY
            };
            return Err(Refusal {
                limit: Limit::Budget,
                retry_after,
            });
        }
        if policy.concurrency > 0 && state.in_flight >= policy.concurrency {
            return Err(Refusal {
                limit: Limit::Concurrency,
                retry_after: IN_FLIGHT_RETRY,
            });
        }
        if policy.rpm > 0 && state.requests.len() as u64 >= policy.rpm {
            return Err(Refusal {
                limit: Limit::Requests,
                retry_after: (state.requests[0] + WINDOW).saturating_duration_since(now),
            });
        }
        // An estimate larger than the whole limit passes alone, when nothing else is in
        // the window or in flight; otherwise such a request could never be made.
        let used = state.tokens_in_window + state.reserved;
        if policy.tpm > 0 && used + estimate > policy.tpm && used > 0 {
            return Err(Refusal {
                limit: Limit::Tokens,
                retry_after: state.token_wait(policy.tpm, estimate.min(policy.tpm), now),
            });
        }
        if policy.rpm > 0 {
            state.requests.push_back(now);
        }
        state.reserved += estimate;
        state.in_flight += 1;
        ticket.clients = Some(self.clients.clone());
        Ok(ticket)
    }

    /// Ends an admitted request that used `actual_tokens`: its reservation is released, the
    /// tokens are counted in the window and the spend.
    pub fn settle(&self, mut ticket: Ticket, actual_tokens: u64) {
        ticket.release(actual_tokens, Instant::now());
    }

    /// Everything a client spent, as far as this proxy knows.
    pub fn spent(&self, name: &str) -> u64 {
        let clients = self.clients.lock().expect("admission lock");
        clients.get(name).map_or(0, |state| state.spent)
    }

    /// The tokens a client spent that are not saved yet.
    pub fn unsaved(&self, name: &str) -> u64 {
        let clients = self.clients.lock().expect("admission lock");
        clients.get(name).map_or(0, |state| state.unsaved)
    }

    /// Vault now holds `stored` tokens for the client, `written` of them from this proxy's
    /// unsaved ones (0 after a read only).
    pub fn saved(&self, name: &str, stored: u64, written: u64) {
        let mut clients = self.clients.lock().expect("admission lock");
        let state = clients.entry(name.to_string()).or_default();
        state.unsaved = state.unsaved.saturating_sub(written);
        state.spent = stored + state.unsaved;
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_millis() as u64).div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rpm: u64, tpm: u64, budget: u64) -> KeyPolicy {
        KeyPolicy {
            name: "t".into(),
            rpm,
            tpm,
            budget,
            ..Default::default()
        }
    }

    #[test]
    fn requests_per_minute_slide() {
        let admission = Admission::default();
        let p = policy(2, 0, 0);
        let start = Instant::now();
        let _a = admission.admit_at(&p, 1, start).unwrap();
        let _b = admission
            .admit_at(&p, 1, start + Duration::from_secs(10))
            .unwrap();
        let refused = admission
            .admit_at(&p, 1, start + Duration::from_secs(20))
            .err()
            .unwrap();
        assert_eq!(refused.limit, Limit::Requests);
        assert_eq!(refused.retry_after, Duration::from_secs(40));
        assert!(admission
            .admit_at(&p, 1, start + Duration::from_secs(61))
            .is_ok());
    }

    #[test]
    fn reservations_count_before_the_answers_end() {
        let admission = Admission::default();
        let p = policy(0, 0, 100);
        let first = admission.admit(&p, 60).unwrap();
        let refused = admission.admit(&p, 60).err().unwrap();
        assert_eq!(
            (refused.limit, refused.retry_after),
            (Limit::Budget, IN_FLIGHT_RETRY),
            "the first request's reservation leaves 40"
        );
        let second = admission.admit(&p, 40).unwrap();
        admission.settle(first, 10);
        drop(second); // hung up: charged its estimate
        let third = admission.admit(&p, 50).unwrap();
        admission.settle(third, 50);
        let spent = admission.admit(&p, 1).err().unwrap();
        assert_eq!(
            (spent.limit, spent.retry_after),
            (Limit::Budget, BUDGET_RETRY)
        );
        assert_eq!(admission.unsaved("t"), 100);
    }

    #[test]
    fn tokens_per_minute_count_the_window_and_the_reservations() {
        let admission = Admission::default();
        let p = policy(0, 100, 0);
        let start = Instant::now();
        let big = admission.admit_at(&p, 500, start).unwrap();
        assert_eq!(
            admission.admit_at(&p, 1, start).err().unwrap().limit,
            Limit::Tokens,
            "an estimate over the limit passes alone only"
        );
        admission.settle(big, 120);
        let refused = admission
            .admit_at(&p, 1, start + Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(refused.limit, Limit::Tokens);
        assert!(refused.retry_after <= WINDOW);
        assert!(admission.admit_at(&p, 1, Instant::now() + WINDOW).is_ok());
    }

    #[test]
    fn concurrent_requests_are_capped() {
        let admission = Admission::default();
        let p = KeyPolicy {
            concurrency: 2,
            ..policy(0, 0, 0)
        };
        let a = admission.admit(&p, 0).unwrap();
        let _b = admission.admit(&p, 0).unwrap();
        assert_eq!(
            admission.admit(&p, 0).err().unwrap().limit,
            Limit::Concurrency
        );
        drop(a);
        assert!(admission.admit(&p, 0).is_ok());
        assert_eq!(retry_after_seconds(Duration::from_millis(1200)), 2);
    }

    #[test]
    fn estimates_are_never_zero() {
        assert_eq!(estimate(0, None, 4096), 1);
        assert_eq!(estimate(400, Some(50), 4096), 150);
        assert_eq!(estimate(401, None, 16), 117);
    }
}
