//! The process environment, read once at start-up so that every decision sees the same
//! values and tests can pass their own.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// A snapshot of environment variables.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<OsString, OsString>,
}

impl std::fmt::Debug for Environment {
    /// Only names: values may be credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.vars.keys()).finish()
    }
}

impl Environment {
    /// The current process's environment.
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars_os().collect(),
        }
    }

    pub fn from_pairs<K: Into<OsString>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value if it is set, non-empty and valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(OsStr::new(name))
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
    }

    /// The first of `VAULT_<suffix>` and `BAO_<suffix>` that is set, with its name.
    pub fn vault_var(&self, suffix: &str) -> Option<(String, &str)> {
        ["VAULT_", "BAO_"].iter().find_map(|prefix| {
            let name = format!("{prefix}{suffix}");
            self.get(&name).map(|value| (name, value))
        })
    }

    /// True when `VAULT_<suffix>` and `BAO_<suffix>` are both set and differ.
    pub fn vault_var_conflict(&self, suffix: &str) -> bool {
        match (
            self.get(&format!("VAULT_{suffix}")),
            self.get(&format!("BAO_{suffix}")),
        ) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        }
    }

    /// Sets a variable (env-file settings layered over the inherited environment).
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars.insert(name.into(), value.into());
    }

    pub fn iter(&self) -> impl Iterator<Item = (&OsString, &OsString)> {
        self.vars.iter()
    }
}

/// Parses a boolean the way the Vault CLI does (Go's `strconv.ParseBool`): an unset or empty
/// variable is false, unlike some client libraries that treat "set" as true.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// keywrap's own variables naming login material: removed from the child's environment
/// whether or not keywrap used them.
pub const CREDENTIAL_VARIABLES: &[&str] = &[
    "KEYWRAP_JWT_FILE",
    "KEYWRAP_ROLE_ID_FILE",
    "KEYWRAP_SECRET_ID_FILE",
];

/// What marks a `VAULT_*`/`BAO_*` variable as a credential or login material (`VAULT_TOKEN`,
/// `VAULT_SECRET_ID`, `VAULT_WRAPPED_SECRET_ID`, `VAULT_ID_TOKEN`, `BAO_JWT`,
/// `VAULT_CLIENT_KEY`, ...), as opposed to a connection setting such as `VAULT_ADDR`.
const CREDENTIAL_MARKERS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "ROLE_ID",
    "JWT",
    "PASSWORD",
    "CLIENT_KEY",
];

/// True for a variable the child must never see: every `VAULT_*`/`BAO_*` credential,
/// whether or not keywrap used it, so the child gets its API key and not the power to read
/// the rest of Vault.
pub fn is_credential_variable(name: &str) -> bool {
    if CREDENTIAL_VARIABLES.contains(&name) {
        return true;
    }
    let Some(rest) = name
        .strip_prefix("VAULT_")
        .or_else(|| name.strip_prefix("BAO_"))
    else {
        return false;
    };
    CREDENTIAL_MARKERS
        .iter()
        .any(|marker| rest.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_names_come_before_bao_names() {
        let env = Environment::from_pairs([("BAO_ADDR", "http://b"), ("VAULT_ADDR", "http://v")]);
        assert_eq!(
            env.vault_var("ADDR"),
            Some(("VAULT_ADDR".into(), "http://v"))
        );
        assert!(env.vault_var_conflict("ADDR"));
        let env = Environment::from_pairs([("BAO_ADDR", "http://b"), ("VAULT_ADDR", "")]);
        assert_eq!(env.vault_var("ADDR"), Some(("BAO_ADDR".into(), "http://b")));
    }

    #[test]
    fn booleans_parse_like_go() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool(""), None);
        assert_eq!(parse_bool("yes"), None);
    }
}
