//! Per-client limits: requests per minute, tokens per minute (a sliding 60-second window)
//! and a token budget.
//!
//! Tokens are known only when an answer ends, so a client is refused once its window holds
//! its TPM or more; the answer that crossed the line is not cut off. The budget counts every
//! token the key has spent: what Vault had stored (see [`super::spend`]) plus what this
//! proxy counted since, of which the part not saved yet is kept apart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::keys::KeyPolicy;

const WINDOW: Duration = Duration::from_secs(60);
/// What `Retry-After` says when the budget is spent: it does not refill by waiting.
const BUDGET_RETRY: Duration = Duration::from_secs(3600);

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
}

impl Limit {
    /// The `limit` label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Requests => "rpm",
            Limit::Tokens => "tpm",
            Limit::Budget => "budget",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Limit::Requests => "requests-per-minute limit reached for this client key",
            Limit::Tokens => "tokens-per-minute limit reached for this client key",
            Limit::Budget => "token budget of this client key is spent",
        }
    }
}

#[derive(Default)]
struct ClientState {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
    tokens_in_window: u64,
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
}

/// Every client's usage, by key name.
#[derive(Default)]
pub struct Limits {
    clients: Mutex<HashMap<String, ClientState>>,
}

impl Limits {
    /// Admits and counts one request, or says which limit refuses it.
    pub fn admit(&self, policy: &KeyPolicy, now: Instant) -> Result<(), Refusal> {
        if policy.rpm == 0 && policy.tpm == 0 && policy.budget == 0 {
            return Ok(());
        }
        let mut clients = self.clients.lock().expect("limits lock");
        let state = clients.entry(policy.name.clone()).or_default();
        state.expire(now);
        let wait_for = |since: Instant| (since + WINDOW).saturating_duration_since(now);
        if policy.budget > 0 && state.spent >= policy.budget {
            return Err(Refusal {
                limit: Limit::Budget,
                retry_after: BUDGET_RETRY,
            });
        }
        if policy.rpm > 0 && state.requests.len() as u64 >= policy.rpm {
            return Err(Refusal {
                limit: Limit::Requests,
                retry_after: wait_for(state.requests[0]),
            });
        }
        if policy.tpm > 0 && state.tokens_in_window >= policy.tpm {
            // Wait until enough tokens leave the window to go under the limit.
            let mut left = state.tokens_in_window;
            let mut until = now;
            for &(t, n) in &state.tokens {
                left -= n;
                until = t;
                if left < policy.tpm {
                    break;
                }
            }
            return Err(Refusal {
                limit: Limit::Tokens,
                retry_after: wait_for(until),
            });
        }
        if policy.rpm > 0 {
            state.requests.push_back(now);
        }
        Ok(())
    }

    /// Counts the tokens of an answer that ended.
    pub fn record_tokens(&self, policy: &KeyPolicy, tokens: u64, now: Instant) {
        if tokens == 0 || (policy.tpm == 0 && policy.budget == 0) {
            return;
        }
        let mut clients = self.clients.lock().expect("limits lock");
        let state = clients.entry(policy.name.clone()).or_default();
        state.spent += tokens;
        if policy.budget > 0 {
            state.unsaved += tokens;
        }
        if policy.tpm > 0 {
            state.tokens.push_back((now, tokens));
            state.tokens_in_window += tokens;
        }
    }
}

impl Limits {
    /// The tokens a client spent that are not saved yet.
    pub fn unsaved(&self, name: &str) -> u64 {
        let clients = self.clients.lock().expect("limits lock");
        clients.get(name).map_or(0, |state| state.unsaved)
    }

    /// Vault now holds `stored` tokens for the client, `written` of them from this proxy's
    /// unsaved ones (0 after a read only).
    pub fn saved(&self, name: &str, stored: u64, written: u64) {
        let mut clients = self.clients.lock().expect("limits lock");
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
        let limits = Limits::default();
        let p = policy(2, 0, 0);
        let start = Instant::now();
        assert!(limits.admit(&p, start).is_ok());
        assert!(limits.admit(&p, start + Duration::from_secs(10)).is_ok());
        let refused = limits
            .admit(&p, start + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(refused.limit, Limit::Requests);
        assert_eq!(refused.retry_after, Duration::from_secs(40));
        assert!(limits.admit(&p, start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn tokens_and_budget_refuse_after_the_fact() {
        let limits = Limits::default();
        let p = policy(0, 100, 150);
        let start = Instant::now();
        assert!(limits.admit(&p, start).is_ok());
        limits.record_tokens(&p, 120, start);
        let refused = limits
            .admit(&p, start + Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(
            (refused.limit, refused.retry_after),
            (Limit::Tokens, Duration::from_secs(59))
        );
        assert!(limits.admit(&p, start + Duration::from_secs(60)).is_ok());
        limits.record_tokens(&p, 40, start + Duration::from_secs(60));
        let refused = limits
            .admit(&p, start + Duration::from_secs(61))
            .unwrap_err();
        assert_eq!(refused.limit, Limit::Budget);
        assert_eq!(retry_after_seconds(Duration::from_millis(1200)), 2);
    }
}
