//! AppRole: a role ID and a secret ID, from variables or files; a response-wrapped secret ID
//! is unwrapped first.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::sys::requests::UnwrapRequest;

use super::{read_material, AuthSettings, LoginEndpoint, LoginRequest, Method};
use crate::environment::Environment;
use crate::secret::{ExposeSecret, SecretString, SecretValue};
use crate::vault::{wipe_json, VaultClient};

/// Builds the AppRole login request.
pub async fn login_request(
    client: &VaultClient,
    settings: &AuthSettings,
    env: &Environment,
) -> Result<LoginRequest> {
    let mut strip = Vec::new();
    let role_id = match (&settings.role_id_file, env.vault_var("ROLE_ID")) {
        (Some(file), _) => read_material(file, Method::AppRole, "role ID")?,
        (None, Some((name, value))) => {
            strip.push(name);
            SecretString::from(value.to_string())
        }
        (None, None) => bail!(
            "approle login: no role ID; set VAULT_ROLE_ID or --role-id-file (or [auth] role_id_file)"
        ),
    };
    let (secret_id, from_wrapped_variable) = match (
        &settings.secret_id_file,
        env.vault_var("SECRET_ID"),
        env.vault_var("WRAPPED_SECRET_ID"),
    ) {
        (Some(file), _, _) => (read_material(file, Method::AppRole, "secret ID")?, false),
        (None, Some((name, value)), _) => {
            strip.push(name);
            (SecretString::from(value.to_string()), false)
        }
        (None, None, Some((name, value))) => {
            strip.push(name);
            (SecretString::from(value.to_string()), true)
        }
        (None, None, None) => bail!(
            "approle login: no secret ID; set VAULT_SECRET_ID or --secret-id-file (or [auth] secret_id_file)"
        ),
    };
    let secret_id = if settings.secret_id_wrapped
        || from_wrapped_variable
        || looks_like_a_wrapping_token(secret_id.expose_secret())
    {
        unwrap_secret_id(client, &secret_id).await?
    } else {
        secret_id
    };
    let mount = settings.mount_for(Method::AppRole);
    Ok(LoginRequest {
        method: Method::AppRole,
        description: format!("approle (auth/{mount})"),
        endpoint: LoginEndpoint::AppRole(LoginWithApproleRequest {
            mount: mount.clone(),
            role_id: role_id.expose_secret().to_string(),
            secret_id: secret_id.expose_secret().to_string(),
        }),
        mount,
        strip,
    })
}

/// Secret IDs are UUIDs; Vault and OpenBao tokens (wrapping tokens included) carry a
/// type prefix.
fn looks_like_a_wrapping_token(value: &str) -> bool {
    ["s.", "hvs.", "b.", "hvb."]
        .iter()
        .any(|prefix| value.starts_with(prefix))
}

/// Exchanges a response-wrapping token for the secret ID it wraps (a wrapping token works
/// once: a second unwrap fails, which shows that someone else saw it).
async fn unwrap_secret_id(client: &VaultClient, wrapping: &SecretString) -> Result<SecretString> {
    let unwrapper = client.with_token(
        SecretString::from(wrapping.expose_secret().to_string()),
        "the wrapping token",
    );
    // The wrapping token authenticates the unwrap, so the body names no token.
    let response = unwrapper
        .call(&UnwrapRequest { token: None })
        .await
        .context("approle login: unwrapping the secret ID failed")?;
    if !response.status.is_success() {
        bail!(
            "approle login: the wrapped secret ID could not be unwrapped: {} (a wrapping token works once and expires)",
            super::one_line(&response.errors())
        );
    }
    let mut answer: serde_json::Value = response.data()?;
    let secret_id = answer
        .get_mut("secret_id")
        .map(serde_json::Value::take)
        .and_then(|value| match value {
            serde_json::Value::String(text) => Some(SecretValue::new(text)),
            other => {
                let text = SecretValue::deserialize(&other).ok();
                wipe_json(other);
                text
            }
        });
    wipe_json(answer);
    match secret_id {
        Some(secret) => Ok(secret.0),
        None => bail!("approle login: the wrapping token does not wrap a secret ID"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_tokens_are_told_from_secret_ids() {
        assert!(looks_like_a_wrapping_token("s.JvhXabcdefghijklmnopqrst"));
        assert!(looks_like_a_wrapping_token("hvs.CAESIabc"));
        assert!(!looks_like_a_wrapping_token(
            "7f3e9a52-3c57-4f0e-9a9e-5a0d0b7a1c2e"
        ));
    }
}
