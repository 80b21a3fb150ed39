//! `keywrap import`: move the secrets of a dotenv file into Vault and leave references.
//!
//! The order is what makes it safe: plan everything (and refuse early) without touching
//! anything; write to Vault with check-and-set and read the written versions back; only then
//! rewrite local files, each through a temporary file and a rename, restoring the ones
//! already rewritten if a later one fails. See docs/import.md.

pub mod classify;
pub mod files;
pub mod git;
pub mod vault;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::dotenv::{self, EnvValue};
use crate::scan::matcher::Matcher;
use crate::secret::SecretValue;
use classify::Reason;

/// Where the moved secrets go in Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One secret at PATH, one field per variable.
    Single,
    /// One secret per variable at PATH/NAME, field `value`.
    Split,
}

/// How the local files refer to the moved secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `NAME = "REF"` in keywrap.toml; the env file's lines become comments.
    Config,
    /// `NAME=vault://REF` lines in the env file itself.
    EnvRefs,
}

/// One variable that moves to Vault.
#[derive(Debug)]
pub struct Moved {
    pub name: String,
    pub line: usize,
    pub end_line: usize,
    pub value: SecretValue,
    pub reason: Reason,
    /// Secret path and field in Vault.
    pub path: String,
    pub field: String,
}

impl Moved {
    /// The reference as keywrap.toml writes it: `PATH#FIELD`.
    pub fn reference(&self) -> String {
        format!("{}#{}", self.path, self.field)
    }
}

/// A variable that stays as it is, and why.
#[derive(Debug)]
pub struct Kept {
    pub name: String,
    pub line: usize,
    pub why: &'static str,
}

/// The entries of one env file, sorted into what moves and what stays.
#[derive(Debug)]
pub struct Sorted {
    pub moved: Vec<Moved>,
    pub kept: Vec<Kept>,
}

/// Parses the env file (no expansion from the inherited environment) and classifies it.
pub fn sort(
    path: &Path,
    text: &str,
    matcher: &Matcher,
    to: &str,
    layout: Layout,
) -> Result<Sorted> {
    let to = to.trim_end_matches('/');
    let entries = dotenv::parse_quietly(path, text, &mut BTreeMap::new(), &|_| None)?;
    let mut moved: Vec<Moved> = Vec::new();
    let mut kept = Vec::new();
    let mut first_lines: BTreeMap<String, usize> = BTreeMap::new();
    for entry in entries {
        // A later definition wins in dotenv; an earlier one of the same name is dead text,
        // which may still hold an old key: refuse rather than leave it behind.
        if let Some(first) = first_lines.get(&entry.name) {
            bail!(
                "{}: {} is defined twice (lines {first} and {}); keep one definition and import again",
                path.display(),
                entry.name,
                entry.line
            );
        }
        first_lines.insert(entry.name.clone(), entry.line);
        let value = match entry.value {
            EnvValue::Reference(_) => {
                kept.push(Kept {
                    name: entry.name,
                    line: entry.line,
                    why: "already a vault:// reference",
                });
                continue;
            }
            EnvValue::Plain(value) => SecretValue::new(value),
        };
        match classify::classify(matcher, &entry.name, value.expose()) {
            Some(reason) => {
                let (path, field) = match layout {
                    Layout::Single => (to.to_string(), entry.name.clone()),
                    Layout::Split => (format!("{to}/{}", entry.name), "value".to_string()),
                };
                moved.push(Moved {
                    name: entry.name,
                    line: entry.line,
                    end_line: entry.end_line,
                    value,
                    reason,
                    path,
                    field,
                });
            }
            None => kept.push(Kept {
                name: entry.name,
                line: entry.line,
                why: "plain setting",
            }),
        }
    }
    for m in &moved {
        m.reference()
            .parse::<crate::reference::Reference>()
            .with_context(|| format!("{} cannot be a reference for {}", m.reference(), m.name))?;
    }
    Ok(Sorted { moved, kept })
}

/// The env file to import, as an absolute path with its directory.
pub fn env_file(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    if !absolute.is_file() {
        bail!("{}: no such file", path.display());
    }
    let dir = absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    Ok((absolute, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_defined_twice_is_refused() {
        let matcher = Matcher::new(&crate::scan::rules::builtin()).unwrap();
        let text = "API_TOKEN=fake-first-value\nDEBUG=1\nAPI_TOKEN=fake-second-value\n";
        let err = sort(
            Path::new(".env"),
            text,
            &matcher,
            "secret/app",
            Layout::Single,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("API_TOKEN is defined twice (lines 1 and 3)"),
            "{err}"
        );
        assert!(!err.contains("fake-"), "{err}");
    }

    #[test]
    fn references_follow_the_layout() {
        let matcher = Matcher::new(&crate::scan::rules::builtin()).unwrap();
        let text = "API_TOKEN=fake-token-value\nX=vault://secret/x#y\nPORT=80\n";
        let single = sort(
            Path::new(".env"),
            text,
            &matcher,
            "secret/app/",
            Layout::Single,
        )
        .unwrap();
        assert_eq!(single.moved[0].reference(), "secret/app#API_TOKEN");
        assert_eq!(single.kept.len(), 2);
        let split = sort(
            Path::new(".env"),
            text,
            &matcher,
            "secret/app",
            Layout::Split,
        )
        .unwrap();
        assert_eq!(split.moved[0].reference(), "secret/app/API_TOKEN#value");
    }
}
