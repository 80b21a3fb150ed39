//! The Vault side of an import: each target secret gets a new version holding its existing
//! fields plus the imported ones (check-and-set), and the written version is read back and
//! compared before anything local changes.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};

use super::Moved;
use crate::secret::SecretValue;
use crate::vault::kv;
use crate::vault::versions::{self, VersionError};
use crate::vault::VaultClient;

/// The moved variables grouped by the secret they go to.
pub fn targets(moved: &[Moved]) -> BTreeMap<&str, Vec<&Moved>> {
    let mut targets: BTreeMap<&str, Vec<&Moved>> = BTreeMap::new();
    for m in moved {
        targets.entry(m.path.as_str()).or_default().push(m);
    }
    targets
}

/// Writes and verifies every target in order; the error says which were already written.
pub async fn write_all(client: &VaultClient, moved: &[Moved], overwrite: bool) -> Result<()> {
    let mut done: Vec<String> = Vec::new();
    for (path, fields) in targets(moved) {
        if let Err(err) = write_one(client, path, &fields, overwrite).await {
            let already = if done.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} already written and verified (rerunning the import is safe)",
                    done.join(", ")
                )
            };
            return Err(err.context(format!(
                "import into {path} failed{already}; no local file was changed"
            )));
        }
        crate::log::verbose(format_args!("wrote and verified {path}"));
        done.push(path.to_string());
    }
    Ok(())
}

async fn write_one(
    client: &VaultClient,
    path: &str,
    imported: &[&Moved],
    overwrite: bool,
) -> Result<()> {
    let mount = kv::find_mount(client, path).await?;
    let (expected, mut fields) = match versions::metadata(client, &mount, path).await {
        Ok(metadata) if metadata.current().is_some_and(|v| v.readable()) => {
            let current = metadata.current_version;
            let fields = kv::read(client, &mount, path, Some(current)).await?.fields;
            (current, fields)
        }
        Ok(metadata) => (metadata.current_version, BTreeMap::new()),
        Err(VersionError::NotFound { .. }) => (0, BTreeMap::new()),
        Err(err) => return Err(err.into()),
    };
    let conflicts: Vec<&str> = imported
        .iter()
        .filter(|m| {
            fields
                .get(&m.field)
                .is_some_and(|old| old.expose() != m.value.expose())
        })
        .map(|m| m.field.as_str())
        .collect();
    if !conflicts.is_empty() && !overwrite {
        bail!(
            "{path} already has field(s) {} with a different value; nothing was written (pass --overwrite to replace them)",
            conflicts.join(", ")
        );
    }
    let unchanged = expected > 0
        && imported.iter().all(|m| {
            fields
                .get(&m.field)
                .is_some_and(|old| old.expose() == m.value.expose())
        });
    let version = if unchanged {
        expected
    } else {
        for m in imported {
            fields.insert(m.field.clone(), m.value.clone());
        }
        let written = versions::write_cas(client, &mount, path, &fields, expected).await;
        drop(fields);
        written.with_context(|| format!("cannot write {path}"))?
    };
    let back = kv::read(client, &mount, path, Some(version))
        .await
        .with_context(|| {
            format!("version {version} of {path} was written but cannot be read back to verify it")
        })?
        .fields;
    let differs: Vec<&str> = imported
        .iter()
        .filter(|m| back.get(&m.field).map(SecretValue::expose) != Some(m.value.expose()))
        .map(|m| m.field.as_str())
        .collect();
    if !differs.is_empty() {
        return Err(anyhow!(
            "version {version} of {path} read back with different field(s) {}",
            differs.join(", ")
        ));
    }
    Ok(())
}
