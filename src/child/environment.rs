//! The child's environment: the parent's, minus every Vault credential, plus the secrets.

use std::ffi::OsString;
use std::process::Command;

use crate::auth::{is_credential_variable, RUN_VARIABLE};
use crate::environment::Environment;
use crate::secret::SecretValue;

/// What the child will get. Secret values stay in `SecretValue`s until they are handed to
/// the process builder.
pub struct ChildEnvironment {
    plain: Vec<(OsString, OsString)>,
    secrets: Vec<(String, SecretValue)>,
}

impl std::fmt::Debug for ChildEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildEnvironment")
            .field(
                "plain",
                &self.plain.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "secrets",
                &self.secrets.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ChildEnvironment {
    /// `parent` less credentials (and the extra variables named in `also_remove`), with
    /// `KEYWRAP_RUN` set and the secrets added; a secret wins over an inherited variable.
    pub fn build(
        parent: &Environment,
        run_id: &str,
        also_remove: &[String],
        secrets: Vec<(String, SecretValue)>,
    ) -> Self {
        // A set, not a scan per variable: an env file can layer thousands of settings over
        // the parent, next to thousands of secrets.
        let secret_names: std::collections::HashSet<&str> =
            secrets.iter().map(|(name, _)| name.as_str()).collect();
        let removed = |name: &OsString| {
            let name = name.to_string_lossy();
            is_credential_variable(&name)
                || also_remove.iter().any(|r| r == name.as_ref())
                || name == RUN_VARIABLE
                || secret_names.contains(name.as_ref())
        };
        let mut plain: Vec<(OsString, OsString)> = parent
            .iter()
            .filter(|(name, _)| !removed(name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        plain.push((RUN_VARIABLE.into(), run_id.into()));
        ChildEnvironment { plain, secrets }
    }

    /// Hands the variables to the process builder; the only place a value leaves its
    /// secret wrapper on the way to the child.
    pub fn apply(&self, command: &mut Command) {
        command.envs(self.plain.iter().map(|(k, v)| (k, v)));
        for (name, value) in &self.secrets {
            command.env(name, value.expose());
        }
    }

    /// Variable names, for tests and `-v`.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.plain
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .chain(self.secrets.iter().map(|(k, _)| k.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_and_secrets_added() {
        let parent = Environment::from_pairs([
            ("PATH", "/bin"),
            ("VAULT_TOKEN", "fake-token"),
            ("BAO_TOKEN", "fake-token"),
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            ("MY_ROLE", "r"),
            ("OPENAI_API_KEY", "stale"),
            ("KEYWRAP_RUN", "outer"),
        ]);
        let env = ChildEnvironment::build(
            &parent,
            "run-1",
            &["MY_ROLE".to_string()],
            vec![(
                "OPENAI_API_KEY".into(),
                SecretValue::new("fake-value".into()),
            )],
        );
        let mut names: Vec<String> = env.names().collect();
        names.sort();
        assert_eq!(
            names,
            ["KEYWRAP_RUN", "OPENAI_API_KEY", "PATH", "VAULT_ADDR"]
        );
        assert!(!format!("{env:?}").contains("fake-value"));
    }
}
