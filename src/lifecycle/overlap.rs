//! What `exec` adds once the current keys are resolved: the previous key of each reference
//! configured with `previous`, while its overlap window lasts, and one warning (or, with
//! `--strict-age`, an error) for keys older than their `max_age`.

use std::time::Duration;

use anyhow::{bail, Result};

use super::policy::{self, AgeState, KeyOptions};
use crate::bindings::Binding;
use crate::config::LoadedConfig;
use crate::duration;
use crate::resolve::Resolved;
use crate::timestamp::Timestamp;
use crate::vault::kv::{self, KvError};
use crate::vault::VaultClient;

/// Adds previous keys to `resolved` and applies the age policy.
pub async fn apply(
    client: &VaultClient,
    config: Option<&LoadedConfig>,
    bindings: &[Binding],
    resolved: &mut Resolved,
    strict_age: bool,
) -> Result<()> {
    let now = Timestamp::now();
    let mut overdue = Vec::new();
    for binding in bindings {
        let options = policy::options_for(config, binding)?;
        // A pinned version is chosen on purpose; its age and neighbours are not this run's concern.
        if binding.reference.version.is_some() {
            continue;
        }
        let Some(read) = resolved.reads.get(&binding.reference.address()) else {
            continue;
        };
        let Some(created) = read.created_time.as_deref().and_then(Timestamp::parse) else {
            continue;
        };
        let age = now.since(created);
        if policy::age_state(age, options.max_age) == AgeState::Overdue {
            overdue.push(format!(
                "{} ({}) is {} old, max_age {}",
                binding.name,
                binding.reference,
                duration::format(age),
                duration::format(options.max_age)
            ));
        }
        if let (
            Some(version),
            KeyOptions {
                previous: Some((name, window)),
                ..
            },
        ) = (read.version, &options)
        {
            inject_previous(
                client, binding, resolved, version, name, *window, age, bindings,
            )
            .await?;
        }
    }
    if !overdue.is_empty() {
        let message = format!(
            "overdue for rotation: {}; rotate with `keywrap rotate REF`",
            overdue.join("; ")
        );
        if strict_age {
            bail!("{message} (--strict-age)");
        }
        crate::log::warn(message);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn inject_previous(
    client: &VaultClient,
    binding: &Binding,
    resolved: &mut Resolved,
    current: u64,
    name: &str,
    window: Duration,
    age: Duration,
    bindings: &[Binding],
) -> Result<()> {
    if bindings.iter().any(|b| b.name == name) {
        bail!(
            "{}: previous = \"{name}\" is also a variable of its own; choose another name",
            binding.name
        );
    }
    if age >= window || current < 2 {
        crate::log::verbose(format_args!(
            "{name}: not set (v{current} is {} old, overlap {})",
            duration::format(age),
            duration::format(window)
        ));
        return Ok(());
    }
    let previous = current - 1;
    let path = &binding.reference.path;
    let mount = kv::find_mount(client, path).await?;
    match kv::read(client, &mount, path, Some(previous)).await {
        Ok(secret) => match secret.fields.get(&binding.reference.field) {
            Some(value) => {
                crate::log::verbose(format_args!("{name}: {path} version {previous} (overlap)"));
                resolved.values.push((name.to_string(), value.clone()));
            }
            None => crate::log::verbose(format_args!(
                "{name}: not set (version {previous} of {path} has no field \"{}\")",
                binding.reference.field
            )),
        },
        Err(KvError::VersionGone { .. } | KvError::NoSuchVersion { .. }) => {
            crate::log::verbose(format_args!(
                "{name}: not set (version {previous} of {path} was removed: the overlap was ended)"
            ));
        }
        // The current key is there; a missing fallback must not stop the program.
        Err(err) => crate::log::warn(format_args!("{name} not set: {err}")),
    }
    Ok(())
}
