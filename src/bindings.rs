//! Which variable gets which reference, and from where: `--secret` flags override
//! keywrap.toml `[env]` by name.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::config::LoadedConfig;
use crate::dotenv::{Entry, EnvValue};
use crate::reference::{validate_env_name, Reference};

/// Where a binding was written. The path is shared by every binding of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    ConfigFile { path: Arc<Path>, line: usize },
    EnvFile { path: Arc<Path>, line: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("--secret flag"),
            Origin::ConfigFile { path, line } | Origin::EnvFile { path, line } => {
                write!(f, "{}:{line}", path.display())
            }
        }
    }
}

/// One environment variable to fill from one reference.
#[derive(Debug, Clone)]
pub struct Binding {
    pub name: String,
    pub reference: Reference,
    pub origin: Origin,
}

/// A `--secret NAME=REF` flag, parsed and checked.
#[derive(Debug, Clone)]
pub struct SecretFlag {
    pub name: String,
    pub reference: Reference,
}

impl std::str::FromStr for SecretFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((name, reference)) = text.split_once('=') else {
            return Err(format!(
                "expected NAME=REF, e.g. OPENAI_API_KEY=secret/openai#api_key (got {} without '=', not shown)",
                crate::redact::length(text)
            ));
        };
        validate_env_name(name)?;
        let reference = reference.parse::<Reference>().map_err(|e| e.to_string())?;
        Ok(SecretFlag {
            name: name.to_string(),
            reference,
        })
    }
}

/// Bindings from the config file, then flags (which win by name), sorted by name. Linear in
/// the number of entries (the file's table is already sorted by name).
pub fn collect(config: Option<&LoadedConfig>, flags: &[SecretFlag]) -> Result<Vec<Binding>> {
    let mut bindings: Vec<Binding> = Vec::new();
    if let Some(config) = config {
        let path: Arc<Path> = Arc::from(config.path.as_path());
        bindings.reserve(config.file.env.len());
        for (name, entry) in &config.file.env {
            let (line, column) = config.position(name.span().start);
            if let Err(problem) = validate_env_name(name.get_ref()) {
                bail!("{}:{line}:{column}: {problem}", config.path.display());
            }
            let text = entry.get_ref().reference();
            let reference = text.parse::<Reference>().map_err(|err| {
                let (line, column) = config.position(entry.span().start);
                // The entry's span starts at its opening quote (or brace).
                anyhow::anyhow!(
                    "{}:{line}:{}: {err}",
                    config.path.display(),
                    column + err.column
                )
            })?;
            bindings.push(Binding {
                name: name.get_ref().clone(),
                reference,
                origin: Origin::ConfigFile {
                    path: Arc::clone(&path),
                    line,
                },
            });
        }
    }
    for flag in flags {
        let binding = Binding {
            name: flag.name.clone(),
            reference: flag.reference.clone(),
            origin: Origin::Flag,
        };
        match bindings.binary_search_by(|b| b.name.as_str().cmp(&flag.name)) {
            Ok(at) => bindings[at] = binding,
            Err(at) => bindings.insert(at, binding),
        }
    }
    Ok(bindings)
}

/// Layers env files over `bindings` (from [`collect`]): precedence is `--secret` > env
/// files (later wins) > keywrap.toml `[env]`. Returns the bindings and the plain settings
/// the child gets; a plain value in an env file replaces a keywrap.toml reference of the
/// same name.
pub fn apply_env_files(
    bindings: Vec<Binding>,
    files: &[(PathBuf, Vec<Entry>)],
    flags: &[SecretFlag],
) -> (Vec<Binding>, Vec<(String, String)>) {
    if files.is_empty() {
        return (bindings, Vec::new());
    }
    let mut bound: BTreeMap<String, Binding> =
        bindings.into_iter().map(|b| (b.name.clone(), b)).collect();
    let mut plain: BTreeMap<String, String> = BTreeMap::new();
    let flagged = |name: &str| flags.iter().any(|f| f.name == name);
    for (path, entries) in files {
        for entry in entries.iter().filter(|e| !flagged(&e.name)) {
            match &entry.value {
                EnvValue::Reference(reference) => {
                    plain.remove(&entry.name);
                    bound.insert(
                        entry.name.clone(),
                        Binding {
                            name: entry.name.clone(),
                            reference: reference.clone(),
                            origin: Origin::EnvFile {
                                path: Arc::from(path.as_path()),
                                line: entry.line,
                            },
                        },
                    );
                }
                EnvValue::Plain(value) => {
                    bound.remove(&entry.name);
                    plain.insert(entry.name.clone(), value.clone());
                }
            }
        }
    }
    (bound.into_values().collect(), plain.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> LoadedConfig {
        LoadedConfig::parse(Path::new("keywrap.toml"), text.into()).unwrap()
    }

    #[test]
    fn flags_override_the_file_by_name() {
        let file = config("[env]\nA = \"secret/a#x\"\nB = \"secret/b#x\"\n");
        let flags = vec![
            "B=secret/flag#y".parse().unwrap(),
            "C=kv/c#z".parse().unwrap(),
        ];
        let bindings = collect(Some(&file), &flags).unwrap();
        let summary: Vec<_> = bindings
            .iter()
            .map(|b| {
                (
                    b.name.as_str(),
                    b.reference.to_string(),
                    b.origin.to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("A", "secret/a#x".into(), "keywrap.toml:2".into()),
                ("B", "secret/flag#y".into(), "--secret flag".into()),
                ("C", "kv/c#z".into(), "--secret flag".into()),
            ]
        );
    }

    #[test]
    fn bad_entries_point_at_line_and_column() {
        let err = collect(Some(&config("[env]\nA = \"secret/a\"\n")), &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("keywrap.toml:2:14: invalid reference"),
            "{err}"
        );
        let err = collect(Some(&config("[env]\n\"1A\" = \"secret/a#b\"\n")), &[]).unwrap_err();
        assert!(err.to_string().starts_with("keywrap.toml:2:1:"), "{err}");
    }

    #[test]
    fn env_files_sit_between_flags_and_the_config() {
        let file = config("[env]\nA = \"secret/a#x\"\nB = \"secret/b#x\"\nC = \"secret/c#x\"\n");
        let flags: Vec<SecretFlag> = vec!["D=secret/flag#y".parse().unwrap()];
        let bindings = collect(Some(&file), &flags).unwrap();
        let entry = |name: &str, value: EnvValue| Entry {
            name: name.into(),
            value,
            line: 1,
            end_line: 1,
        };
        let reference = |text: &str| EnvValue::Reference(text.parse().unwrap());
        let files = vec![
            (
                PathBuf::from("one.env"),
                vec![
                    entry("A", EnvValue::Plain("plain-a".into())),
                    entry("B", reference("vault://secret/env1#b")),
                    entry("D", EnvValue::Plain("ignored".into())),
                    entry("E", EnvValue::Plain("first".into())),
                ],
            ),
            (
                PathBuf::from("two.env"),
                vec![
                    entry("B", reference("vault://secret/env2#b")),
                    entry("E", EnvValue::Plain("second".into())),
                ],
            ),
        ];
        let (bound, plain) = apply_env_files(bindings, &files, &flags);
        let summary: Vec<_> = bound
            .iter()
            .map(|b| {
                (
                    b.name.as_str(),
                    b.reference.to_string(),
                    b.origin.to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("B", "secret/env2#b".into(), "two.env:1".into()),
                ("C", "secret/c#x".into(), "keywrap.toml:4".into()),
                ("D", "secret/flag#y".into(), "--secret flag".into()),
            ]
        );
        assert_eq!(
            plain,
            [
                ("A".into(), "plain-a".into()),
                ("E".into(), "second".into())
            ]
        );
    }

    #[test]
    fn flags_are_checked() {
        assert!("NOEQUALS".parse::<SecretFlag>().is_err());
        assert!("1BAD=secret/a#b"
            .parse::<SecretFlag>()
            .unwrap_err()
            .contains("invalid variable name"));
        assert!("A=secret/a"
            .parse::<SecretFlag>()
            .unwrap_err()
            .contains("missing #FIELD"));
    }
}
