//! Turning bindings into values: this is where `exec` reads Vault.
//!
//! Every distinct secret (path and version) is read once, however many fields it gives, and
//! all reads run concurrently. Reading a whole secret in one request also keeps fields of
//! one secret consistent with each other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures_util::future::join_all;

use crate::bindings::Binding;
use crate::reference::SecretAddress;
use crate::secret::SecretValue;
use crate::vault::kv::{self, KvError, Mount, SecretData};
use crate::vault::VaultClient;

/// The values for a set of bindings, and what was read.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Variable name → value, in binding order.
    pub values: Vec<(String, SecretValue)>,
    /// What each distinct secret read returned (KV v2 version and creation time).
    pub reads: BTreeMap<SecretAddress, ReadInfo>,
}

/// Metadata of one read; never a value.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    pub version: Option<u64>,
    pub created_time: Option<String>,
}

/// One binding that could not be resolved.
#[derive(Debug)]
pub struct Unresolved {
    pub name: String,
    pub reference: String,
    pub problem: String,
}

/// Every binding that failed, one line each.
#[derive(Debug)]
pub struct ResolveError(pub Vec<Unresolved>);

impl fmt::Display for ResolveError {
    /// One line per distinct problem: a bad token or an unreachable server is said once,
    /// naming every reference it stopped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut problems: Vec<(&str, Vec<String>)> = Vec::new();
        for failure in &self.0 {
            let who = format!("{} ({})", failure.name, failure.reference);
            match problems.iter_mut().find(|(p, _)| *p == failure.problem) {
                Some((_, names)) => names.push(who),
                None => problems.push((&failure.problem, vec![who])),
            }
        }
        for (i, (problem, names)) in problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\nkeywrap: error: ")?;
            }
            write!(f, "{}: {problem}", names.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ResolveError {}

/// Reads every referenced secret and picks out the fields.
pub async fn resolve(client: &VaultClient, bindings: &[Binding]) -> Result<Resolved, ResolveError> {
    let paths: BTreeSet<&str> = bindings.iter().map(|b| b.reference.path.as_str()).collect();
    let addresses: BTreeSet<SecretAddress> =
        bindings.iter().map(|b| b.reference.address()).collect();

    let mounts: BTreeMap<&str, Result<Mount, KvError>> = paths
        .iter()
        .copied()
        .zip(join_all(paths.iter().map(|path| kv::find_mount(client, path))).await)
        .collect();

    let reads = join_all(addresses.iter().map(|address| async {
        let outcome = match &mounts[address.path.as_str()] {
            Ok(mount) => kv::read(client, mount, &address.path, address.version)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        (address.clone(), outcome)
    }))
    .await;
    let secrets: BTreeMap<SecretAddress, Result<SecretData, String>> = reads.into_iter().collect();

    let mut resolved = Resolved::default();
    let mut failures = Vec::new();
    for binding in bindings {
        let address = binding.reference.address();
        let fail = |problem: String| Unresolved {
            name: binding.name.clone(),
            reference: binding.reference.to_string(),
            problem,
        };
        match &secrets[&address] {
            Err(problem) => failures.push(fail(problem.clone())),
            Ok(secret) => match secret.fields.get(&binding.reference.field) {
                None => failures.push(fail(missing_field(&binding.reference.field, &address, secret))),
                Some(value) if value.expose().contains('\0') => failures.push(fail(format!(
                    "field \"{}\" holds a NUL byte, which an environment variable cannot carry",
                    binding.reference.field
                ))),
                Some(value) => {
                    resolved.values.push((binding.name.clone(), value.clone()));
                    resolved.reads.insert(
                        address.clone(),
                        ReadInfo {
                            version: secret.version,
                            created_time: secret.created_time.clone(),
                        },
                    );
                }
            },
        }
    }
    if failures.is_empty() {
        Ok(resolved)
    } else {
        Err(ResolveError(failures))
    }
}

fn missing_field(field: &str, address: &SecretAddress, secret: &SecretData) -> String {
    let names: Vec<&str> = secret.fields.keys().map(String::as_str).collect();
    if names.is_empty() {
        format!("no field \"{field}\" in {address}: the secret has no fields")
    } else {
        format!(
            "no field \"{field}\" in {address}; its fields are: {}",
            names.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_problems_are_said_once() {
        let failure = |name: &str, problem: &str| Unresolved {
            name: name.into(),
            reference: format!("secret/{name}#k"),
            problem: problem.into(),
        };
        let error = ResolveError(vec![
            failure("A", "bad token"),
            failure("B", "no field"),
            failure("C", "bad token"),
        ]);
        assert_eq!(
            error.to_string(),
            "A (secret/A#k), C (secret/C#k): bad token\nkeywrap: error: B (secret/B#k): no field"
        );
    }
}
