//! Limits shared by every replica of the proxy: `[proxy] store = "redis://HOST:PORT/DB"`.
//!
//! - [`settings`]: the store's URL, its password reference and what to do when it is down.
//! - [`redis`]: the Redis (or Valkey) admission store: one Lua script per admission and one
//!   per settle, so the checks and the counting are one atomic step across replicas.
//!
//! The semantics are those of the in-process admission store: a request is admitted when
//! requests per minute, tokens per minute (the window plus outstanding reservations plus
//! its estimate), the budget (spent plus reserved plus its estimate) and the concurrent
//! requests all allow it; settling releases the reservation and charges the actual tokens.

pub mod redis;
pub mod settings;

use super::keys::KeyPolicy;

/// What one admission is checked against; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub rpm: u64,
    pub tpm: u64,
    pub budget: u64,
    /// Requests of the key in flight at once.
    pub concurrency: u64,
}

impl Quota {
    pub fn of(policy: &KeyPolicy, concurrency: u64) -> Quota {
        Quota {
            rpm: policy.rpm,
            tpm: policy.tpm,
            budget: policy.budget,
            concurrency,
        }
    }

    pub fn unlimited(&self) -> bool {
        *self == Quota::default()
    }
}

/// The same refusal as the in-process store's: one type whichever store admits.
pub use super::admission::{Limit, Refusal};

/// Connects to the store named by `[proxy] store`, reading its password from Vault first.
/// Called at start-up: a store that cannot be reached then is an error, whatever
/// `store_failure` says, so a typo in the URL is not mistaken for an outage.
pub async fn connect(
    vault: &crate::vault::VaultClient,
    settings: &settings::StoreSettings,
    namespace: &str,
) -> anyhow::Result<redis::RedisStore> {
    use anyhow::Context;
    let password = match &settings.password {
        Some(reference) => {
            let binding = crate::bindings::Binding {
                name: "store_password".into(),
                reference: reference.clone(),
                origin: crate::bindings::Origin::Flag,
            };
            let mut resolved = crate::resolve::resolve(vault, std::slice::from_ref(&binding))
                .await
                .context("reading [proxy] store_password")?;
            Some(resolved.values.remove(0).1 .0)
        }
        None => None,
    };
    let store = redis::RedisStore::connect(settings, password.as_ref(), namespace).await?;
    Ok(store)
}
