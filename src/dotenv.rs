//! Env files (`--env-file`, `env_files` in keywrap.toml): dotenv syntax, where a value
//! `vault://PATH#FIELD` is a reference resolved like `--secret` and any other value is a
//! plain setting passed to the child as it is.
//!
//! The syntax is the one python-dotenv, godotenv and docker compose agree on:
//! `# comments`, an optional `export ` prefix, `NAME=value` with inline ` # comments`,
//! 'single quotes' (literal), "double quotes" (`\n \r \t \" \\ \$` escapes), quoted
//! values over several lines, and `${VAR}`, `${VAR:-default}` and `$VAR` expansion in
//! unquoted and double-quoted values (never in single quotes), from variables defined
//! earlier in the env files, else the inherited environment.
//!
//! Hand-written rather than dotenvy 0.15 (compared 2026-12-03): dotenvy expands `$VAR` from
//! the process environment first (so `LEAK=${VAULT_TOKEN}` would hand the token back), has
//! no `${VAR:-default}` nor `\$` escape, reports no line numbers, and its `LineParse` error
//! carries the line's text, which issue 12 forbids; on 200,000 lines it parses in 0.17 s,
//! keywrap's whole `exec --dry-run` over the same file takes 0.26 s, so speed does not decide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::reference::{validate_env_name, Reference};

/// One `NAME=value` line.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub value: EnvValue,
    pub line: usize,
    /// The last line of the entry (a quoted value may span several), for `import`.
    pub end_line: usize,
}

/// A value from an env file.
#[derive(Clone)]
pub enum EnvValue {
    Plain(String),
    Reference(Reference),
}

impl std::fmt::Debug for EnvValue {
    /// Plain values may be secrets that should not be there: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvValue::Plain(_) => f.write_str("Plain(<hidden>)"),
            EnvValue::Reference(reference) => write!(f, "Reference({reference})"),
        }
    }
}

/// Reads and parses `path`. `known` holds variables defined by earlier files (for
/// expansion) and receives this file's plain values; `inherited` looks up the environment.
pub fn load(
    path: &Path,
    known: &mut BTreeMap<String, String>,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read env file {}", path.display()))?;
    parse(path, &text, known, inherited)
}

/// Parses env-file text; errors are `FILE:LINE:COLUMN: problem`.
pub fn parse(
    path: &Path,
    text: &str,
    known: &mut BTreeMap<String, String>,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>> {
    parse_entries(path, text, known, inherited, true)
}

/// [`parse`] without the live-key warning, for `import`, which moves those keys itself.
pub fn parse_quietly(
    path: &Path,
    text: &str,
    known: &mut BTreeMap<String, String>,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Entry>> {
    parse_entries(path, text, known, inherited, false)
}

fn parse_entries(
    path: &Path,
    text: &str,
    known: &mut BTreeMap<String, String>,
    inherited: &dyn Fn(&str) -> Option<String>,
    warn_live_keys: bool,
) -> Result<Vec<Entry>> {
    let mut parser = Parser {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
        path,
    };
    let mut entries = Vec::new();
    // Names bound to references so far (a set: a large file must stay linear).
    let mut references: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        parser.skip_blank();
        match parser.peek() {
            None => break,
            Some('\n') => {
                parser.bump();
                continue;
            }
            Some('#') => {
                parser.skip_line();
                continue;
            }
            _ => {}
        }
        let line = parser.line;
        let name_column = parser.column;
        let mut name =
            parser.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if name == "export" && matches!(parser.peek(), Some(' ' | '\t')) {
            parser.skip_blank();
            name = parser
                .take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        }
        if name.is_empty() {
            return Err(parser.error("expected NAME=value"));
        }
        if let Err(problem) = validate_env_name(&name) {
            // The problem names no character of the name: it may be a value on a line of its own.
            return Err(anyhow!(
                "{}:{line}:{name_column}: {problem}",
                path.display()
            ));
        }
        parser.skip_blank();
        if parser.peek() != Some('=') {
            return Err(parser.error("expected '=' after the variable name"));
        }
        parser.bump();
        parser.skip_blank();
        let value_column = parser.column;
        let lookup = |var: &str,
                      references: &std::collections::HashSet<String>|
         -> Result<String, String> {
            if references.contains(var) {
                return Err(
                    "cannot expand a vault:// reference: it is resolved only when the command starts"
                        .to_string(),
                );
            }
            if let Some(value) = known.get(var) {
                return Ok(value.clone());
            }
            if crate::environment::is_credential_variable(var) {
                return Err(format!(
                    "cannot expand ${var}: keywrap keeps Vault credentials from the command"
                ));
            }
            Ok(inherited(var).unwrap_or_default())
        };
        let (value, quoted) = match parser.peek() {
            Some('\'') => (parser.single_quoted()?, true),
            Some('"') => (parser.double_quoted(&|v| lookup(v, &references))?, true),
            _ => (parser.unquoted(&|v| lookup(v, &references))?, false),
        };
        if quoted {
            parser.skip_blank();
            match parser.peek() {
                None | Some('\n') => {}
                Some('#') => parser.skip_line(),
                Some(_) => return Err(parser.error("unexpected text after the closing quote")),
            }
        }
        let value = if Reference::has_scheme(&value) {
            let reference = value.parse::<Reference>().map_err(|err| {
                anyhow!(
                    "{}:{line}:{}: {err}",
                    path.display(),
                    value_column + usize::from(quoted) + err.column - 1
                )
            })?;
            known.remove(&name);
            references.insert(name.clone());
            EnvValue::Reference(reference)
        } else {
            if let Some(kind) = looks_like_live_key(&value).filter(|_| warn_live_keys) {
                crate::log::warn(format_args!(
                    "{}:{line}: {name} looks like a live {kind}; keep it in Vault and write a vault://PATH#FIELD reference here instead",
                    path.display()
                ));
            }
            references.remove(&name);
            known.insert(name.clone(), value.clone());
            EnvValue::Plain(value)
        };
        entries.push(Entry {
            name,
            value,
            line,
            end_line: parser.line,
        });
    }
    Ok(entries)
}

/// The kind of credential `value` looks like, for the warning; never the value.
pub(crate) fn looks_like_live_key(value: &str) -> Option<&'static str> {
    let body_ok = |rest: &str, min: usize| {
        rest.len() >= min
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let checks: &[(&str, usize, &str)] = &[
        // Short enough for the test and sample keys people paste too (`sk-test-12345678`).
        ("sk-", 12, "OpenAI/Anthropic-style API key (sk-...)"),
        ("ghp_", 30, "GitHub token (ghp_...)"),
        ("gho_", 30, "GitHub token (gho_...)"),
        ("ghs_", 30, "GitHub token (ghs_...)"),
        ("github_pat_", 30, "GitHub token (github_pat_...)"),
        ("glpat-", 20, "GitLab token (glpat-...)"),
        ("xoxb-", 20, "Slack token (xoxb-...)"),
        ("xoxp-", 20, "Slack token (xoxp-...)"),
        ("AIza", 35, "Google API key (AIza...)"),
    ];
    for (prefix, min, kind) in checks {
        if let Some(rest) = value.strip_prefix(prefix) {
            if body_ok(rest, *min) {
                return Some(kind);
            }
        }
    }
    let aws = value
        .strip_prefix("AKIA")
        .or_else(|| value.strip_prefix("ASIA"));
    if aws.is_some_and(|rest| {
        rest.len() == 16
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    }) {
        return Some("AWS access key (AKIA...)");
    }
    None
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
    path: &'a Path,
}

type Lookup<'l> = dyn Fn(&str) -> Result<String, String> + 'l;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, problem: &str) -> anyhow::Error {
        anyhow!(
            "{}:{}:{}: {problem}",
            self.path.display(),
            self.line,
            self.column
        )
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    fn skip_line(&mut self) {
        while !matches!(self.peek(), None | Some('\n')) {
            self.bump();
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut taken = String::new();
        while let Some(c) = self.peek().filter(|&c| keep(c)) {
            taken.push(c);
            self.bump();
        }
        taken
    }

    fn single_quoted(&mut self) -> Result<String> {
        let (line, column) = (self.line, self.column);
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => bail!(
                    "{}:{line}:{column}: unterminated single-quoted value",
                    self.path.display()
                ),
                Some('\'') => return Ok(value),
                Some(c) => value.push(c),
            }
        }
    }

    fn double_quoted(&mut self, lookup: &Lookup) -> Result<String> {
        let (line, column) = (self.line, self.column);
        self.bump();
        let mut value = String::new();
        loop {
            match self.peek() {
                None => bail!(
                    "{}:{line}:{column}: unterminated double-quoted value",
                    self.path.display()
                ),
                Some('"') => {
                    self.bump();
                    return Ok(value);
                }
                Some('\\') => {
                    self.bump();
                    match self.bump() {
                        Some('n') => value.push('\n'),
                        Some('r') => value.push('\r'),
                        Some('t') => value.push('\t'),
                        Some(c @ ('"' | '\\' | '$' | '\'')) => value.push(c),
                        Some(c) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => {}
                    }
                }
                Some('$') => self.expand(&mut value, lookup)?,
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    fn unquoted(&mut self, lookup: &Lookup) -> Result<String> {
        let mut value = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => break,
                Some('#') if value.is_empty() || value.ends_with([' ', '\t']) => {
                    self.skip_line();
                    break;
                }
                Some('$') => self.expand(&mut value, lookup)?,
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
        Ok(value.trim_end().to_string())
    }

    /// `$VAR`, `${VAR}` or `${VAR:-default}` at the cursor; a lone `$` stays.
    fn expand(&mut self, value: &mut String, lookup: &Lookup) -> Result<()> {
        let (line, column) = (self.line, self.column);
        self.bump();
        let at = |problem: String| anyhow!("{}:{line}:{column}: {problem}", self.path.display());
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if self.peek() == Some('{') {
            self.bump();
            let name = self.take_while(is_name);
            let default = if self.peek() == Some(':') && self.chars.get(self.pos + 1) == Some(&'-')
            {
                self.bump();
                self.bump();
                Some(self.take_while(|c| c != '}' && c != '\n'))
            } else {
                None
            };
            if name.is_empty() || self.bump() != Some('}') {
                return Err(at("expected ${NAME} or ${NAME:-default}".into()));
            }
            let found = lookup(&name).map_err(at)?;
            match default {
                Some(default) if found.is_empty() => value.push_str(&default),
                _ => value.push_str(&found),
            }
        } else {
            let name = self.take_while(is_name);
            if name.is_empty() {
                value.push('$');
            } else {
                value.push_str(&lookup(&name).map_err(at)?);
            }
        }
        Ok(())
    }
}

/// The env files for a run: keywrap.toml's `env_files` (relative to that file) first, then
/// each `--env-file` in order; later ones win. An env file keywrap.toml names outside its own
/// directory tree (`../x`, `/root/.vault-token`, a symlink out) is read only when the file
/// is trusted: it may be any file of the user's, not one that came with the repository.
pub fn paths(
    config: Option<&crate::config::LoadedConfig>,
    flags: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    if let Some(c) = config {
        for path in &c.file.env_files {
            if !c.contains(path) {
                c.require_trust(
                    &format!(
                        "env_files entry {:?} (outside the file's directory)",
                        path.display().to_string()
                    ),
                    "--env-file",
                )?;
            }
            paths.push(c.resolve_path(path));
        }
    }
    paths.extend(flags.iter().cloned());
    Ok(paths)
}

/// Reads every env file of the run, in order (see [`paths`]).
pub fn load_all(
    config: Option<&crate::config::LoadedConfig>,
    flags: &[PathBuf],
    env: &crate::environment::Environment,
) -> Result<Vec<(PathBuf, Vec<Entry>)>> {
    let mut known = BTreeMap::new();
    let inherited = |name: &str| env.get(name).map(str::to_string);
    paths(config, flags)?
        .into_iter()
        .map(|path| {
            let entries = load(&path, &mut known, &inherited)?;
            crate::log::verbose(format_args!(
                "env file {} ({} entries)",
                path.display(),
                entries.len()
            ));
            Ok((path, entries))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Vec<(String, String)>> {
        let mut known = BTreeMap::new();
        let inherited = |name: &str| (name == "HOME").then(|| "/home/u".to_string());
        let entries = parse(Path::new(".env"), text, &mut known, &inherited)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let value = match e.value {
                    EnvValue::Plain(v) => v,
                    EnvValue::Reference(r) => format!("ref:{r}"),
                };
                (e.name, value)
            })
            .collect())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_common_dotenv_syntax() {
        let text = "# comment\n\nexport A=1\nB = plain value  # comment\nC='single $A \\n'\nD=\"double $A ${B} \\n\\t\\\"q\\\" \\$A\"\nE=\"line1\nline2\"\nF=x#not-a-comment\nG=${HOME}/x\nH=${MISSING:-fallback}\nI=\nJ=vault://secret/app#key\nK='a\nb'\n";
        assert_eq!(
            parse_text(text).unwrap(),
            pairs(&[
                ("A", "1"),
                ("B", "plain value"),
                ("C", "single $A \\n"),
                ("D", "double 1 plain value \n\t\"q\" $A"),
                ("E", "line1\nline2"),
                ("F", "x#not-a-comment"),
                ("G", "/home/u/x"),
                ("H", "fallback"),
                ("I", ""),
                ("J", "ref:secret/app#key"),
                ("K", "a\nb"),
            ])
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = |text: &str| parse_text(text).unwrap_err().to_string();
        assert_eq!(
            err("A=1\nB \"x\"\n"),
            ".env:2:3: expected '=' after the variable name"
        );
        assert_eq!(
            err("A=1\n\nB=\"open\n"),
            ".env:3:3: unterminated double-quoted value"
        );
        assert_eq!(
            err("C='x' y\n"),
            ".env:1:7: unexpected text after the closing quote"
        );
        assert!(err("1A=x\n").starts_with(".env:1:1: "));
        assert!(
            err("A=vault://secret/app\n").starts_with(".env:1:"),
            "{}",
            err("A=vault://secret/app\n")
        );
        assert!(err("A=vault://s/a#k\nB=$A\n").starts_with(".env:2:3: cannot expand a vault://"));
        assert_eq!(err("=x\n"), ".env:1:1: expected NAME=value");
    }

    #[test]
    fn vault_credentials_are_not_expanded_into_settings() {
        let mut known = BTreeMap::new();
        let inherited = |name: &str| Some(format!("value-of-{name}"));
        let err = parse(
            Path::new(".env"),
            "LEAK=${VAULT_TOKEN}\n",
            &mut known,
            &inherited,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            ".env:1:6: cannot expand $VAULT_TOKEN: keywrap keeps Vault credentials from the command"
        );
        let ok = parse(
            Path::new(".env"),
            "ADDR=$VAULT_ADDR\n",
            &mut known,
            &inherited,
        )
        .unwrap();
        assert!(matches!(&ok[0].value, EnvValue::Plain(v) if v == "value-of-VAULT_ADDR"));
    }

    #[test]
    fn errors_never_repeat_the_text() {
        let key = ["sk", "-proj-", "Zx81QmVq0Lr3Tn5Wc7Yb9Ud"].concat();
        for text in [
            format!("{key}\n"),
            format!("A=vault://{key}\n"),
            format!("A=vault://secret/{key}\n"),
            format!("A='{key}\n"),
            format!("A=\"{key}\n"),
            format!("A=\"{key}\" tail\n"),
            format!("{}\n", key.replace('-', "_")),
        ] {
            let err = parse_text(&text).unwrap_err().to_string();
            assert!(!err.contains(&key), "{err}");
            assert!(!err.contains(&key.replace('-', "_")), "{err}");
            assert!(err.starts_with(".env:1:"), "{err}");
        }
    }

    #[test]
    fn spots_keys_that_belong_in_vault() {
        let key = ["sk", "-", &"a1".repeat(12)].concat();
        assert!(looks_like_live_key(&key).is_some());
        assert!(looks_like_live_key(&["AKIA", &"A1".repeat(8)].concat()).is_some());
        assert!(looks_like_live_key(&["sk", "-test-", "12345678"].concat()).is_some());
        assert!(looks_like_live_key("sk-short").is_none());
        assert!(looks_like_live_key("postgres://localhost/db").is_none());
    }
}
