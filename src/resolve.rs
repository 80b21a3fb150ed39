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
    resolve_with(client, client, bindings).await
}

/// The number of secret reads `resolve` makes for these bindings (one per path and version).
pub fn reads_needed(bindings: &[Binding]) -> usize {
    bindings
        .iter()
        .map(|b| b.reference.address())
        .collect::<BTreeSet<_>>()
        .len()
}

/// Like [`resolve`], with mounts looked up by `lookup` and secrets read by `reader` (a
/// per-run token with exactly enough uses for the reads).
pub async fn resolve_with(
    lookup: &VaultClient,
    reader: &VaultClient,
    bindings: &[Binding],
) -> Result<Resolved, ResolveError> {
    let secrets = read_all(lookup, reader, bindings).await;
    let mut resolved = Resolved::default();
    let mut failures = Vec::new();
    for (binding, outcome) in bindings.iter().zip(outcomes(&secrets, bindings)) {
        match outcome {
            Ok((value, read)) => {
                resolved.values.push((binding.name.clone(), value));
                resolved.reads.insert(binding.reference.address(), read);
            }
            Err(problem) => failures.push(Unresolved {
                name: binding.name.clone(),
                reference: binding.reference.to_string(),
                problem,
            }),
        }
    }
    if failures.is_empty() {
        Ok(resolved)
    } else {
        Err(ResolveError(failures))
    }
}

/// What each binding got: its value and the read's metadata, or the problem.
pub type Outcome = Result<(SecretValue, ReadInfo), String>;

/// Resolves every binding and reports each one's outcome (for `keywrap check`).
pub async fn resolve_each(client: &VaultClient, bindings: &[Binding]) -> Vec<Outcome> {
    let secrets = read_all(client, client, bindings).await;
    outcomes(&secrets, bindings)
}

type Secrets = BTreeMap<SecretAddress, Result<SecretData, String>>;

/// Looks up every mount and reads every distinct secret once, concurrently.
async fn read_all(lookup: &VaultClient, reader: &VaultClient, bindings: &[Binding]) -> Secrets {
    let paths: BTreeSet<&str> = bindings.iter().map(|b| b.reference.path.as_str()).collect();
    let addresses: BTreeSet<SecretAddress> =
        bindings.iter().map(|b| b.reference.address()).collect();

    let mounts: BTreeMap<&str, Result<Mount, KvError>> = paths
        .iter()
        .copied()
        .zip(join_all(paths.iter().map(|path| kv::find_mount(lookup, path))).await)
        .collect();

    let reads = join_all(addresses.iter().map(|address| async {
        let outcome = match &mounts[address.path.as_str()] {
            Ok(mount) => kv::read(reader, mount, &address.path, address.version)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        (address.clone(), outcome)
    }))
    .await;
    reads.into_iter().collect()
}

fn outcomes(secrets: &Secrets, bindings: &[Binding]) -> Vec<Outcome> {
    bindings
        .iter()
        .map(|binding| {
            let address = binding.reference.address();
            let secret = secrets[&address].as_ref().map_err(Clone::clone)?;
            let field = &binding.reference.field;
            let value = secret
                .fields
                .get(field)
                .ok_or_else(|| missing_field(field, &address, secret))?;
            if value.expose().contains('\0') {
                return Err(format!(
                    "field \"{field}\" holds a NUL byte, which an environment variable cannot carry"
                ));
            }
            Ok((
                value.clone(),
                ReadInfo {
                    version: secret.version,
                    created_time: secret.created_time.clone(),
                },
            ))
        })
        .collect()
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
