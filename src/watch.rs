//! `--watch`: notice when a referenced secret gets a new version, and hand the new values
//! to the supervisor, which restarts the child (an environment only changes by a restart).
//!
//! The poller reads KV v2 metadata (`MOUNT/metadata/PATH`: `current_version`, never a
//! value) of every secret referenced without a pinned version. Pinned versions and KV v1
//! secrets (which have no versions) cannot change and are not polled. Only when a version
//! moved are the secrets read again, through the same resolver as at start.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::bindings::Binding;
use crate::child::signals::Event;
use crate::reference::SecretAddress;
use crate::resolve::ReadInfo;
use crate::vault::kv::{self, KvVersion, Mount};
use crate::vault::VaultClient;

/// The default `--watch` interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Metadata {
    data: MetadataData,
}

#[derive(Deserialize)]
struct MetadataData {
    current_version: u64,
}

/// Starts the poller thread. `versions` are the versions read at start.
pub fn spawn(
    mut client: VaultClient,
    bindings: Vec<Binding>,
    versions: BTreeMap<SecretAddress, ReadInfo>,
    interval: Duration,
    timeout: Duration,
    events: Sender<Event>,
) -> Result<()> {
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let Ok(runtime) = crate::cmd::runtime() else {
                crate::log::warn("--watch: cannot start the poller; secrets are not watched");
                return;
            };
            let mut known: BTreeMap<String, (Mount, u64)> = BTreeMap::new();
            for (address, read) in &versions {
                if address.version.is_some() {
                    continue;
                }
                client.reset_deadline(timeout);
                match (runtime.block_on(kv::find_mount(&client, &address.path)), read.version) {
                    (Ok(mount), Some(version)) if mount.version == KvVersion::V2 => {
                        known.insert(address.path.clone(), (mount, version));
                    }
                    _ => crate::log::verbose(format_args!(
                        "--watch: {address} has no versions (KV v1); not watched"
                    )),
                }
            }
            if known.is_empty() {
                crate::log::warn("--watch: no referenced secret has versions to watch");
                return;
            }
            loop {
                std::thread::sleep(interval);
                client.reset_deadline(timeout);
                let mut changed = false;
                for (path, (mount, version)) in known.iter_mut() {
                    match runtime.block_on(current_version(&client, mount, path)) {
                        Ok(current) if current != *version => {
                            crate::log::verbose(format_args!(
                                "--watch: {path} is now at version {current} (was {version})"
                            ));
                            *version = current;
                            changed = true;
                        }
                        Ok(_) => {}
                        Err(err) => crate::log::warn(format_args!("--watch: {err:#}")),
                    }
                }
                if !changed {
                    continue;
                }
                match runtime.block_on(crate::resolve::resolve(&client, &bindings)) {
                    Ok(resolved) => {
                        if events.send(Event::NewValues(resolved.values)).is_err() {
                            return;
                        }
                    }
                    Err(err) => crate::log::warn(format_args!(
                        "--watch: a secret changed but cannot be read, so the command keeps running with the old values: {err}"
                    )),
                }
            }
        })
        .context("cannot start the --watch poller")?;
    Ok(())
}

async fn current_version(client: &VaultClient, mount: &Mount, path: &str) -> Result<u64> {
    let api_path = mount.metadata_path(path);
    let response = client.get(&api_path).await?;
    if !response.status.is_success() {
        anyhow::bail!(
            "cannot read the metadata of {path} ({api_path}: HTTP {}); the policy needs \"read\" on it",
            response.status.as_u16()
        );
    }
    Ok(response.json::<Metadata>(&api_path)?.data.current_version)
}

/// Parses a `--watch` or `--restart-timeout` duration: `30s`, `5m`, `1h`, `500ms` or
/// plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?} is not a duration (like 30s, 5m, 1h)")),
    };
    match number.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(n * scale)),
        _ => Err(format!(
            "{text:?} is not a positive duration (like 30s, 5m, 1h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_common_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 minutes").is_err());
    }
}
