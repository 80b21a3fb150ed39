//! A Vault client ready for one run: settings resolved, identity headers set, token found.

use anyhow::Result;

use crate::auth;
use crate::config::LoadedConfig;
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::settings::{Connection, ConnectionFlags};
use crate::vault::VaultClient;

/// Everything a subcommand needs to talk to Vault.
pub struct Session {
    pub client: VaultClient,
    pub identity: RunIdentity,
    pub connection: Connection,
}

impl Session {
    /// Resolves settings and credentials; says with `-v` where each came from.
    pub fn open(
        flags: &ConnectionFlags,
        env: &Environment,
        config: Option<&LoadedConfig>,
        identity: RunIdentity,
    ) -> Result<Self> {
        let connection = Connection::resolve(flags, env, config)?;
        crate::log::verbose(format_args!(
            "Vault {} (from {})",
            connection.address.value.as_str().trim_end_matches('/'),
            connection.address.source
        ));
        if let Some(namespace) = &connection.namespace {
            crate::log::verbose(format_args!(
                "namespace {} (from {})",
                namespace.value, namespace.source
            ));
        }
        let mut client = VaultClient::new(&connection, &identity)?;
        let Some(supplied) = auth::find_token(env)? else {
            return Err(auth::no_credentials_error(env));
        };
        crate::log::verbose(format_args!("token from {}", supplied.origin));
        client.set_token(supplied.token);
        Ok(Session {
            client,
            identity,
            connection,
        })
    }
}
