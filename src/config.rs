//! `keywrap.toml`: the committed project file of references and connection settings.
//!
//! It never holds a secret value. It is found from the current directory upwards, the way
//! git finds `.git`, unless `--config` names one.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::trust::{Gated, TrustGate, TrustInputs};

/// The file name keywrap looks for.
pub const FILE_NAME: &str = "keywrap.toml";

/// The parsed contents of a keywrap.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub vault: VaultSection,
    #[serde(default)]
    pub auth: AuthSection,
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
    pub rules: Vec<ScanRule>,
}

/// keywrap.toml `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub method: Option<String>,
    /// The auth method's mount path (default: the method's name).
    pub mount: Option<String>,
    /// The role to log in as (AppRole needs none; JWT and Kubernetes do).
    pub role: Option<String>,
    pub role_id_file: Option<PathBuf>,
    pub secret_id_file: Option<PathBuf>,
    /// The secret ID is a response-wrapping token to unwrap first.
    pub secret_id_wrapped: Option<bool>,
    pub jwt_file: Option<PathBuf>,
    /// The name of a variable holding the JWT (e.g. GitLab's `id_tokens` name).
    pub jwt_env: Option<String>,
    /// The audience to request from GitHub Actions' OIDC token service.
    pub audience: Option<String>,
    /// Kubernetes service-account token file.
    pub token_file: Option<PathBuf>,
}

/// One `keywrap scan` rule as written in a rules file or keywrap.toml's `[[rules]]`
/// ([`crate::scan::rules::Rule`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRule {
    pub id: String,
    pub description: String,
    pub regex: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub group: Option<usize>,
    pub entropy: Option<f64>,
    #[serde(default)]
    pub multiline: bool,
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// Whole secrets (case-insensitive) that are placeholders: `password` is one, but
    /// `supersecret42` is a password even though it contains a stopword-like word.
    #[serde(default)]
    pub placeholders: Vec<String>,
    #[serde(default)]
    pub require_digit: bool,
    #[serde(default)]
    pub fallback: bool,
    #[serde(default)]
    pub reject_identifiers: bool,
    /// The id of the rule whose matches this rule's secrets pair with (an AWS secret access
    /// key with its access key ID): a match within a few lines of one is linked to it.
    pub near: Option<String>,
    /// Run within a few lines of each `near` match: finds this rule's secret there without
    /// the name that the main regex needs (`AKIA…,<secret>` in a credentials CSV).
    pub near_regex: Option<String>,
    /// The public start of a secret (`ghp_`, `sk-proj-`): all that a preview shows of it
    /// (of a user rule's, only a plain literal; never more than half the secret).
    pub prefix: Option<String>,
    /// A UUID-shaped secret is an identifier, not a secret.
    #[serde(default)]
    pub reject_uuid: bool,
    /// Words (case-insensitive) that, in the matched text before the secret, say it is not
    /// one: `public` in `public_key = …`.
    #[serde(default)]
    pub name_stopwords: Vec<String>,
    /// SHA-256 digests (hex) of values that match but are public: keys published in a
    /// provider's own SDK tests and samples. Digests, so that the rules hold no key.
    #[serde(default)]
    pub public_sha256: Vec<String>,
    /// The keywords match only with their case (`SK`): for short keywords that are common
    /// in another case.
    #[serde(default)]
    pub exact_keywords: bool,
    /// How the match is encoded: its decoded text is scanned with the other rules.
    pub decode: Option<ScanDecode>,
    /// A structure the secret must have beyond its regex (a JWT's header is JSON).
    pub validate: Option<ScanValidate>,
    /// A secret equal to the last word before it is a default (a URL's user name as its
    /// password), not a secret.
    #[serde(default)]
    pub reject_name_value: bool,
    /// Every match begins with one of the keywords: the regex runs anchored at each
    /// keyword found, not over the keyword's whole line (for rules on words as common as
    /// `key`, whose lines are many).
    #[serde(default)]
    pub starts_with_keyword: bool,
}

/// A structural check of a scan rule's secret (see [`ScanRule::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanValidate {
    /// The first dot-separated part decodes (base64url) to a JSON object naming its `alg`,
    /// as every JWS and JWE header does (RFC 7515, 7516).
    Jwt,
    /// A password as typed (see `scan::literal`): 8 characters or more with a symbol, not
    /// an expression, template, pattern or mask; quoted in source code; no `{{` in YAML.
    Password,
}

/// An encoding a scan rule's matches are decoded from (see [`ScanRule::decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanDecode {
    Base64,
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
    /// Host headers accepted besides the listen address (DNS rebinding: 421 otherwise).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub first_byte_timeout: Option<Seconds>,
    #[serde(default)]
    pub routes: Vec<ProxyRoute>,
    /// `redis://HOST:PORT/DB` or `rediss://`: limits shared across replicas
    /// (crate::proxy::store::settings validates these three).
    pub store: Option<String>,
    /// A reference to the store's password; never the password.
    pub store_password: Option<String>,
    /// `fail_closed` (the default) or `fail_open`.
    pub store_failure: Option<String>,
    #[serde(default)]
    pub alerts: Vec<crate::alert_settings::AlertSection>,
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
    /// The completion a request is expected to ask for when its body names no `max_tokens`.
    pub default_max_tokens: Option<u64>,
    /// Client headers that choose billing (`OpenAI-Organization`, `OpenAI-Project`) and may
    /// reach this route's upstream; dropped otherwise.
    #[serde(default)]
    pub client_headers: Vec<String>,
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
        self.list().join(",")
    }

    pub fn list(&self) -> &[String] {
        match self {
            Addresses::One(address) => std::slice::from_ref(address),
            Addresses::Many(addresses) => addresses,
        }
    }
}

/// One `[env]` entry: a reference string, or a table with `ref` and options.
#[derive(Debug)]
pub enum EnvEntry {
    Reference(String),
    Table(EnvTable),
}

const ENV_ENTRY_EXPECTED: &str = "expected a reference in quotes, e.g. \"secret/openai#api_key\", or a table such as { ref = \"secret/openai#api_key\" }";

/// By hand rather than `untagged`: an untagged enum buffers every value before trying its
/// variants, which made a file of 200,000 references several times slower to load.
impl<'de> Deserialize<'de> for EnvEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        struct Entry;
        impl<'de> Visitor<'de> for Entry {
            type Value = EnvEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(ENV_ENTRY_EXPECTED)
            }
            fn visit_str<E: Error>(self, text: &str) -> Result<EnvEntry, E> {
                Ok(EnvEntry::Reference(text.to_string()))
            }
            fn visit_string<E: Error>(self, text: String) -> Result<EnvEntry, E> {
                Ok(EnvEntry::Reference(text))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EnvEntry, A::Error> {
                EnvTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(EnvEntry::Table)
            }
            // Other types say what is expected, without serde's "invalid type: ..." prefix.
            fn visit_bool<E: Error>(self, _: bool) -> Result<EnvEntry, E> {
                Err(E::custom(ENV_ENTRY_EXPECTED))
            }
            fn visit_i64<E: Error>(self, _: i64) -> Result<EnvEntry, E> {
                Err(E::custom(ENV_ENTRY_EXPECTED))
            }
            fn visit_u64<E: Error>(self, _: u64) -> Result<EnvEntry, E> {
                Err(E::custom(ENV_ENTRY_EXPECTED))
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<EnvEntry, E> {
                Err(E::custom(ENV_ENTRY_EXPECTED))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<EnvEntry, A::Error> {
                Err(A::Error::custom(ENV_ENTRY_EXPECTED))
            }
        }
        deserializer.deserialize_any(Entry)
    }
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

/// A keywrap.toml setting that needs trust (see [`crate::trust`]), as messages name it, and
/// the flag or variable that gives it without trust.
pub struct Sensitive {
    pub key: &'static str,
    pub instead: &'static str,
}

pub const ADDRESS: Sensitive = Sensitive {
    key: "[vault] address",
    instead: "--address or VAULT_ADDR",
};
pub const NAMESPACE: Sensitive = Sensitive {
    key: "[vault] namespace",
    instead: "--namespace or VAULT_NAMESPACE",
};
pub const CA_CERT: Sensitive = Sensitive {
    key: "[vault] ca_cert",
    instead: "--ca-cert or VAULT_CACERT",
};
pub const CA_PATH: Sensitive = Sensitive {
    key: "[vault] ca_path",
    instead: "--ca-path or VAULT_CAPATH",
};
pub const CLIENT_CERT: Sensitive = Sensitive {
    key: "[vault] client_cert",
    instead: "--client-cert or VAULT_CLIENT_CERT",
};
pub const CLIENT_KEY: Sensitive = Sensitive {
    key: "[vault] client_key",
    instead: "--client-key or VAULT_CLIENT_KEY",
};
pub const ROLE_ID_FILE: Sensitive = Sensitive {
    key: "[auth] role_id_file",
    instead: "--role-id-file or KEYWRAP_ROLE_ID_FILE",
};
pub const SECRET_ID_FILE: Sensitive = Sensitive {
    key: "[auth] secret_id_file",
    instead: "--secret-id-file or KEYWRAP_SECRET_ID_FILE",
};
pub const JWT_FILE: Sensitive = Sensitive {
    key: "[auth] jwt_file",
    instead: "--jwt-file or KEYWRAP_JWT_FILE",
};
pub const JWT_ENV: Sensitive = Sensitive {
    key: "[auth] jwt_env",
    instead: "--jwt-env or KEYWRAP_JWT_ENV",
};
pub const TOKEN_FILE: Sensitive = Sensitive {
    key: "[auth] token_file",
    instead: "--kubernetes-token-file or KEYWRAP_KUBERNETES_TOKEN_FILE",
};
pub const PROXY_UPSTREAMS: Sensitive = Sensitive {
    key: "[[proxy.routes]] upstream",
    instead: "--upstream",
};
pub const UPSTREAM_CA: Sensitive = Sensitive {
    key: "[proxy] upstream_ca",
    instead: "--upstream-ca",
};
/// The limits store is sent the store password (read from Vault) and every client's spend.
pub const PROXY_STORE: Sensitive = Sensitive {
    key: "[proxy] store",
    instead: "",
};
/// Alert webhooks are read from Vault with the user's token and sent the proxy's alerts: a
/// foreign file could name any secret as the destination.
pub const PROXY_ALERTS: Sensitive = Sensitive {
    key: "[[proxy.alerts]] url",
    instead: "",
};

/// A keywrap.toml that was found and parsed, with what is needed to point at its lines and
/// to decide whether its sensitive settings may be used.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub file: ConfigFile,
    text: String,
    /// Byte offset of each line's start, for positions in O(log n).
    line_starts: Vec<usize>,
    trust: Arc<TrustGate>,
}

impl LoadedConfig {
    /// Reads and parses `path`; errors name the file, line and column. `inputs` decide, when
    /// a sensitive setting is first used, whether the file is trusted.
    pub fn load(path: &Path, inputs: TrustInputs) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse_with(path, text, Some(inputs))
    }

    /// Parses `text` as the file at `path`. Not located, the file is never trusted unless
    /// [`LoadedConfig::assume_trusted`] says so.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        Self::parse_with(path, text, None)
    }

    fn parse_with(path: &Path, text: String, inputs: Option<TrustInputs>) -> Result<Self> {
        let file: ConfigFile = toml::from_str(&text).map_err(|err| {
            let (line, column) = err
                .span()
                .map(|span| line_and_column(&text, span.start))
                .unwrap_or((1, 1));
            anyhow::anyhow!(
                "{}:{line}:{column}: {}",
                path.display(),
                crate::redact::parse_message(err.message())
            )
        })?;
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        let trust = Arc::new(TrustGate::new(
            path.to_path_buf(),
            crate::trust::store::digest(text.as_bytes()),
            sensitive_settings(&file, dir_of(path)),
            inputs,
        ));
        Ok(LoadedConfig {
            path: path.to_path_buf(),
            file,
            text,
            line_starts,
            trust,
        })
    }

    /// Trusts the file for this run without asking (a file keywrap wrote itself, tests).
    pub fn assume_trusted(self) -> Self {
        self.trust.assume_trusted();
        self
    }

    /// The file's trust decision.
    pub fn trust(&self) -> &Arc<TrustGate> {
        &self.trust
    }

    /// Ok when the file's `key` may be used (see [`crate::trust`]); else the one-line
    /// refusal naming the setting, the file and `keywrap trust PATH`.
    pub fn require_trust(&self, key: &str, instead: &str) -> Result<()> {
        Ok(self.trust.require(key, instead)?)
    }

    /// A value read from this file, handed out only once the file is trusted.
    pub fn gated<T>(&self, value: T, setting: &Sensitive) -> Gated<T> {
        Gated::from_file(value, setting.key, setting.instead, Arc::clone(&self.trust))
    }

    /// The settings of the file that need trust, with their values (no secret: the file
    /// holds none), for `keywrap trust` to show what it accepts.
    pub fn sensitive_settings(&self) -> Vec<String> {
        sensitive_settings(&self.file, self.dir())
    }

    /// The directory relative paths in the file are resolved against.
    pub fn dir(&self) -> &Path {
        dir_of(&self.path)
    }

    /// 1-based line and column of a byte offset in the file.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |before| before.chars().count() + 1);
        (line, column)
    }

    /// A path from the file, made absolute against the file's directory.
    pub fn resolve_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir().join(path)
        }
    }

    /// Whether `path` (from the file) lies in the file's directory or below it, symlinks
    /// followed: an env file there came with the repository, one elsewhere (`../x`,
    /// `/root/.vault-token`, a link out) may be any file of the user's.
    pub fn contains(&self, path: &Path) -> bool {
        contains(self.dir(), path)
    }
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn contains(dir: &Path, path: &Path) -> bool {
    let target = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    real_path(&target).starts_with(real_path(dir))
}

/// The sensitive settings `file` has, with their values, for the question on a terminal and
/// for `keywrap trust`.
fn sensitive_settings(file: &ConfigFile, dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut add = |setting: &Sensitive, value: Option<String>| {
        if let Some(value) = value {
            found.push(format!("{} = {value}", setting.key));
        }
    };
    let quoted = |p: &Option<PathBuf>| p.as_ref().map(|p| format!("{:?}", p.display().to_string()));
    let vault = &file.vault;
    add(
        &ADDRESS,
        vault.address.as_ref().map(|a| {
            let shown: Vec<String> = a
                .list()
                .iter()
                .map(|a| format!("{:?}", without_password(a)))
                .collect();
            shown.join(", ")
        }),
    );
    add(
        &NAMESPACE,
        vault.namespace.as_ref().map(|n| format!("{n:?}")),
    );
    add(&CA_CERT, quoted(&vault.ca_cert));
    add(&CA_PATH, quoted(&vault.ca_path));
    add(&CLIENT_CERT, quoted(&vault.client_cert));
    add(&CLIENT_KEY, quoted(&vault.client_key));
    let auth = &file.auth;
    add(&ROLE_ID_FILE, quoted(&auth.role_id_file));
    add(&SECRET_ID_FILE, quoted(&auth.secret_id_file));
    add(&JWT_FILE, quoted(&auth.jwt_file));
    add(&JWT_ENV, auth.jwt_env.as_ref().map(|n| format!("{n:?}")));
    add(&TOKEN_FILE, quoted(&auth.token_file));
    for route in &file.proxy.routes {
        add(
            &PROXY_UPSTREAMS,
            Some(format!("{:?}", without_password(&route.upstream))),
        );
    }
    add(&UPSTREAM_CA, quoted(&file.proxy.upstream_ca));
    add(
        &PROXY_STORE,
        file.proxy
            .store
            .as_ref()
            .map(|url| format!("{:?}", without_password(url))),
    );
    for alert in &file.proxy.alerts {
        add(&PROXY_ALERTS, Some(format!("{:?}", alert.url)));
    }
    for env_file in &file.env_files {
        if !contains(dir, env_file) {
            found.push(format!(
                "env_files: {:?} (outside {})",
                env_file.display().to_string(),
                crate::trust::display_path(dir)
            ));
        }
    }
    found
}

/// The path with symlinks resolved; for a path that does not exist, made absolute with
/// `..` folded (it cannot be read anyway).
fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut folded = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                folded.pop();
            }
            Component::CurDir => {}
            other => folded.push(other),
        }
    }
    folded
}

/// An address for display, its password (if any) replaced.
fn without_password(address: &str) -> String {
    match reqwest::Url::parse(address) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("<hidden>"));
            url.to_string()
        }
        _ => address.to_string(),
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
    let inputs = TrustInputs::from_process();
    match explicit {
        Some(path) => LoadedConfig::load(path, inputs).map(Some),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            discover(&cwd)
                .map(|path| LoadedConfig::load(&path, inputs))
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
        assert!(
            err.starts_with("keywrap.toml:2:1: unknown field (6 characters, not shown), expected one of `address`"),
            "{err}"
        );
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
