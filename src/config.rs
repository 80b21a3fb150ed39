//! `keywrap.toml`: the committed project file of references and connection settings.
//!
//! It never holds a secret value. It is found from the current directory upwards, the way
//! git finds `.git`, unless `--config` names one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

/// The file name keywrap looks for.
pub const FILE_NAME: &str = "keywrap.toml";

/// The parsed contents of a keywrap.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub vault: VaultSection,
    #[serde(default)]
    pub auth: crate::auth::settings::AuthSection,
    /// Environment variable name → reference.
    #[serde(default)]
    pub env: BTreeMap<Spanned<String>, Spanned<EnvEntry>>,
    /// Env files (dotenv syntax) read before `--env-file`s, relative to this file.
    #[serde(default)]
    pub env_files: Vec<PathBuf>,
    /// `[policy]`: defaults for the key lifecycle.
    #[serde(default)]
    pub policy: PolicySection,
    /// `[proxy]`: settings and routes of `keywrap proxy`.
    #[serde(default)]
    pub proxy: ProxySection,
    /// Extra `keywrap scan` rules, in the format of the built-in rules file.
    #[serde(default)]
    pub rules: Vec<crate::scan::rules::Rule>,
}

/// `[policy]`: project-wide key lifecycle settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Maximum key age for every reference without its own `max_age` (default 90d).
    pub max_age: Option<Spanned<String>>,
}

/// `[proxy]`: every setting has a flag of the same name, which wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    pub listen: Option<String>,
    pub metrics: Option<String>,
    pub keys_path: Option<String>,
    pub allow_anonymous: Option<bool>,
    /// `true`, or how long after a rotation the previous key is retried (`"1h"`).
    pub overlap: Option<ProxyOverlap>,
    pub connect_timeout: Option<Seconds>,
    #[serde(alias = "timeout")]
    pub upstream_timeout: Option<Seconds>,
    pub retries: Option<u32>,
    pub upstream_ca: Option<PathBuf>,
    pub keys_reload: Option<Seconds>,
    pub watch_interval: Option<Seconds>,
    #[serde(alias = "shutdown_timeout")]
    pub shutdown_deadline: Option<Seconds>,
    #[serde(alias = "log_format")]
    pub access_log: Option<String>,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    #[serde(default)]
    pub routes: Vec<ProxyRoute>,
}

/// A time in keywrap.toml: a number of seconds (`2.5`) or a duration (`"30s"`, `"10m"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    Number(f64),
    Text(String),
}

/// `[proxy] overlap`: on or off, or a window (`"1h"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ProxyOverlap {
    Switch(bool),
    Window(Seconds),
}

/// One `[[proxy.routes]]` entry: requests under `prefix` go to `upstream` with `headers` set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRoute {
    #[serde(alias = "listen_prefix", alias = "path", alias = "path_prefix")]
    pub prefix: Option<String>,
    /// The prefix (`/openai`), or the address and prefix (`127.0.0.1:8787/openai`) the
    /// route listens on; every route shares the proxy's one address.
    pub listen: Option<String>,
    pub upstream: String,
    /// Header name → template, e.g. `Authorization = "Bearer {OPENAI_API_KEY}"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `[vault]`: connection settings, lowest in precedence (flags > environment > file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    pub address: Option<Addresses>,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub skip_verify: Option<bool>,
}

/// `address = "..."` or, for a cluster, `address = ["...", "..."]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

impl Addresses {
    /// The comma-separated form, as `VAULT_ADDR` may hold it.
    pub fn joined(&self) -> String {
        match self {
            Addresses::One(address) => address.clone(),
            Addresses::Many(addresses) => addresses.join(","),
        }
    }
}

/// One `[env]` entry: a reference string, or a table with `ref` and options.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "expected a reference in quotes, e.g. \"secret/openai#api_key\", or a table such as { ref = \"secret/openai#api_key\" }"
)]
pub enum EnvEntry {
    Reference(String),
    Table(EnvTable),
}

/// The table form of an `[env]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvTable {
    #[serde(rename = "ref")]
    pub reference: String,
    /// Variable that gets the previous version's field during the overlap window.
    pub previous: Option<String>,
    /// How long after a rotation the previous version is still injected (e.g. `7d`).
    pub overlap: Option<String>,
    /// Age after which the key is overdue for rotation (e.g. `90d`).
    pub max_age: Option<String>,
}

impl EnvEntry {
    pub fn reference(&self) -> &str {
        match self {
            EnvEntry::Reference(text) => text,
            EnvEntry::Table(table) => &table.reference,
        }
    }

    /// The table form's options, if the entry is a table.
    pub fn table(&self) -> Option<&EnvTable> {
        match self {
            EnvEntry::Reference(_) => None,
            EnvEntry::Table(table) => Some(table),
        }
    }
}

/// A keywrap.toml that was found and parsed, with what is needed to point at its lines.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub file: ConfigFile,
    text: String,
}

impl LoadedConfig {
    /// Reads and parses `path`; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let file: ConfigFile = toml::from_str(&text).map_err(|err| {
            let (line, column) = err
                .span()
                .map(|span| line_and_column(&text, span.start))
                .unwrap_or((1, 1));
            anyhow::anyhow!(
                "{}:{line}:{column}: {}",
                path.display(),
                err.message().trim_end()
            )
        })?;
        Ok(LoadedConfig {
            path: path.to_path_buf(),
            file,
            text,
        })
    }

    /// The directory relative paths in the file are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// 1-based line and column of a byte offset in the file.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_and_column(&self.text, offset)
    }

    /// A path from the file, made absolute against the file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir().join(path)
        }
    }
}

/// Looks for keywrap.toml in `start` and each parent directory.
pub fn discover(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// The config named by `--config`, or the one discovered from the current directory.
pub fn locate(explicit: Option<&Path>) -> Result<Option<LoadedConfig>> {
    match explicit {
        Some(path) => LoadedConfig::load(path).map(Some),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            discover(&cwd)
                .map(|path| LoadedConfig::load(&path))
                .transpose()
        }
    }
}

/// Why a command that needs references has none, in the words `exec` uses: no keywrap.toml
/// (and where it was looked for), or one without `[env]` references; and no --secret.
pub fn no_references(loaded: Option<&LoadedConfig>) -> String {
    match loaded {
        Some(found) => format!(
            "{} has no [env] references, and no --secret given",
            found.path.display()
        ),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            format!(
                "no {FILE_NAME} found in {} or its parents, and no --secret given",
                cwd.display()
            )
        }
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoadedConfig> {
        LoadedConfig::parse(Path::new("keywrap.toml"), text.to_string())
    }

    #[test]
    fn reads_vault_settings_and_references() {
        let config = parse(
            "[vault]\naddress = \"https://vault.example.com:8200\"\n[env]\nOPENAI_API_KEY = \"secret/openai#api_key\"\nB = { ref = \"kv/b#x\" }\n",
        )
        .unwrap();
        assert_eq!(
            config
                .file
                .vault
                .address
                .as_ref()
                .map(Addresses::joined)
                .as_deref(),
            Some("https://vault.example.com:8200")
        );
        let entries: Vec<_> = config
            .file
            .env
            .iter()
            .map(|(k, v)| (k.get_ref().as_str(), v.get_ref().reference()))
            .collect();
        assert_eq!(
            entries,
            [("B", "kv/b#x"), ("OPENAI_API_KEY", "secret/openai#api_key")]
        );
        let (name, _) = config.file.env.iter().nth(1).unwrap();
        assert_eq!(config.position(name.span().start), (4, 1));
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse("[env]\nA = \"x#y\"\nB = \n").unwrap_err().to_string();
        assert!(err.starts_with("keywrap.toml:3:"), "{err}");
        let err = parse("[vault]\nadress = \"x\"\n").unwrap_err().to_string();
        assert!(err.starts_with("keywrap.toml:2:1:"), "{err}");
        assert!(err.contains("adress"), "{err}");
        let err = parse("[env]\nA = 5\n").unwrap_err().to_string();
        assert!(
            err.starts_with("keywrap.toml:2:5: expected a reference in quotes"),
            "{err}"
        );
    }

    #[test]
    fn discovery_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(discover(&nested), None);
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap();
        assert_eq!(discover(&nested), Some(dir.path().join(FILE_NAME)));
    }
}
