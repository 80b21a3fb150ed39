//! Ways to accept a finding: `keywrap:allow` on the line (see [`super::ALLOW_MARKER`]), an
//! ignore file of paths in gitignore syntax, and a baseline of fingerprints.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::{Deserialize, Serialize};

use super::Finding;

/// The ignore file's name, looked for in each scanned directory (and at a repository's
/// top level for `--git` and `--staged`).
pub const IGNORE_FILE: &str = ".keywrapignore";

/// Paths in a repository's top-level `.keywrapignore`, for scans of git objects.
pub fn ignore_file(root: &Path) -> Result<Option<Gitignore>> {
    let path = root.join(IGNORE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let mut builder = GitignoreBuilder::new(root);
    if let Some(err) = builder.add(&path) {
        return Err(err).with_context(|| format!("cannot read {}", path.display()));
    }
    Ok(Some(builder.build().with_context(|| {
        format!("invalid pattern in {}", path.display())
    })?))
}

/// Whether a repository-relative path is ignored (a file, or inside an ignored directory).
pub fn is_ignored(ignore: &Gitignore, path: &str) -> bool {
    ignore
        .matched_path_or_any_parents(Path::new(path), false)
        .is_ignore()
}

/// A baseline: the fingerprints of accepted findings, with their rule and file for review.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    pub version: u32,
    pub findings: Vec<BaselineEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub fingerprint: String,
    pub rule: String,
    pub file: String,
}

impl Baseline {
    pub fn from_findings(findings: &[Finding]) -> Baseline {
        let mut entries: Vec<BaselineEntry> = findings
            .iter()
            .map(|f| BaselineEntry {
                fingerprint: f.fingerprint.clone(),
                rule: f.rule.clone(),
                file: f.file.clone(),
            })
            .collect();
        entries.sort_by(|a, b| (&a.file, &a.fingerprint).cmp(&(&b.file, &b.fingerprint)));
        entries.dedup_by(|a, b| a.fingerprint == b.fingerprint);
        Baseline {
            version: 1,
            findings: entries,
        }
    }

    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read baseline {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a keywrap baseline", path.display()))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(path, text)
            .with_context(|| format!("cannot write baseline {}", path.display()))
    }

    /// Drops the findings this baseline accepts.
    pub fn filter(&self, findings: Vec<Finding>) -> Vec<Finding> {
        let known: BTreeSet<&str> = self
            .findings
            .iter()
            .map(|e| e.fingerprint.as_str())
            .collect();
        findings
            .into_iter()
            .filter(|f| !known.contains(f.fingerprint.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_file_matches_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IGNORE_FILE), "fixtures/\n*.snap\n").unwrap();
        let ignore = ignore_file(dir.path()).unwrap().unwrap();
        assert!(is_ignored(&ignore, "fixtures/keys/a.pem"));
        assert!(is_ignored(&ignore, "src/x.snap"));
        assert!(!is_ignored(&ignore, "src/main.rs"));
    }
}
