//! Rotation: polls the KV v2 metadata of the injected secrets and, when a new version
//! appears, reads it and switches new requests to it. Requests in flight keep the
//! generation they started with. Pinned (`?version=N`) and KV v1 secrets are not watched.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::credentials::Credentials;
use super::Shared;
use crate::vault::kv::{self, KvVersion, Mount};
use crate::vault::VaultClient;

/// Watches for as long as the proxy runs.
pub async fn watch(shared: Arc<Shared>, client: VaultClient) {
    let mut mounts: BTreeMap<String, Mount> = BTreeMap::new();
    for binding in &shared.config.bindings {
        let reference = &binding.reference;
        if reference.version.is_some() || mounts.contains_key(&reference.path) {
            continue;
        }
        match kv::find_mount(&client.renewed_deadline(), &reference.path).await {
            Ok(mount) if mount.version == KvVersion::V2 => {
                mounts.insert(reference.path.clone(), mount);
            }
            Ok(_) => crate::log::verbose(format_args!(
                "{} is on KV v1: not watched for new versions",
                reference.path
            )),
            Err(err) => crate::log::warn(format_args!("cannot watch {}: {err}", reference.path)),
        }
    }
    if mounts.is_empty() {
        return;
    }
    loop {
        tokio::time::sleep(shared.config.watch_interval).await;
        if let Err(err) = check(&shared, &client, &mounts).await {
            crate::log::warn(format_args!(
                "checking the secrets for new versions: {err:#}"
            ));
        }
    }
}

async fn check(
    shared: &Shared,
    client: &VaultClient,
    mounts: &BTreeMap<String, Mount>,
) -> Result<()> {
    let client = client.renewed_deadline();
    let current = shared.credentials.current();
    let mut changed = Vec::new();
    for (path, mount) in mounts {
        let latest = current_version(&client, mount, path).await?;
        let loaded = current
            .versions
            .iter()
            .find(|(address, _)| &address.path == path && address.version.is_none())
            .and_then(|(_, version)| *version);
        if latest.is_some() && latest != loaded {
            changed.push(format!("{path} (version {})", latest.unwrap_or_default()));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let resolved = crate::resolve::resolve(&client, &shared.config.bindings).await?;
    let next = Credentials::build(&shared.config.routes, resolved, Some(&current))?;
    shared.credentials.replace(next);
    shared.metrics.key_switched();
    crate::log::note(format_args!("proxy: switched to {}", changed.join(", ")));
    Ok(())
}

async fn current_version(client: &VaultClient, mount: &Mount, path: &str) -> Result<Option<u64>> {
    let api_path = mount.metadata_path(path);
    let response = client.get(&api_path).await?;
    if !response.status.is_success() {
        anyhow::bail!("Vault answered {} for {api_path}", response.status.as_u16());
    }
    let metadata: serde_json::Value = response.json(&api_path).context("metadata")?;
    Ok(metadata["data"]["current_version"].as_u64())
}
