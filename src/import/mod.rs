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
    for entry in entries {
        // A later definition wins in dotenv; an earlier one of the same name is dead text.
        moved.retain(|m| m.name != entry.name);
        kept.retain(|k: &Kept| k.name != entry.name);
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
