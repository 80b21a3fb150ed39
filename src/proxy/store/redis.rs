//! The Redis admission store. Every replica runs the same two scripts against one Redis, so
//! the limits hold across any number of replicas.
//!
//! Keys, per keys path and client key name (`K` = `keywrap:{KEYS_PATH/NAME}`; the braces
//! keep one client's keys in one Redis Cluster slot):
//! - `K:req`: a sorted set of admitted requests by time in ms: an exact sliding 60-second
//!   window, at most `rpm` members, expires 60 s after the last admission.
//! - `K:tok`: a hash of tokens per second (at most 60 fields, stale ones dropped at each
//!   admission): a sliding window with one-second steps, expires 61 s after the last charge.
//! - `K:resv` and `K:lease`: each ticket in flight, its estimate and the deadline of its
//!   lease. A holder renews the lease while it streams ([`Ticket::renew`]); a lease past its
//!   deadline is a replica that died mid-request, and the next script for that client
//!   charges its estimate. Entries leave at settle or sweep, so these hold at most the
//!   requests in flight.
//! - `K:spent`: the tokens spent, with no expiry: budgets survive restarts of the proxy and,
//!   with Redis persistence (AOF), of Redis.
//!
//! Time is Redis's own clock (`TIME` in the scripts), so replicas' clocks do not matter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, IntoConnectionInfo, ServerErrorKind};
use secrecy::ExposeSecret;

use super::settings::{FailureMode, StoreSettings};
use super::{Limit, Quota, Refusal};
use crate::secret::SecretString;

const PRELUDE: &str = include_str!("prelude.lua");
const ADMIT: &str = include_str!("admit.lua");
const SETTLE: &str = include_str!("settle.lua");

/// How long a ticket's lease lasts without renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long one store operation may take before the store counts as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The store could not be reached or answered nonsense; the caller applies its
/// [`FailureMode`]. The message never holds the password.
#[derive(Debug, thiserror::Error)]
#[error("the limits store (Redis at {address}) is unavailable: {reason}")]
pub struct Unavailable {
    pub address: String,
    pub reason: String,
}

struct LoadedScript {
    source: String,
    sha: String,
}

impl LoadedScript {
    fn new(body: &str) -> Self {
        let source = format!("{PRELUDE}\n{body}");
        let sha = redis::Script::new(&source).get_hash().to_string();
        LoadedScript { source, sha }
    }
}

struct Inner {
    connection: ConnectionManager,
    namespace: String,
    address: String,
    failure: FailureMode,
    lease: Duration,
    admit: LoadedScript,
    settle: LoadedScript,
    errors: AtomicU64,
    /// The tickets of this replica in flight (id to client), whose leases
    /// [`renew_held`] extends together.
    held: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// A handle on the store; cheap to clone, one per replica.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

/// An admitted request. Settle it with the tokens the answer used; dropped unsettled (the
/// handler panicked, the client went away), it is settled with its estimate in the
/// background, and if the whole replica dies its lease runs out and Redis charges the
/// estimate.
pub struct Ticket {
    store: Option<Arc<Inner>>,
    client: String,
    id: String,
    estimate: u64,
}

impl RedisStore {
    /// Connects to the store; `namespace` is the keys path, so proxies with different
    /// client keys can share one Redis.
    pub async fn connect(
        settings: &StoreSettings,
        password: Option<&SecretString>,
        namespace: &str,
    ) -> Result<RedisStore, Unavailable> {
        Self::connect_with_lease(settings, password, namespace, DEFAULT_LEASE).await
    }

    pub async fn connect_with_lease(
        settings: &StoreSettings,
        password: Option<&SecretString>,
        namespace: &str,
        lease: Duration,
    ) -> Result<RedisStore, Unavailable> {
        let address = format!("{}:{}", settings.host, settings.port);
        let unavailable = |err: redis::RedisError| Unavailable {
            address: address.clone(),
            reason: one_line(&err),
        };
        let mut info = settings
            .connection_url()
            .into_connection_info()
            .map_err(unavailable)?;
        if let Some(password) = password {
            let redis = info
                .redis_settings()
                .clone()
                .set_password(password.expose_secret());
            info = info.set_redis_settings(redis);
        }
        if settings.tls {
            // rediss:// builds its TLS configuration from the process's default provider;
            // keywrap's is ring (an error means one is installed already).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = redis::Client::open(info).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        let inner = Arc::new(Inner {
            connection,
            namespace: namespace.trim_matches('/').to_string(),
            address,
            failure: settings.failure,
            lease,
            admit: LoadedScript::new(ADMIT),
            settle: LoadedScript::new(SETTLE),
            errors: AtomicU64::new(0),
            held: Default::default(),
        });
        tokio::spawn(renew_held(Arc::downgrade(&inner)));
        Ok(RedisStore { inner })
    }

    /// Stops renewing the leases of the tickets in flight, as a replica that died would:
    /// for tests of what the survivors do.
    #[doc(hidden)]
    pub fn abandon_leases(&self) {
        self.inner.held.lock().expect("held lock").clear();
    }

    /// What the proxy does while this store is unavailable.
    pub fn failure_mode(&self) -> FailureMode {
        self.inner.failure
    }

    /// Operations that failed because the store was unavailable (a metric).
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// Checks every limit and, if all allow it, counts the request and reserves `estimate`
    /// tokens, in one atomic script.
    pub async fn admit(
        &self,
        client: &str,
        quota: Quota,
        estimate: u64,
    ) -> Result<Result<Ticket, Refusal>, Unavailable> {
        let mut ticket = Ticket {
            store: None,
            client: client.to_string(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            estimate,
        };
        if quota.unlimited() {
            return Ok(Ok(ticket));
        }
        let args = [
            quota.rpm,
            quota.tpm,
            quota.budget,
            quota.concurrency,
            estimate,
        ]
        .map(|n| n.to_string());
        let lease = self.inner.lease.as_millis().to_string();
        let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
        argv.extend([ticket.id.as_str(), lease.as_str()]);
        let answer: Vec<i64> = self.inner.run(&self.inner.admit, client, &argv).await?;
        match answer.as_slice() {
            [1] => {
                self.inner
                    .held
                    .lock()
                    .expect("held lock")
                    .insert(ticket.id.clone(), client.to_string());
                ticket.store = Some(self.inner.clone());
                Ok(Ok(ticket))
            }
            [0, limit, wait] => {
                let limit = match limit {
                    1 => Limit::Requests,
                    2 => Limit::Tokens,
                    3 => Limit::Budget,
                    _ => Limit::Concurrency,
                };
                Ok(Err(Refusal {
                    limit,
                    retry_after: Duration::from_millis((*wait).max(1) as u64),
                }))
            }
            _ => Err(self
                .inner
                .unavailable("the admission script answered nonsense")),
        }
    }

    /// Tokens the key has spent, as the store counts them (for `keys list` and the usage
    /// endpoint).
    pub async fn spent(&self, client: &str) -> Result<u64, Unavailable> {
        let mut connection = self.inner.connection.clone();
        let spent: Option<u64> = connection
            .get(self.inner.key(client, "spent"))
            .await
            .map_err(|err| self.inner.failed(&err))?;
        Ok(spent.unwrap_or(0))
    }

    /// Forgets what a revoked key spent, as its Vault record is forgotten: a new key of the
    /// same name starts from 0.
    pub async fn forget_spent(&self, client: &str) -> Result<(), Unavailable> {
        let mut connection = self.inner.connection.clone();
        let _: i64 = connection
            .del(self.inner.key(client, "spent"))
            .await
            .map_err(|err| self.inner.failed(&err))?;
        Ok(())
    }

    /// Sets what the key has spent, e.g. from the figure reconciled to Vault when the store
    /// was empty. Only raises it, so replicas racing at start-up cannot lose spend.
    pub async fn seed_spent(&self, client: &str, spent: u64) -> Result<(), Unavailable> {
        let mut connection = self.inner.connection.clone();
        let key = self.inner.key(client, "spent");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(spent)
            .arg("NX")
            .query_async(&mut connection)
            .await
            .map_err(|err| self.inner.failed(&err))?;
        let current = self.spent(client).await?;
        if current < spent {
            let _: i64 = connection
                .incr(&key, spent - current)
                .await
                .map_err(|err| self.inner.failed(&err))?;
        }
        Ok(())
    }
}

impl Inner {
    fn key(&self, client: &str, part: &str) -> String {
        format!("keywrap:{{{}/{client}}}:{part}", self.namespace)
    }

    fn keys(&self, client: &str) -> [String; 5] {
        ["req", "tok", "resv", "lease", "spent"].map(|part| self.key(client, part))
    }

    /// EVALSHA, and on NOSCRIPT (a restarted or flushed Redis) EVAL, which caches it again.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &LoadedScript,
        client: &str,
        argv: &[&str],
    ) -> Result<T, Unavailable> {
        let keys = self.keys(client);
        let mut connection = self.connection.clone();
        let call = |command: &str, body: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(body).arg(keys.len()).arg(&keys[..]).arg(argv);
            cmd
        };
        match call("EVALSHA", &script.sha)
            .query_async(&mut connection)
            .await
        {
            Ok(value) => Ok(value),
            Err(err) if err.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                call("EVAL", &script.source)
                    .query_async(&mut connection)
                    .await
                    .map_err(|err| self.failed(&err))
            }
            Err(err) => Err(self.failed(&err)),
        }
    }

    fn failed(&self, err: &redis::RedisError) -> Unavailable {
        self.unavailable(&one_line(err))
    }

    fn unavailable(&self, reason: &str) -> Unavailable {
        self.errors.fetch_add(1, Ordering::Relaxed);
        Unavailable {
            address: self.address.clone(),
            reason: reason.to_string(),
        }
    }
}

impl Ticket {
    /// The tokens reserved for this request.
    pub fn estimate(&self) -> u64 {
        self.estimate
    }

    /// Extends the lease: a streaming holder calls this well within [`DEFAULT_LEASE`].
    pub async fn renew(&self) -> Result<(), Unavailable> {
        match &self.store {
            Some(store) => renew(store, &self.client, &self.id).await,
            None => Ok(()),
        }
    }

    /// Releases the reservation and charges `actual` tokens; returns the key's spend.
    pub async fn settle(mut self, actual: u64) -> Result<u64, Unavailable> {
        match self.store.take() {
            Some(store) => settle(&store, &self.client, &self.id, self.estimate, actual).await,
            None => Ok(0),
        }
    }
}

/// Every third of the lease, extends the leases of all this replica's tickets in flight, in
/// one pipeline: a long stream keeps its reservation, a dead replica's leases run out. One
/// task per store, not one per request.
async fn renew_held(store: std::sync::Weak<Inner>) {
    let every = match store.upgrade() {
        Some(store) => (store.lease / 3).max(Duration::from_millis(100)),
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        let held: Vec<(String, String)> = store
            .held
            .lock()
            .expect("held lock")
            .iter()
            .map(|(id, client)| (id.clone(), client.clone()))
            .collect();
        if held.is_empty() {
            continue;
        }
        let Ok(now_ms) = redis_now_ms(&store).await else {
            continue;
        };
        let deadline = now_ms + store.lease.as_millis() as u64;
        let mut pipe = redis::pipe();
        for (id, client) in &held {
            pipe.cmd("ZADD")
                .arg(store.key(client, "lease"))
                .arg("XX")
                .arg(deadline)
                .arg(id)
                .ignore();
        }
        let renewed: Result<(), _> = pipe.query_async(&mut store.connection.clone()).await;
        if let Err(err) = renewed {
            store.failed(&err);
        }
    }
}

/// Redis's clock in ms, the one the scripts use.
async fn redis_now_ms(store: &Inner) -> Result<u64, Unavailable> {
    let time: Vec<String> = redis::cmd("TIME")
        .query_async(&mut store.connection.clone())
        .await
        .map_err(|err| store.failed(&err))?;
    Ok(time
        .first()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 1000
        + time
            .get(1)
            .and_then(|us| us.parse::<u64>().ok())
            .unwrap_or(0)
            / 1000)
}

async fn renew(store: &Inner, client: &str, id: &str) -> Result<(), Unavailable> {
    let now_ms = redis_now_ms(store).await?;
    let _: i64 = redis::cmd("ZADD")
        .arg(store.key(client, "lease"))
        .arg("XX")
        .arg(now_ms + store.lease.as_millis() as u64)
        .arg(id)
        .query_async(&mut store.connection.clone())
        .await
        .map_err(|err| store.failed(&err))?;
    Ok(())
}

async fn settle(
    store: &Inner,
    client: &str,
    id: &str,
    estimate: u64,
    actual: u64,
) -> Result<u64, Unavailable> {
    store.held.lock().expect("held lock").remove(id);
    let (estimate, actual) = (estimate.to_string(), actual.to_string());
    store
        .run(&store.settle, client, &[id, &estimate, &actual])
        .await
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        store.held.lock().expect("held lock").remove(&self.id);
        // Without a runtime the lease runs out and Redis charges the estimate itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, id, estimate) = (
                std::mem::take(&mut self.client),
                std::mem::take(&mut self.id),
                self.estimate,
            );
            runtime.spawn(async move {
                let _ = settle(&store, &client, &id, estimate, estimate).await;
            });
        }
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("client", &self.client)
            .field("estimate", &self.estimate)
            .finish_non_exhaustive()
    }
}

/// Redis errors on one line; they never hold the password.
fn one_line(err: &redis::RedisError) -> String {
    err.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl RedisStore {
    /// The connection, for other users of the same Redis (alert deduplication).
    pub fn connection(&self) -> ConnectionManager {
        self.inner.connection.clone()
    }

    /// Where an alert's "already sent" mark is kept, in this store's namespace.
    pub fn alert_key(&self, dedup_key: &str) -> String {
        format!("keywrap:alerts:{}:{dedup_key}", self.inner.namespace)
    }
}
