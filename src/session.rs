//! A Vault client ready for one run: settings resolved, identity headers set, logged in.

use anyhow::Result;

use crate::auth::{self, AuthFlags, AuthSettings, Credentials, LoginLease};
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
    /// Set when keywrap logged in itself: that token is revoked at the end of the run.
    pub obtained: Option<LoginLease>,
    /// Variables holding the login material used, kept from the child.
    pub strip: Vec<String>,
}

/// Where a session's settings come from.
pub struct SessionInputs<'a> {
    pub connection: ConnectionFlags,
    pub auth: AuthFlags,
    pub env: &'a Environment,
    pub config: Option<&'a LoadedConfig>,
}

impl Session {
    /// Resolves settings and credentials (logging in when configured or when login material
    /// is found); says with `-v` where each came from, never a value.
    pub async fn open(inputs: SessionInputs<'_>, identity: RunIdentity) -> Result<Self> {
        let connection = Connection::resolve(&inputs.connection, inputs.env, inputs.config)?;
        let nodes: Vec<&str> = connection
            .address
            .value
            .iter()
            .map(|url| url.as_str().trim_end_matches('/'))
            .collect();
        crate::log::verbose(format_args!(
            "Vault {} (from {})",
            nodes.join(", "),
            connection.address.source
        ));
        warn_plain_http(&connection);
        if let Some(namespace) = &connection.namespace {
            crate::log::verbose(format_args!(
                "namespace {} (from {})",
                namespace.value, namespace.source
            ));
        }
        let auth_settings = AuthSettings::resolve(&inputs.auth, inputs.env, inputs.config)?;
        let mut client = VaultClient::new(&connection, &identity)?;
        let Credentials {
            token,
            obtained,
            description,
            mut strip,
        } = auth::authenticate(&client, &auth_settings, inputs.env).await?;
        // A JWT variable named by keywrap's settings is login material even when another
        // method was used.
        strip.extend(
            auth_settings
                .jwt_env
                .as_ref()
                .map(|name| name.unchecked().clone()),
        );
        crate::log::verbose(format_args!("token from {description}"));
        client.set_token(token, &description);
        Ok(Session {
            client,
            identity,
            connection,
            obtained,
            strip,
        })
    }

    /// Revokes the token keywrap logged in for, if any (for runs that end before a child).
    pub async fn close(&self) {
        auth::lifecycle::TokenKeeper::new(&self.client, self.obtained.clone(), None)
            .revoke()
            .await;
    }
}

/// Says once per run when the token is about to cross the network in clear text: the
/// warning names the nodes and where the address came from, never the token.
fn warn_plain_http(connection: &Connection) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let nodes = connection.plain_http_remote_nodes();
    if nodes.is_empty() {
        return;
    }
    WARNED.call_once(|| {
        crate::log::warn(format_args!(
            "the Vault token goes over plain http:// to {} (from {}): anyone on the network path can read it; use https://",
            nodes.join(", "),
            connection.address.source
        ));
    });
}
