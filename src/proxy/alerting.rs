//! `[[proxy.alerts]]` fired by the running proxy. One background task looks every
//! [`CHECK_EVERY`] at what the proxy already counts (each budgeted key's spend, its metrics'
//! 429s and upstream errors, revoked keys still tried), so nothing is added to the request
//! path. Each alert goes through [`crate::alerts::Dedup`]: in Redis with `[proxy] store`, so
//! it fires once across replicas, in process otherwise. Alerts name keys, never hold one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::Shared;
use crate::alerts::{Alert, AlertRule, Dedup, MemoryDedup, RedisDedup, Sender};
use crate::secret::ExposeSecret;
use crate::vault::VaultClient;

/// How often thresholds are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A budget has no period (spend never expires): its thresholds fire once in this long.
const BUDGET_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// One `[[proxy.alerts]]` entry with its webhook resolved.
struct Destination {
    rule: AlertRule,
    sender: Sender,
}

/// The proxy's alerting: destinations and where "already sent" is kept.
pub struct Alerting {
    destinations: Vec<Destination>,
    dedup: Arc<dyn Dedup>,
}

impl Alerting {
    /// Reads each entry's webhook URL from Vault. `None` without `[[proxy.alerts]]`.
    pub async fn open(shared: &Shared, vault: &VaultClient) -> Result<Option<Alerting>> {
        if shared.config.alerts.is_empty() {
            return Ok(None);
        }
        let mut destinations = Vec::new();
        for (i, rule) in shared.config.alerts.iter().enumerate() {
            let binding = crate::bindings::Binding {
                name: format!("alert_{}", i + 1),
                reference: rule.url.clone(),
                origin: crate::bindings::Origin::Flag,
            };
            let mut resolved = crate::resolve::resolve(vault, std::slice::from_ref(&binding))
                .await
                .with_context(|| {
                    format!("reading the webhook of [[proxy.alerts]] entry {}", i + 1)
                })?;
            let url = resolved.values.remove(0).1;
            let sender = Sender::new(url.0.expose_secret(), rule.format)
                .with_context(|| format!("[[proxy.alerts]] entry {}", i + 1))?;
            destinations.push(Destination {
                rule: rule.clone(),
                sender,
            });
        }
        let dedup: Arc<dyn Dedup> = match shared.limits.store() {
            Some(store) => Arc::new(RedisDedup::new(store.clone())),
            None => Arc::new(MemoryDedup::default()),
        };
        Ok(Some(Alerting {
            destinations,
            dedup,
        }))
    }

    /// Checks every [`CHECK_EVERY`] for as long as the proxy runs.
    pub async fn run(self, shared: Arc<Shared>) {
        let this = Arc::new(self);
        let mut history: VecDeque<(Instant, Snapshot)> = VecDeque::new();
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let now = Instant::now();
            let snapshot = Snapshot::take(&shared);
            history.push_back((now, snapshot));
            let longest = this.longest_window();
            while history
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > longest + CHECK_EVERY)
            {
                history.pop_front();
            }
            for alert in this.due(&shared, &history, now).await {
                let this = this.clone();
                tokio::spawn(async move { this.fire(alert).await });
            }
        }
    }

    fn longest_window(&self) -> Duration {
        self.destinations
            .iter()
            .flat_map(|d| {
                [
                    d.rule.rate_limited.map(|(_, w)| w),
                    d.rule.upstream_error_rate.map(|(_, w)| w),
                ]
            })
            .flatten()
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// The alerts whose thresholds are crossed now, each with its destination and period.
    async fn due(
        &self,
        shared: &Shared,
        history: &VecDeque<(Instant, Snapshot)>,
        now: Instant,
    ) -> Vec<(usize, Alert, Duration)> {
        let mut due = Vec::new();
        let wants_budget = self
            .destinations
            .iter()
            .any(|d| !d.rule.budget_percent.is_empty());
        let spends = if wants_budget {
            spends(shared).await
        } else {
            Vec::new()
        };
        let latest = &history.back().expect("just pushed").1;
        for (index, destination) in self.destinations.iter().enumerate() {
            let rule = &destination.rule;
            for (name, budget, spent) in &spends {
                for percent in &rule.budget_percent {
                    if spent * 100 >= budget * u64::from(*percent) {
                        due.push((
                            index,
                            Alert {
                                rule: "budget".into(),
                                subject: name.clone(),
                                threshold: format!("{percent}%"),
                                period: format!("budget {budget}"),
                                message: format!(
                                    "client key {name} has spent {spent} of its {budget}-token budget ({percent}% reached)"
                                ),
                            },
                            BUDGET_PERIOD,
                        ));
                    }
                }
            }
            if let Some((times, window)) = rule.rate_limited {
                let base = baseline(history, now, window);
                for (name, n) in &latest.rate_limited {
                    let before = base.rate_limited.get(name).copied().unwrap_or(0);
                    if n - before.min(*n) >= u64::from(times) {
                        due.push((
                            index,
                            Alert {
                                rule: "rate_limited".into(),
                                subject: name.clone(),
                                threshold: format!("{times} in {}m", window.as_secs() / 60),
                                period: period_id(window),
                                message: format!(
                                    "client key {name} was refused with 429 {} times in the last {} minutes",
                                    n - before.min(*n),
                                    window.as_secs() / 60
                                ),
                            },
                            window,
                        ));
                    }
                }
            }
            if let Some((share, window)) = rule.upstream_error_rate {
                let base = baseline(history, now, window);
                for (route, errors) in &latest.upstream_errors {
                    let errors = errors
                        - base
                            .upstream_errors
                            .get(route)
                            .copied()
                            .unwrap_or(0)
                            .min(*errors);
                    let total = latest.requests.get(route).copied().unwrap_or(0);
                    let total = total - base.requests.get(route).copied().unwrap_or(0).min(total);
                    if errors > 0 && total > 0 && errors as f64 > share * total as f64 {
                        due.push((
                            index,
                            Alert {
                                rule: "upstream_errors".into(),
                                subject: route.clone(),
                                threshold: format!("{}%", share * 100.0),
                                period: period_id(window),
                                message: format!(
                                    "{errors} of {total} requests on route {route} failed upstream in the last {} minutes",
                                    window.as_secs() / 60
                                ),
                            },
                            window,
                        ));
                    }
                }
            }
            if rule.revoked_key {
                for name in &latest.revoked_tried {
                    due.push((
                        index,
                        Alert {
                            rule: "revoked_key".into(),
                            subject: name.clone(),
                            threshold: "tried".into(),
                            period: period_id(Duration::from_secs(3600)),
                            message: format!("the revoked client key {name} is still being tried"),
                        },
                        Duration::from_secs(3600),
                    ));
                }
            }
        }
        due
    }

    async fn fire(&self, (index, alert, period): (usize, Alert, Duration)) {
        let destination = &self.destinations[index];
        // The destination is part of what is deduplicated: two webhooks each get it once.
        let key = format!("{index}|{}", alert.dedup_key());
        match self.dedup.first(&key, period).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                crate::log::warn(format_args!("alert {} not sent: {err:#}", alert.rule));
                return;
            }
        }
        if let Err(err) = destination.sender.send(&alert).await {
            crate::log::warn(format_args!("alert {} not sent: {err:#}", alert.rule));
        }
    }
}

/// Each budgeted key's name, budget and spend (from the store with one, else in process).
async fn spends(shared: &Shared) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for policy in shared.keys.budgeted() {
        let spent = match shared.limits.store() {
            Some(store) => match store.spent(&policy.name).await {
                Ok(spent) => spent,
                Err(_) => continue,
            },
            None => shared.limits.admission().spent(&policy.name),
        };
        out.push((policy.name.clone(), policy.budget, spent));
    }
    out
}

/// The oldest snapshot within `window` of `now` (counts before the window started).
fn baseline(history: &VecDeque<(Instant, Snapshot)>, now: Instant, window: Duration) -> &Snapshot {
    history
        .iter()
        .find(|(t, _)| now.duration_since(*t) <= window)
        .map(|(_, s)| s)
        .unwrap_or(&history.back().expect("not empty").1)
}

/// The period of a sliding-window alert. The dedup mark it is stored under expires after
/// `window`, so the alert fires at most once per window from its first firing, across
/// replicas; a period counted from the epoch instead would let a condition that lasts across
/// a boundary fire twice within one window.
fn period_id(window: Duration) -> String {
    format!("{}s", window.as_secs())
}

/// What the metrics counted so far, as alerts need it.
#[derive(Default)]
struct Snapshot {
    rate_limited: BTreeMap<String, u64>,
    upstream_errors: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
    revoked_tried: Vec<String>,
}

impl Snapshot {
    fn take(shared: &Shared) -> Snapshot {
        let counts = shared.metrics.counts();
        Snapshot {
            rate_limited: counts.rate_limited,
            upstream_errors: counts.upstream_errors,
            requests: counts.requests,
            revoked_tried: shared.keys.take_revoked_tried(),
        }
    }
}
