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
    /// A variable the program reads (it gets a reference); false for a commented-out key,
    /// which is kept in Vault but referenced by nothing.
    pub active: bool,
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
    /// Secrets the import would leave behind in plaintext unless they are moved too.
    pub leftovers: Vec<Leftover>,
}

/// A secret in the env file that the import does not move by itself: a password inside a
/// URL the rules did not catch, or a key in a comment (an old key, commented out).
#[derive(Debug)]
pub struct Leftover {
    pub line: usize,
    /// The variable, or the commented-out name; None for a key in a free-text comment.
    pub name: Option<String>,
    pub kind: LeftoverKind,
    pub value: SecretValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftoverKind {
    /// A plain setting whose URL carries a password (`redis://:PASSWORD@host`).
    PasswordInUrl,
    /// A comment holding a key (`# OPENAI_API_KEY=sk-old...`).
    CommentedOut,
}

impl Leftover {
    /// What it is, for a warning; never the value.
    pub fn describe(&self) -> String {
        match (self.kind, &self.name) {
            (LeftoverKind::PasswordInUrl, Some(name)) => {
                format!(
                    "{name} (line {}) keeps a password inside its URL",
                    self.line
                )
            }
            (LeftoverKind::CommentedOut, Some(name)) => format!(
                "the commented-out {name} (line {}) looks like an old key",
                self.line
            ),
            _ => format!(
                "the comment on line {} holds what looks like a key",
                self.line
            ),
        }
    }

    /// The Vault field it goes to when moved.
    fn field(&self) -> String {
        match (self.kind, &self.name) {
            (LeftoverKind::PasswordInUrl, Some(name)) => name.clone(),
            (LeftoverKind::CommentedOut, Some(name)) => {
                format!("{name}_COMMENTED_LINE{}", self.line)
            }
            _ => format!("COMMENT_LINE{}", self.line),
        }
    }
}

impl Sorted {
    /// Moves the leftovers to Vault with the rest: a URL becomes a reference like any
    /// secret; a commented-out key is kept in Vault (rotate it if it still works) and its
    /// comment says where it went.
    pub fn move_leftovers(&mut self, to: &str, layout: Layout) {
        let to = to.trim_end_matches('/');
        for leftover in std::mem::take(&mut self.leftovers) {
            let field = leftover.field();
            let (path, field) = match layout {
                Layout::Single => (to.to_string(), field),
                Layout::Split => (format!("{to}/{field}"), "value".to_string()),
            };
            let active = leftover.kind == LeftoverKind::PasswordInUrl;
            if let Some(name) = leftover.name.as_ref().filter(|_| active) {
                self.kept.retain(|k| &k.name != name);
            }
            self.moved.push(Moved {
                name: leftover.name.clone().unwrap_or_else(|| "a key".to_string()),
                line: leftover.line,
                end_line: leftover.line,
                value: leftover.value,
                reason: match leftover.kind {
                    LeftoverKind::PasswordInUrl => Reason::PasswordInUrl,
                    LeftoverKind::CommentedOut => Reason::CommentedOut,
                },
                path,
                field,
                active,
            });
        }
        self.moved.sort_by_key(|m| m.line);
    }
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
    let mut leftovers = Vec::new();
    let spans: Vec<(usize, usize)> = entries.iter().map(|e| (e.line, e.end_line)).collect();
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
                    active: true,
                });
            }
            None => {
                if url_password(value.expose()) {
                    leftovers.push(Leftover {
                        line: entry.line,
                        name: Some(entry.name.clone()),
                        kind: LeftoverKind::PasswordInUrl,
                        value,
                    });
                }
                kept.push(Kept {
                    name: entry.name,
                    line: entry.line,
                    why: "plain setting",
                })
            }
        }
    }
    leftovers.extend(commented_keys(path, text, &spans, matcher));
    leftovers.sort_by_key(|l| l.line);
    for m in &moved {
        m.reference()
            .parse::<crate::reference::Reference>()
            .with_context(|| format!("{} cannot be a reference for {}", m.reference(), m.name))?;
    }
    Ok(Sorted {
        moved,
        kept,
        leftovers,
    })
}

/// `NAME=value` inside a comment's prose.
static ASSIGNMENT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r#"\b([A-Za-z_][A-Za-z0-9_]*)=['"]?([^\s'"]+)"#).expect("a valid pattern")
});

/// A URL with a password in it (`scheme://user:PASSWORD@host`).
fn url_password(value: &str) -> bool {
    reqwest::Url::parse(value.trim()).is_ok_and(|url| url.password().is_some_and(|p| !p.is_empty()))
}

/// Comment lines (outside every entry's lines) that hold a key: a commented-out
/// `NAME=value` the classifier would move, or text a scan rule matches.
fn commented_keys(
    path: &Path,
    text: &str,
    spans: &[(usize, usize)],
    matcher: &Matcher,
) -> Vec<Leftover> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let Some(comment) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        if spans
            .iter()
            .any(|&(first, last)| (first..=last).contains(&number))
        {
            continue;
        }
        let body = comment.trim_start_matches('#').trim();
        let entries = dotenv::parse_quietly(path, body, &mut BTreeMap::new(), &|_| None);
        let assignments: Vec<(String, String)> = match entries.as_deref() {
            Ok([entry]) => match &entry.value {
                EnvValue::Plain(value) => vec![(entry.name.clone(), value.clone())],
                EnvValue::Reference(_) => Vec::new(),
            },
            // Prose around it: `# old: OPENAI_API_KEY=sk-...`.
            _ => ASSIGNMENT
                .captures_iter(body)
                .map(|c| (c[1].to_string(), c[2].to_string()))
                .collect(),
        };
        if let Some((name, value)) = assignments
            .into_iter()
            .find(|(name, value)| classify::classify(matcher, name, value).is_some())
        {
            found.push(Leftover {
                line: number,
                name: Some(name),
                kind: LeftoverKind::CommentedOut,
                value: SecretValue::new(value),
            });
            continue;
        }
        if let Some(hit) = matcher
            .find(body.as_bytes())
            .into_iter()
            .find(|m| !m.secret.is_empty())
        {
            found.push(Leftover {
                line: number,
                name: None,
                kind: LeftoverKind::CommentedOut,
                value: SecretValue::new(body[hit.secret].to_string()),
            });
        }
    }
    found
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
    fn secrets_left_in_urls_and_comments_are_found_and_can_move() {
        let matcher = Matcher::new(&crate::scan::rules::builtin()).unwrap();
        let text = "# OLD: OPENAI_API_KEY=fake-old-openai-value-123\nCACHE_URL=redis://:fake-redis-pass@cache:6379\nPORT=80\nNOTE=\"a\n# OPENAI_API_KEY=fake-inside-a-quoted-value\"\n# just a note\n# API_TOKEN=fake-commented-token-value\n";
        let mut sorted = sort(
            Path::new(".env"),
            text,
            &matcher,
            "secret/app",
            Layout::Single,
        )
        .unwrap();
        let found: Vec<String> = sorted.leftovers.iter().map(Leftover::describe).collect();
        assert_eq!(
            found,
            [
                "the commented-out OPENAI_API_KEY (line 1) looks like an old key",
                "CACHE_URL (line 2) keeps a password inside its URL",
                "the commented-out API_TOKEN (line 7) looks like an old key",
            ]
        );
        assert!(sorted.moved.is_empty());
        sorted.move_leftovers("secret/app", Layout::Single);
        let moved: Vec<(String, bool)> = sorted
            .moved
            .iter()
            .map(|m| (m.reference(), m.active))
            .collect();
        assert_eq!(
            moved,
            [
                (
                    "secret/app#OPENAI_API_KEY_COMMENTED_LINE1".to_string(),
                    false
                ),
                ("secret/app#CACHE_URL".to_string(), true),
                ("secret/app#API_TOKEN_COMMENTED_LINE7".to_string(), false),
            ]
        );
        assert_eq!(sorted.moved[2].value.expose(), "fake-commented-token-value");
        assert!(sorted.kept.iter().all(|k| k.name != "CACHE_URL"));
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
