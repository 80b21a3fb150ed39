//! Finding secrets in files, git history, staged changes and piped text.
//!
//! - [`rules`]: the rule definitions (built-in data file plus the user's).
//! - [`matcher`]: all rules compiled into one keyword-prefiltered matcher.
//! - [`vault`]: the exact values keywrap.toml references, as keyed hashes only.
//! - [`walk`], [`git`]: where the bytes come from (a parallel file walk; git blobs).
//! - [`suppress`]: `keywrap:allow`, `.keywrapignore`, baselines.
//! - [`report`]: text, JSON and SARIF output.

pub mod git;
mod keywords;
mod literal;
pub mod matcher;
pub mod report;
pub mod rules;
pub mod suppress;
pub mod vault;
pub mod walk;

#[cfg(test)]
mod rule_tests;

use serde::Serialize;

use matcher::Matcher;
use vault::VaultValues;

/// The marker that silences a finding on its line.
pub const ALLOW_MARKER: &[u8] = b"keywrap:allow";

/// Other scanners' markers for the same, honoured so that a repository moving to keywrap
/// keeps the exceptions it already reviewed: gitleaks', kingfisher's, and detect-secrets'
/// (which ripsecrets shares).
const OTHER_ALLOW_MARKERS: &[&[u8]] = &[
    b"gitleaks:allow",
    b"kingfisher:ignore",
    b"pragma: allowlist secret",
];

/// detect-secrets' marker for the line after the comment (for files such as JSON, where
/// the secret's own line cannot hold a comment).
const NEXT_LINE_ALLOW_MARKER: &[u8] = b"pragma: allowlist nextline secret";

/// Whether a finding on `line` (a byte range of `data`) is accepted by a marker on it, or
/// by a next-line marker on the line before.
fn allowed(data: &[u8], line: std::ops::Range<usize>) -> bool {
    let text = &data[line.clone()];
    let has = |text: &[u8], marker: &[u8]| memchr::memmem::find(text, marker).is_some();
    if std::iter::once(ALLOW_MARKER)
        .chain(OTHER_ALLOW_MARKERS.iter().copied())
        .any(|marker| has(text, marker))
    {
        return true;
    }
    if line.start == 0 {
        return false;
    }
    let before = &data[..line.start - 1];
    let previous = memchr::memrchr(b'\n', before).map_or(before, |i| &before[i + 1..]);
    has(previous, NEXT_LINE_ALLOW_MARKER)
}

/// Where a blob came from in git history.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub commit: String,
    pub author: String,
    pub date: String,
    /// Position in `git log --reverse` order: lower is older.
    #[serde(skip)]
    pub sequence: usize,
}

/// One secret found. Holds a preview and a fingerprint, never the secret.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub rule: String,
    pub description: String,
    /// The rule's public prefix of the secret (`ghp_`, `sk-proj-`) and its length; nothing
    /// of a secret without one (a password, a generic key).
    pub preview: String,
    /// SHA-256 of the rule, file and secret: stable across line moves, useless to an
    /// attacker for anything but confirming a guess of a high-entropy key they already have.
    pub fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// Everything needed to scan one buffer: the compiled rules and the Vault values.
pub struct Scanner {
    pub matcher: Matcher,
    pub vault: Option<VaultValues>,
}

impl Scanner {
    /// The findings in one file's (or blob's) contents, `keywrap:allow` lines left out.
    pub fn scan(&self, file: &str, data: &[u8], provenance: Option<&Provenance>) -> Vec<Finding> {
        let matches = self.matcher.find_in_file(file, data);
        // A secret's preview: the rule's public prefix (none for an encoded match, whose
        // text is not the secret's).
        let preview_of = |rule: usize, encoded: bool, range: &std::ops::Range<usize>| {
            let secret = &data[range.clone()];
            let prefix = if encoded {
                &[][..]
            } else {
                self.matcher.public_prefix(rule, secret)
            };
            preview(prefix, secret)
        };
        let mut found: Vec<(String, String, String, std::ops::Range<usize>)> = matches
            .iter()
            .map(|m| {
                let rule = &self.matcher.rules[m.rule];
                let mut description = match &m.pair {
                    Some(partner) => {
                        let partner_rule = matches
                            .iter()
                            .find(|p| p.secret == *partner)
                            .map_or(m.rule, |p| p.rule);
                        format!(
                            "{}, paired with {} on line {}",
                            rule.description,
                            preview_of(partner_rule, false, partner),
                            memchr::memchr_iter(b'\n', &data[..partner.start]).count() + 1
                        )
                    }
                    None => rule.description.clone(),
                };
                if m.encoded {
                    description.push_str(" (base64-encoded)");
                }
                let preview = preview_of(m.rule, m.encoded, &m.secret);
                (rule.id.clone(), description, preview, m.secret.clone())
            })
            .collect();
        if let Some(vault) = &self.vault {
            for (label, range) in vault.find(data) {
                let preview = preview(&[], &data[range.clone()]);
                found.push((
                    "vault-value".into(),
                    format!("Value of {label} from Vault"),
                    preview,
                    range,
                ));
            }
        }
        if found.is_empty() {
            return Vec::new();
        }
        let mut lines = LineIndex::new(data);
        found.sort_by_key(|(_, _, _, range)| range.start);
        let shown_file = escape_controls(file);
        found
            .into_iter()
            .filter_map(|(rule, description, preview, range)| {
                let (line, column, line_range) = lines.position(range.start);
                if allowed(data, line_range) {
                    return None;
                }
                let (end_line, end_column, _) = lines.position(range.end);
                let secret = &data[range];
                Some(Finding {
                    file: shown_file.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                    preview,
                    fingerprint: fingerprint(&rule, file, secret),
                    rule,
                    description: escape_controls(&description),
                    commit: provenance.map(|p| p.commit.clone()),
                    author: provenance.map(|p| escape_controls(&p.author)),
                    date: provenance.map(|p| escape_controls(&p.date)),
                })
            })
            .collect()
    }
}

/// `sk-proj-… (164 chars)`: the public prefix that says which kind of key, and the length;
/// not one character of the secret part. Without a prefix (a password, a generic key, a
/// Vault value) nothing of the secret: `(hidden)`.
pub fn preview(prefix: &[u8], secret: &[u8]) -> String {
    if prefix.is_empty() {
        return "(hidden)".to_string();
    }
    let prefix = escape_controls(&String::from_utf8_lossy(prefix));
    let length = String::from_utf8_lossy(secret).chars().count();
    format!("{prefix}… ({length} chars)")
}

/// Text for a terminal or a report: control characters (C0, DEL, C1) and bidirectional
/// overrides escaped (`\u{1b}`), so a hostile file name cannot rewrite the terminal or
/// hide what follows it.
pub fn escape_controls(text: &str) -> String {
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return text.to_string();
    }
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if hostile(c) {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A baseline fingerprint: hex SHA-256 of rule, file and secret.
pub fn fingerprint(rule: &str, file: &str, secret: &[u8]) -> String {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    hash.update(b"keywrap-fingerprint-v1\0");
    hash.update(rule.as_bytes());
    hash.update(b"\0");
    hash.update(file.as_bytes());
    hash.update(b"\0");
    hash.update(secret);
    hash.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Line and column lookups for ascending offsets into one buffer.
struct LineIndex<'a> {
    data: &'a [u8],
    /// Line number and start offset of the last lookup's line.
    line: usize,
    start: usize,
}

impl<'a> LineIndex<'a> {
    fn new(data: &'a [u8]) -> Self {
        LineIndex {
            data,
            line: 1,
            start: 0,
        }
    }

    /// 1-based line, 1-based column (in characters), and the line's byte range.
    fn position(&mut self, offset: usize) -> (usize, usize, std::ops::Range<usize>) {
        if offset < self.start {
            self.line = 1;
            self.start = 0;
        }
        self.line += memchr::memchr_iter(b'\n', &self.data[self.start..offset]).count();
        if let Some(i) = memchr::memrchr(b'\n', &self.data[self.start..offset]) {
            self.start += i + 1;
        }
        let end =
            memchr::memchr(b'\n', &self.data[offset..]).map_or(self.data.len(), |i| offset + i);
        let column = String::from_utf8_lossy(&self.data[self.start..offset])
            .chars()
            .count()
            + 1;
        (self.line, column, self.start..end)
    }
}

/// Whether a buffer looks binary: a NUL byte in its first 8 KiB, as git decides.
pub fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8192)]).is_some()
}
