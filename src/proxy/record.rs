//! What the proxy remembers about one request until it ends, and what it does then:
//! count tokens against the client's limits, update metrics, write the access log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;

use super::access_log::{self, Entry};
use super::keys::KeyPolicy;
use super::limits::Ticket;
use super::metrics::Observation;
use super::usage::Usage;
use super::Shared;

pub struct RequestRecord {
    /// The client's name ("unauthenticated" until a key was checked).
    pub client: String,
    pub policy: Option<Arc<KeyPolicy>>,
    /// Index into the routes; `None` when no route took the path.
    pub route: Option<usize>,
    pub method: Method,
    /// The path without its query string.
    pub path: String,
    pub status: u16,
    pub started: Instant,
    pub upstream: Option<Duration>,
    pub first_byte: Option<Instant>,
    pub usage: Option<Usage>,
    pub previous_key: bool,
    /// The client went away before the answer ended.
    pub aborted: bool,
    /// The admitted request's reservation, settled when the answer ends.
    pub ticket: Option<Ticket>,
}

impl RequestRecord {
    pub fn new(method: Method, path: String, started: Instant) -> Self {
        RequestRecord {
            client: "unauthenticated".into(),
            policy: None,
            route: None,
            method,
            path,
            status: 0,
            started,
            upstream: None,
            first_byte: None,
            usage: None,
            previous_key: false,
            aborted: false,
            ticket: None,
        }
    }

    pub fn route_label<'a>(&self, shared: &'a Shared) -> &'a str {
        self.route
            .map_or("none", |i| shared.config.routes[i].label())
    }

    pub fn finish(mut self, shared: &Shared) {
        let now = Instant::now();
        let total = now.duration_since(self.started);
        let usage = self.usage.unwrap_or_default();
        if let Some(ticket) = self.ticket.take() {
            // No usage, or an answer cut short (the upstream may have gone on working):
            // the estimate, never less.
            match self.usage {
                Some(found) if !self.aborted => shared.limits.settle(ticket, found.total()),
                Some(found) => {
                    let charge = found.total().max(ticket.estimate());
                    shared.limits.settle(ticket, charge);
                }
                None => drop(ticket),
            }
        }
        let route = self.route_label(shared);
        // 499, as nginx logs it: the client closed the connection before the answer ended.
        let status = if self.aborted { 499 } else { self.status };
        shared.metrics.observe(&Observation {
            client: &self.client,
            route,
            status,
            total,
            upstream: self.upstream,
            first_byte: self.first_byte.map(|t| t.duration_since(self.started)),
            prompt_tokens: usage.prompt,
            completion_tokens: usage.completion,
        });
        access_log::write(
            shared.config.access_log,
            &Entry {
                client: &self.client,
                route,
                method: self.method.as_str(),
                path: &self.path,
                status,
                total,
                upstream: self.upstream,
                prompt_tokens: usage.prompt,
                completion_tokens: usage.completion,
                previous_key: self.previous_key,
            },
        );
    }
}
