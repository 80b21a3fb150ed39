//! Budgets that outlive the proxy. What each client key with a budget has spent is kept in
//! Vault next to the key hashes (`KEYS_PATH/spent/NAME`), so a restart does not hand a key
//! its budget again and proxies sharing a keys path share budgets. Each proxy adds its
//! unsaved tokens with a check-and-set write, at most once per [`SAVE_INTERVAL`] per key,
//! and reads what the others spent; between two saves a key can overspend by what it uses
//! in that interval on the other proxies.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::Shared;
use crate::vault::VaultClient;

/// How often spends are saved and read.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(5);

/// Saves every budgeted key's unsaved tokens and learns what it spent elsewhere.
pub async fn save(shared: &Shared, client: &VaultClient) -> Result<()> {
    let client = client.renewed_deadline();
    let store = shared.keys.store();
    for policy in shared.keys.budgeted() {
        let name = &policy.name;
        let unsaved = shared.limits.unsaved(name);
        let (stored, version) = store.read_spent(&client, name).await?;
        if unsaved == 0 {
            shared.limits.saved(name, stored, 0);
        } else if store
            .write_spent(&client, name, stored + unsaved, version)
            .await?
        {
            shared.limits.saved(name, stored + unsaved, unsaved);
        }
        // Else another proxy saved in between: the next round adds to its total.
    }
    Ok(())
}

/// Saves every [`SAVE_INTERVAL`] for as long as the proxy runs.
pub async fn keep_saving(shared: Arc<Shared>, client: VaultClient) {
    loop {
        tokio::time::sleep(SAVE_INTERVAL).await;
        if let Err(err) = save(&shared, &client).await {
            crate::log::warn(format_args!("saving what budgeted keys spent: {err:#}"));
        }
    }
}
