//! Rotation: polls the KV v2 metadata of the injected secrets and, when a new version
//! appears, reads it and switches new requests to it. Requests in flight keep the
//! generation they started with. Pinned (`?version=N`) and KV v1 secrets are not watched.
//! A proxy that starts during an overlap window takes the previous versions as the
//! generation before, as if it had seen the rotation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::config::ProxyConfig;
use super::credentials::Credentials;
use super::Shared;
use crate::resolve::Resolved;
use crate::timestamp::Timestamp;
use crate::vault::kv::{self, KvVersion, Mount};
use crate::vault::VaultClient;

/// The credentials to start with. With an overlap, each secret whose current version is
/// younger than the window and whose previous version is still readable (`keywrap rotate
/// --finish` deletes it, ending the overlap) contributes that version to a previous
/// generation, so the 401 retry works across a restart during the overlap.
pub async fn starting_credentials(
    config: &ProxyConfig,
    client: &VaultClient,
    resolved: Resolved,
) -> Result<Credentials> {
    let Some(window) = config.overlap else {
        return Credentials::build(&config.routes, resolved, None);
    };
    let now = Timestamp::now();
    let mut previous = Resolved {
        values: resolved.values.clone(),
        reads: BTreeMap::new(),
    };
    let mut youngest: Option<Duration> = None;
    for binding in &config.bindings {
        let reference = &binding.reference;
        let Some(read) = resolved.reads.get(&reference.address()) else {
            continue;
        };
        let (Some(version), Some(created), None) = (
            read.version,
            read.created_time.as_deref().and_then(Timestamp::parse),
            reference.version,
        ) else {
            continue;
        };
        let age = now.since(created);
        if version < 2 || age >= window {
            continue;
        }
        let mount = kv::find_mount(client, &reference.path).await?;
        let value = match kv::read(client, &mount, &reference.path, Some(version - 1)).await {
            Ok(secret) => secret.fields.get(&reference.field).cloned(),
            Err(_) => None,
        };
        let Some(value) = value else {
            continue;
        };
        crate::log::verbose(format_args!(
            "{} version {} is the previous key (overlap)",
            reference.path,
            version - 1
        ));
        for (name, old) in &mut previous.values {
            if *name == binding.name {
                *old = value.clone();
            }
        }
        youngest = Some(youngest.map_or(age, |y| y.min(age)));
    }
    let Some(age) = youngest else {
        return Credentials::build(&config.routes, resolved, None);
    };
    let before = Credentials::build(&config.routes, previous, None)?;
    let current = Credentials::build(&config.routes, resolved, Some(&before))?;
    Ok(current.switched_at(Instant::now().checked_sub(age).unwrap_or_else(Instant::now)))
}

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
        if Some(latest) != loaded {
            changed.push(format!("{path} (version {latest})"));
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

async fn current_version(client: &VaultClient, mount: &Mount, path: &str) -> Result<u64> {
    let metadata = crate::vault::versions::metadata(client, mount, path)
        .await
        .context("metadata")?;
    Ok(metadata.current_version)
}
