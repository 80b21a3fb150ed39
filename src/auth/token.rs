//! Tokens the user supplies (`VAULT_TOKEN`, `BAO_TOKEN`, `~/.vault-token`); which variables
//! are credentials the child must never see is [`crate::environment::is_credential_variable`].

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::environment::Environment;
use crate::secret::SecretString;

/// Set in the child's environment to the run's correlation ID.
pub const RUN_VARIABLE: &str = "KEYWRAP_RUN";

pub use crate::environment::{is_credential_variable, CREDENTIAL_VARIABLES};

/// A token the user supplied (never revoked by keywrap).
pub struct SuppliedToken {
    pub token: SecretString,
    /// Where it came from, e.g. `VAULT_TOKEN` or `/home/me/.vault-token`.
    pub origin: String,
}

impl std::fmt::Debug for SuppliedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SuppliedToken(<redacted> from {})", self.origin)
    }
}

/// The token file `vault login` and `bao login` leave behind.
pub fn token_file(env: &Environment) -> Option<PathBuf> {
    env.get("HOME")
        .map(|home| PathBuf::from(home).join(".vault-token"))
}

/// `VAULT_TOKEN`, then `BAO_TOKEN`, then `~/.vault-token`.
pub fn find_token(env: &Environment) -> Result<Option<SuppliedToken>> {
    if let Some((name, value)) = env.vault_var("TOKEN") {
        return Ok(Some(SuppliedToken {
            token: SecretString::from(value.trim().to_string()),
            origin: name,
        }));
    }
    let Some(path) = token_file(env) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim();
            if token.is_empty() {
                bail!(
                    "the token file {} is empty; run `vault login` again or set VAULT_TOKEN",
                    path.display()
                );
            }
            Ok(Some(SuppliedToken {
                token: SecretString::from(token.to_string()),
                origin: path.display().to_string(),
            }))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => {
            Err(err).with_context(|| format!("cannot read the token file {}", path.display()))
        }
    }
}

/// Credentials from a supplied token; an error naming where keywrap looked when there is none.
pub fn credentials(env: &Environment) -> Result<super::Credentials> {
    let Some(supplied) = find_token(env)? else {
        if env.get(RUN_VARIABLE).is_some() {
            return Err(no_credentials_error(env));
        }
        let file = token_file(env).map_or_else(
            || "~/.vault-token (HOME is not set)".to_string(),
            |f| f.display().to_string(),
        );
        bail!(
            "token login: no token: VAULT_TOKEN and BAO_TOKEN are not set and the token file {file} does not exist; set VAULT_TOKEN or run `vault login` / `bao login`"
        );
    };
    Ok(super::Credentials {
        token: supplied.token,
        obtained: None,
        description: supplied.origin,
        strip: Vec::new(),
    })
}

/// The error for "no credentials", which explains the nested-run case exactly.
pub fn no_credentials_error(env: &Environment) -> anyhow::Error {
    match env.get(RUN_VARIABLE) {
        Some(run) => anyhow::anyhow!(
            "no Vault credentials: this is a nested keywrap, inside another `keywrap exec` (KEYWRAP_RUN={run}), \
             which removes Vault credentials from its child by design; resolve all references \
             in the outer keywrap exec (add them to its keywrap.toml or --secret flags)"
        ),
        None => anyhow::anyhow!(
            "no Vault credentials: set VAULT_TOKEN (or BAO_TOKEN), run `vault login` / `bao login` \
             to create ~/.vault-token, or configure a login method ([auth] in keywrap.toml; \
             see docs/auth.md)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::ExposeSecret;

    #[test]
    fn environment_token_comes_first() {
        let env = Environment::from_pairs([("BAO_TOKEN", "b"), ("VAULT_TOKEN", "v")]);
        let token = find_token(&env).unwrap().unwrap();
        assert_eq!(token.token.expose_secret(), "v");
        assert_eq!(token.origin, "VAULT_TOKEN");
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".vault-token"), "s.fake-token\n").unwrap();
        let env = Environment::from_pairs([("HOME", home.path())]);
        let token = find_token(&env).unwrap().unwrap();
        assert_eq!(token.token.expose_secret(), "s.fake-token");
        assert!(!format!("{token:?}").contains("fake"));
    }

    #[test]
    fn every_vault_credential_is_recognised() {
        for name in [
            "VAULT_TOKEN",
            "BAO_TOKEN",
            "VAULT_ROLE_ID",
            "BAO_SECRET_ID",
            "VAULT_WRAPPED_SECRET_ID",
            "BAO_WRAPPED_SECRET_ID",
            "VAULT_ID_TOKEN",
            "BAO_JWT",
            "VAULT_CLIENT_KEY",
            "KEYWRAP_JWT_FILE",
        ] {
            assert!(is_credential_variable(name), "{name}");
        }
        for name in [
            "VAULT_ADDR",
            "BAO_NAMESPACE",
            "VAULT_CACERT",
            "PATH",
            "MY_TOKEN",
        ] {
            assert!(!is_credential_variable(name), "{name}");
        }
    }

    #[test]
    fn nested_runs_are_explained() {
        let env = Environment::from_pairs([(RUN_VARIABLE, "abc")]);
        assert!(no_credentials_error(&env)
            .to_string()
            .contains("inside another"));
        assert!(no_credentials_error(&Environment::default())
            .to_string()
            .contains("no Vault credentials"));
    }
}
