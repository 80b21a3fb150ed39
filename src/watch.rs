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

use crate::bindings::Binding;
use crate::child::signals::Event;
use crate::config::LoadedConfig;
use crate::lifecycle::overlap;
use crate::reference::SecretAddress;
use crate::resolve::ReadInfo;
use crate::secret::SecretValue;
use crate::vault::kv::{self, KvVersion, Mount};
use crate::vault::{versions, VaultClient};

/// What the poller needs: a client with the login token, the bindings to read again, the
/// versions read at start, and the config (for the overlap's previous keys).
pub struct Watcher {
    pub client: VaultClient,
    pub bindings: Vec<Binding>,
    pub versions: BTreeMap<SecretAddress, ReadInfo>,
    pub config: Option<LoadedConfig>,
}

impl Watcher {
    /// Starts the poller thread; new values go to `events`.
    pub fn spawn(self, interval: Duration, events: Sender<Event>) -> Result<()> {
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || self.poll(interval, &events))
            .context("cannot start the --watch poller")?;
        Ok(())
    }

    fn poll(self, interval: Duration, events: &Sender<Event>) {
        let Ok(runtime) = crate::runtime::runtime() else {
            crate::log::warn("--watch: cannot start the poller; secrets are not watched");
            return;
        };
        let mut known: BTreeMap<String, (Mount, u64)> = BTreeMap::new();
        for (address, read) in &self.versions {
            if address.version.is_some() {
                continue;
            }
            let client = self.client.renewed_deadline();
            match (
                runtime.block_on(kv::find_mount(&client, &address.path)),
                read.version,
            ) {
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
            // Each round gets the whole --timeout budget: this client outlives one request.
            let client = self.client.renewed_deadline();
            let mut changed = false;
            for (path, (mount, version)) in known.iter_mut() {
                match runtime.block_on(versions::metadata(&client, mount, path)) {
                    Ok(metadata) if metadata.current_version != *version => {
                        crate::log::verbose(format_args!(
                            "--watch: {path} is now at version {} (was {version})",
                            metadata.current_version
                        ));
                        *version = metadata.current_version;
                        changed = true;
                    }
                    Ok(_) => {}
                    Err(err) => crate::log::warn(format_args!("--watch: {err}")),
                }
            }
            if !changed {
                continue;
            }
            match runtime.block_on(self.read_again(&client)) {
                Ok(values) => {
                    if events.send(Event::NewValues(values)).is_err() {
                        return;
                    }
                }
                Err(err) => crate::log::warn(format_args!(
                    "--watch: a secret changed but cannot be read, so the command keeps running with the old values: {err:#}"
                )),
            }
        }
    }

    /// The values as at start: every binding, plus the previous keys of an overlap (an age
    /// past max_age only warns here; the command is already running).
    async fn read_again(&self, client: &VaultClient) -> Result<Vec<(String, SecretValue)>> {
        let mut resolved = crate::resolve::resolve(client, &self.bindings).await?;
        overlap::apply(
            client,
            self.config.as_ref(),
            &self.bindings,
            &mut resolved,
            false,
        )
        .await?;
        Ok(resolved.values)
    }
}
