//! Client keys ("virtual keys"): what `keywrap proxy keys` writes to Vault, and the set a
//! running proxy checks requests against.
//!
//! A key is 32 random bytes shown once to its owner. Vault keeps only its SHA-256 hash (a
//! hash of 256 random bits needs no salt or stretching) with the key's name and limits, one
//! KV v2 secret per key under the keys path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use futures_util::future::join_all;
use ring::rand::SecureRandom;
use serde_json::json;
use vaultrs::api::kv2::requests::DeleteSecretMetadataRequest;

use crate::secret::{SecretString, SecretValue};
use crate::vault::kv::{self, KvVersion, Mount};
use crate::vault::{versions, VaultClient};

/// Client keys start with this, so scanners and people can tell what they are.
pub const KEY_PREFIX: &str = "kwp_";

/// The folder under the keys path that holds what each key with a budget has spent.
const SPENT_FOLDER: &str = "spent";

/// A key's SHA-256.
pub type KeyHash = [u8; 32];

/// What a client key may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    pub name: String,
    /// Route prefixes it may use; empty means all.
    pub routes: Vec<String>,
    /// Models it may ask for; empty means any.
    pub models: Vec<String>,
    /// Requests per minute, tokens per minute, total tokens; 0 means unlimited.
    pub rpm: u64,
    pub tpm: u64,
    pub budget: u64,
    /// Requests in flight at once; 0 means no cap.
    pub concurrency: u64,
}

impl KeyPolicy {
    /// Whether the key may use the route with this prefix; `openai`, `/openai` and
    /// `/openai/` name the same route.
    pub fn allows_route(&self, label: &str) -> bool {
        let label = label.trim_matches('/');
        self.routes.is_empty() || self.routes.iter().any(|r| r.trim_matches('/') == label)
    }

    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

/// What the keys path holds: the keys, and the records that are not valid keys.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<KeyRecord>,
    pub bad: Vec<BadRecord>,
}

/// A record under the keys path that is no valid key (edited by hand, say): it lets no
/// request in, and does not keep the other keys from loading.
#[derive(Debug, Clone)]
pub struct BadRecord {
    pub name: String,
    /// Names the record and what is wrong with it; never holds a field's value.
    pub problem: String,
}

/// A key as stored: its policy, hash and creation time.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub policy: KeyPolicy,
    pub hash: KeyHash,
    pub created: String,
}

pub fn hash(key: &str) -> KeyHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// A new random key.
pub fn generate() -> Result<SecretString> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref());
    Ok(SecretString::from(format!("{KEY_PREFIX}{encoded}")))
}

/// Names label metrics and log lines, so they are kept plain.
pub fn validate_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !plain || name == "anonymous" || name == "unauthenticated" {
        bail!("invalid key name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-' (not \"anonymous\" or \"unauthenticated\")");
    }
    Ok(())
}

/// The keys path in Vault.
#[derive(Debug, Clone)]
pub struct KeyStore {
    path: String,
    mount: Mount,
}

impl KeyStore {
    pub async fn open(client: &VaultClient, path: &str) -> Result<Self> {
        let mount = kv::find_mount(client, path)
            .await
            .with_context(|| format!("client keys path {path}"))?;
        if mount.version != KvVersion::V2 {
            bail!("client keys path {path} is on a KV v1 mount; use a KV v2 mount (--keys-path)");
        }
        Ok(KeyStore {
            path: path.to_string(),
            mount,
        })
    }

    fn key_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    fn spent_path(&self, name: &str) -> String {
        format!("{}/{SPENT_FOLDER}/{name}", self.path)
    }

    /// The tokens a key has spent as stored, and the version a write must replace (0: none).
    pub async fn read_spent(&self, client: &VaultClient, name: &str) -> Result<(u64, u64)> {
        let path = self.spent_path(name);
        match kv::read(client, &self.mount, &path, None).await {
            Ok(secret) => {
                let tokens = match secret.fields.get("tokens") {
                    Some(value) => value
                        .expose()
                        .trim()
                        .parse()
                        .with_context(|| format!("field tokens of {path} is not a number"))?,
                    None => 0,
                };
                Ok((tokens, secret.version.unwrap_or(0)))
            }
            Err(kv::KvError::NotFound { .. }) => Ok((0, 0)),
            Err(err) => Err(err).with_context(|| format!("reading {path}")),
        }
    }

    /// Stores a key's spent tokens if the stored version is still `version`; false when
    /// another proxy wrote in between (the caller reads again next time).
    pub async fn write_spent(
        &self,
        client: &VaultClient,
        name: &str,
        tokens: u64,
        version: u64,
    ) -> Result<bool> {
        let data = json!({
            "tokens": tokens,
            "updated": crate::proxy::access_log::rfc3339(std::time::SystemTime::now()),
        });
        let path = self.spent_path(name);
        let api_path = self.mount.data_path(&path);
        let response = versions::write(client, &self.mount, &path, data, version).await?;
        match response.status.as_u16() {
            200 | 204 => Ok(true),
            400 if response
                .errors()
                .iter()
                .any(|e| e.contains("check-and-set")) =>
            {
                Ok(false)
            }
            403 => bail!(
                "permission denied writing {api_path}: the proxy's token needs \"create\" and \"update\" on it to keep budgets across restarts"
            ),
            status => bail!(
                "Vault answered {status} writing {api_path}: {}",
                response.errors().join("; ")
            ),
        }
    }

    /// Forgets what a key spent (all versions); a missing record is fine.
    async fn delete_spent(&self, client: &VaultClient, name: &str) -> Result<()> {
        let path = self.spent_path(name);
        let api_path = self.mount.metadata_path(&path);
        let response = client.call(&self.delete_all(&path)).await?;
        match response.status.as_u16() {
            200 | 204 | 404 => Ok(()),
            403 => bail!("permission denied deleting {api_path}: the token needs \"delete\" on it"),
            status => bail!(
                "Vault answered {status} deleting {api_path}: {}",
                response.errors().join("; ")
            ),
        }
    }

    /// Writes a new key's hash and policy; fails if the name is taken. Returns the key.
    pub async fn create(&self, client: &VaultClient, policy: &KeyPolicy) -> Result<SecretString> {
        validate_name(&policy.name)?;
        let key = generate()?;
        let key_hash = hash(crate::secret::ExposeSecret::expose_secret(&key));
        let data = json!({
            "hash": format!("sha256:{}", hex(&key_hash)),
            "routes": policy.routes.join(","),
            "models": policy.models.join(","),
            "rpm": policy.rpm,
            "tpm": policy.tpm,
            "budget": policy.budget,
            "concurrency": policy.concurrency,
            "created": crate::proxy::access_log::rfc3339(std::time::SystemTime::now()),
        });
        let path = self.key_path(&policy.name);
        let api_path = self.mount.data_path(&path);
        let response = versions::write(client, &self.mount, &path, data, 0).await?;
        match response.status.as_u16() {
            // A spend left by a key of the same name deleted outside keywrap is not this key's.
            200 | 204 => match self.delete_spent(client, &policy.name).await {
                Ok(()) => Ok(key),
                Err(err) => {
                    crate::log::warn(format_args!("{err:#}"));
                    Ok(key)
                }
            },
            400 if response
                .errors()
                .iter()
                .any(|e| e.contains("check-and-set")) =>
            {
                bail!(
                    "a client key named {:?} exists; revoke it first or pick another name",
                    policy.name
                )
            }
            403 => bail!("permission denied writing {api_path}: the token needs \"create\" on it"),
            status => bail!(
                "Vault answered {status} writing {api_path}: {}",
                response.errors().join("; ")
            ),
        }
    }

    /// `DELETE mount/metadata/path`: a secret with all its versions.
    fn delete_all(&self, path: &str) -> DeleteSecretMetadataRequest {
        DeleteSecretMetadataRequest {
            mount: self.mount.name().to_string(),
            path: self.mount.relative(path).to_string(),
        }
    }

    /// The names of the stored keys: one Vault request, however many keys there are.
    pub async fn names(&self, client: &VaultClient) -> Result<BTreeSet<String>> {
        let names = kv::list(client, &self.mount, &self.path)
            .await
            .with_context(|| format!("listing client keys under {}", self.path))?;
        Ok(names.into_iter().filter(|n| !n.ends_with('/')).collect())
    }

    /// Every stored key, and the records that cannot be read or parsed (each with the
    /// reason, which names the record).
    pub async fn list(&self, client: &VaultClient) -> Result<Listing> {
        let names = self.names(client).await?;
        self.read_records(client, &names).await
    }

    /// The records of these names; names gone meanwhile are left out.
    pub async fn read_records(
        &self,
        client: &VaultClient,
        names: &BTreeSet<String>,
    ) -> Result<Listing> {
        let reads = join_all(names.iter().map(|name| async move {
            let path = self.key_path(name);
            let read = kv::read(client, &self.mount, &path, None).await;
            (name, read)
        }))
        .await;
        let mut listing = Listing::default();
        for (name, read) in reads {
            match read {
                Ok(secret) => match parse_record(name, &secret.fields) {
                    Ok(record) => listing.records.push(record),
                    Err(err) => listing.bad.push(BadRecord {
                        name: name.clone(),
                        problem: format!(
                            "client key record {name} at {} is malformed: {err:#}",
                            self.key_path(name)
                        ),
                    }),
                },
                // Revoked between the list and the read.
                Err(kv::KvError::NotFound { .. } | kv::KvError::VersionGone { .. }) => {}
                // Fails closed: that key is refused until it can be read.
                Err(err) => listing.bad.push(BadRecord {
                    name: name.clone(),
                    problem: format!("client key record {name} cannot be read: {err:#}"),
                }),
            }
        }
        Ok(listing)
    }

    /// Deletes the key and all its versions; false if there was none.
    pub async fn revoke(&self, client: &VaultClient, name: &str) -> Result<bool> {
        validate_name(name)?;
        let path = self.key_path(name);
        let exists = match kv::read(client, &self.mount, &path, None).await {
            Ok(_) => true,
            Err(kv::KvError::NotFound { .. } | kv::KvError::VersionGone { .. }) => false,
            Err(err) => return Err(err).with_context(|| format!("reading client key {name}")),
        };
        let api_path = self.mount.metadata_path(&path);
        let response = client.call(&self.delete_all(&path)).await?;
        match response.status.as_u16() {
            200 | 204 | 404 => {
                self.delete_spent(client, name).await?;
                Ok(exists)
            }
            403 => bail!("permission denied deleting {api_path}: the token needs \"delete\" on it"),
            status => bail!(
                "Vault answered {status} deleting {api_path}: {}",
                response.errors().join("; ")
            ),
        }
    }
}

fn parse_record(name: &str, fields: &BTreeMap<String, SecretValue>) -> Result<KeyRecord> {
    let text = |field: &str| {
        fields
            .get(field)
            .map(|v| v.expose().trim().to_string())
            .unwrap_or_default()
    };
    let number = |field: &str| -> Result<u64> {
        let value = text(field);
        if value.is_empty() {
            return Ok(0);
        }
        value
            .parse()
            .with_context(|| format!("field {field} is not a number"))
    };
    let list = |field: &str| -> Vec<String> {
        text(field)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let stored = text("hash");
    let hash = stored
        .strip_prefix("sha256:")
        .and_then(unhex)
        .context("field hash is not sha256:<64 hex digits>")?;
    Ok(KeyRecord {
        policy: KeyPolicy {
            name: name.to_string(),
            routes: list("routes"),
            models: list("models"),
            rpm: number("rpm")?,
            tpm: number("tpm")?,
            budget: number("budget")?,
            concurrency: number("concurrency")?,
        },
        hash,
        created: text("created"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<KeyHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// How often a miss on an unknown key may look for new keys.
const MISS_RELOAD_GAP: Duration = Duration::from_secs(1);
/// How often the key names are listed between full reloads: a revoked key's name is gone,
/// so revocation takes effect within about this long for the price of one small request.
const REVOCATION_CHECK: Duration = Duration::from_secs(1);

/// The loaded keys, by hash, and every name under the keys path (bad records included, so
/// that a bad record is not read again at every check).
#[derive(Default)]
struct Loaded {
    by_hash: HashMap<KeyHash, Arc<KeyPolicy>>,
    names: BTreeSet<String>,
}

/// The keys a running proxy accepts, reloaded from Vault periodically and on a miss.
pub struct KeyRing {
    store: KeyStore,
    client: VaultClient,
    keys: RwLock<Arc<Loaded>>,
    last_reload: tokio::sync::Mutex<Instant>,
    /// The bad-record warnings given, so each is given once.
    warned: std::sync::Mutex<BTreeSet<String>>,
    /// Hashes of keys revoked while this proxy ran, by name (for the `revoked_key` alert).
    revoked: std::sync::Mutex<HashMap<KeyHash, String>>,
    /// Names of revoked keys presented since the last [`KeyRing::take_revoked_tried`].
    revoked_tried: std::sync::Mutex<BTreeSet<String>>,
}

/// Revoked keys remembered at most, so a churn of keys cannot grow the memory.
const REVOKED_REMEMBERED: usize = 10_000;

impl KeyRing {
    pub async fn load(store: KeyStore, client: VaultClient) -> Result<Self> {
        let ring = KeyRing {
            store,
            client,
            keys: RwLock::default(),
            last_reload: tokio::sync::Mutex::new(Instant::now()),
            warned: std::sync::Mutex::default(),
            revoked: std::sync::Mutex::default(),
            revoked_tried: std::sync::Mutex::default(),
        };
        let count = ring.reload().await?;
        crate::log::verbose(format_args!(
            "{count} client keys loaded from {}",
            ring.store.path
        ));
        Ok(ring)
    }

    /// Replaces the set with what Vault holds now, bad records left out (with a warning); if
    /// Vault cannot be reached the old set stays.
    pub async fn reload(&self) -> Result<usize> {
        let client = self.client.renewed_deadline();
        let names = self.store.names(&client).await?;
        let listing = self.store.read_records(&client, &names).await?;
        self.warn_bad(&listing.bad);
        let loaded = Loaded {
            by_hash: listing
                .records
                .into_iter()
                .map(|r| (r.hash, Arc::new(r.policy)))
                .collect(),
            names,
        };
        let count = loaded.by_hash.len();
        let mut keys = self.keys.write().expect("key set lock");
        self.remember_revoked(&keys, &loaded);
        *keys = Arc::new(loaded);
        Ok(count)
    }

    fn warn_bad(&self, bad: &[BadRecord]) {
        let mut warned = self.warned.lock().expect("warned lock");
        for record in bad {
            if warned.insert(record.problem.clone()) {
                crate::log::warn(format_args!(
                    "{} (skipped: that key is refused until the record is fixed)",
                    record.problem
                ));
            }
        }
    }

    /// Lists the names: keys whose names are gone are dropped at once, and only names not
    /// loaded yet are read. Says whether anything changed.
    async fn apply_names(&self) -> Result<bool> {
        let client = self.client.renewed_deadline();
        let stored = self.store.names(&client).await?;
        let current = self.keys.read().expect("key set lock").clone();
        if stored == current.names {
            return Ok(false);
        }
        let new: BTreeSet<String> = stored.difference(&current.names).cloned().collect();
        let listing = self.store.read_records(&client, &new).await?;
        self.warn_bad(&listing.bad);
        // Built on the set as it is now: a full reload may have replaced it meanwhile.
        let mut keys = self.keys.write().expect("key set lock");
        let mut by_hash: HashMap<KeyHash, Arc<KeyPolicy>> = keys
            .by_hash
            .iter()
            .filter(|(_, policy)| stored.contains(&policy.name))
            .map(|(hash, policy)| (*hash, policy.clone()))
            .collect();
        for record in listing.records {
            by_hash.insert(record.hash, Arc::new(record.policy));
        }
        let loaded = Loaded {
            by_hash,
            names: stored,
        };
        self.remember_revoked(&keys, &loaded);
        *keys = Arc::new(loaded);
        Ok(true)
    }

    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// Keys of `old` whose names are gone in `new` were revoked: their hashes are kept.
    fn remember_revoked(&self, old: &Loaded, new: &Loaded) {
        let mut revoked = self.revoked.lock().expect("revoked lock");
        for (hash, policy) in &old.by_hash {
            if !new.names.contains(&policy.name) && revoked.len() < REVOKED_REMEMBERED {
                revoked.insert(*hash, policy.name.clone());
            }
        }
        revoked.retain(|hash, _| !new.by_hash.contains_key(hash));
    }

    /// The names of revoked keys presented since the last call.
    pub fn take_revoked_tried(&self) -> Vec<String> {
        std::mem::take(&mut *self.revoked_tried.lock().expect("revoked lock"))
            .into_iter()
            .collect()
    }

    /// The loaded keys that have a budget.
    pub fn budgeted(&self) -> Vec<Arc<KeyPolicy>> {
        self.keys
            .read()
            .expect("key set lock")
            .by_hash
            .values()
            .filter(|policy| policy.budget > 0)
            .cloned()
            .collect()
    }

    fn lookup(&self, key_hash: &KeyHash) -> Option<Arc<KeyPolicy>> {
        self.keys
            .read()
            .expect("key set lock")
            .by_hash
            .get(key_hash)
            .cloned()
    }

    /// The policy of a presented key. An unknown key makes the ring look for new names in
    /// Vault (one list, and a read of each new name only), at most once per second (a miss
    /// may wait for that), so a key created after the proxy started works within a second
    /// and random keys cost Vault one list request a second, whatever their number.
    pub async fn authenticate(&self, key: &str) -> Option<Arc<KeyPolicy>> {
        let key_hash = hash(key);
        if let Some(policy) = self.lookup(&key_hash) {
            return Some(policy);
        }
        let missed_at = Instant::now();
        let mut last = self.last_reload.lock().await;
        // A check that started after the miss has already seen any key created before it.
        if *last < missed_at {
            tokio::time::sleep((*last + MISS_RELOAD_GAP).saturating_duration_since(Instant::now()))
                .await;
            *last = Instant::now();
            if let Err(err) = self.apply_names().await {
                crate::log::verbose(format_args!("looking for new client keys: {err:#}"));
            }
        }
        drop(last);
        let found = self.lookup(&key_hash);
        if found.is_none() {
            if let Some(name) = self.revoked.lock().expect("revoked lock").get(&key_hash) {
                self.revoked_tried
                    .lock()
                    .expect("revoked lock")
                    .insert(name.clone());
            }
        }
        found
    }

    /// Reloads every `interval` for as long as the proxy runs (changed limits), and applies
    /// revocations and new keys every second.
    pub async fn keep_fresh(&self, interval: Duration) {
        let mut last_full = Instant::now();
        loop {
            tokio::time::sleep(interval.min(REVOCATION_CHECK)).await;
            if last_full.elapsed() < interval {
                if let Err(err) = self.apply_names().await {
                    // The next full reload warns.
                    crate::log::verbose(format_args!("listing client keys: {err:#}"));
                }
                continue;
            }
            last_full = Instant::now();
            let mut last = self.last_reload.lock().await;
            *last = Instant::now();
            let reloaded = self.reload().await;
            drop(last);
            if let Err(err) = reloaded {
                crate::log::warn(format_args!(
                    "cannot reload client keys (keeping the old set): {err:#}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashes_round_trip() {
        use crate::secret::ExposeSecret;
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(a.expose_secret().starts_with(KEY_PREFIX));
        assert_eq!(a.expose_secret().len(), KEY_PREFIX.len() + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
        let h = hash(a.expose_secret());
        assert_eq!(unhex(&hex(&h)), Some(h));
    }

    #[test]
    fn names_stay_plain() {
        assert!(validate_name("web-app.v2_1").is_ok());
        for bad in ["", "a b", "x\"y", "anonymous", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
