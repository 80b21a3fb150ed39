//! Budgets that outlive the proxy. What each client key with a budget has spent is kept in
//! Vault next to the key hashes (`KEYS_PATH/spent/NAME`), so a restart does not hand a key
//! its budget again and proxies sharing a keys path share budgets. Each proxy adds its
//! unsaved tokens with a check-and-set write, at most once per [`SAVE_INTERVAL`] per key,
//! and so learns what the others spent; a key it has not used is read again once per
//! [`REFRESH_INTERVAL`]. Between two reads a key can overspend by what it uses on the
//! other proxies meanwhile.
//!
//! With `[proxy] store`, the store is the source of truth: budgets are checked there, across
//! replicas, at every admission. Vault keeps the record: at start-up a key the store has no
//! (or a smaller) spend for is seeded from Vault, and every [`REFRESH_INTERVAL`] and at exit
//! the store's figure is written to Vault with check-and-set (a replica that loses the race
//! leaves it to the one that won: both wrote the same store's figure).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::store::redis::RedisStore;
use super::Shared;
use crate::vault::VaultClient;

/// How often unsaved spends are saved.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the spends of keys this proxy did not use are read, for what other proxies
/// spent: one read per budgeted key, so not every few seconds.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Saves every budgeted key's unsaved tokens; with `refresh`, also reads the spends of the
/// keys with nothing to save.
pub async fn save(shared: &Shared, client: &VaultClient, refresh: bool) -> Result<()> {
    let client = client.renewed_deadline();
    if let Some(limits) = shared.limits.store() {
        return reconcile(shared, limits, &client).await;
    }
    let admission = shared.limits.admission();
    let store = shared.keys.store();
    for policy in shared.keys.budgeted() {
        let name = &policy.name;
        let unsaved = admission.unsaved(name);
        if unsaved == 0 && !refresh {
            continue;
        }
        let (stored, version) = store.read_spent(&client, name).await?;
        if unsaved == 0 {
            admission.saved(name, stored, 0);
        } else if store
            .write_spent(&client, name, stored + unsaved, version)
            .await?
        {
            admission.saved(name, stored + unsaved, unsaved);
        }
        // Else another proxy saved in between: the next round adds to its total.
    }
    Ok(())
}

/// Saves every [`SAVE_INTERVAL`] for as long as the proxy runs.
pub async fn keep_saving(shared: Arc<Shared>, client: VaultClient) {
    let mut refreshed = Instant::now();
    loop {
        tokio::time::sleep(SAVE_INTERVAL).await;
        let refresh = refreshed.elapsed() >= REFRESH_INTERVAL;
        if refresh {
            refreshed = Instant::now();
        }
        if shared.limits.store().is_some() && !refresh {
            continue;
        }
        if let Err(err) = save(&shared, &client, refresh).await {
            crate::log::warn(format_args!("saving what budgeted keys spent: {err:#}"));
        }
    }
}

/// Seeds the store from Vault where the store has less, and writes the store's figure to
/// Vault where Vault has less.
async fn reconcile(shared: &Shared, limits: &RedisStore, client: &VaultClient) -> Result<()> {
    let store = shared.keys.store();
    for policy in shared.keys.budgeted() {
        let name = &policy.name;
        let (stored, version) = store.read_spent(client, name).await?;
        let current = limits.spent(name).await?;
        if current < stored {
            limits.seed_spent(name, stored).await?;
        } else if current > stored {
            store.write_spent(client, name, current, version).await?;
        }
    }
    Ok(())
}
