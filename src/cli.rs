//! The command-line interface. Doc comments here are the `--help` texts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::auth::{AuthFlags, Method};
use crate::bindings::SecretFlag;
use crate::duration::parse_seconds;
use crate::reference::Reference;
use crate::settings::ConnectionFlags;

const EXAMPLES: &str = "\
Examples:
  keywrap exec -- python app.py
  keywrap exec --secret OPENAI_API_KEY=secret/openai#api_key -- python app.py
  keywrap exec --dry-run -- python app.py
  keywrap audit setup
  keywrap rotate secret/openai#api_key < new-key.txt
  keywrap status --check
  keywrap audit report --log /var/log/vault/audit.log

Connection and login options (--address, --auth-method, ...) are in the help of each
subcommand that talks to Vault, e.g. `keywrap exec --help`; `man keywrap` has everything.
Docs: docs/ in the keywrap repository (references, configuration, exit codes, threat model).";

/// The help headings of the options that only subcommands talking to Vault show.
const CONNECTION_HEADING: &str = "Connection";
const LOGIN_HEADING: &str = "Login";

/// The subcommands (by path) that talk to Vault. Only their help shows the connection and
/// login options; every subcommand accepts them, before or after its name.
const VAULT_SUBCOMMANDS: &[&[&str]] = &[
    &["exec"],
    &["check"],
    &["read"],
    &["init"],
    &["policy"],
    &["audit", "setup"],
    &["scan"],
    &["proxy"],
    &["rotate"],
    &["import"],
    &["status"],
];

/// Keep API keys out of code, files and logs: run a program with keys from Vault or
/// OpenBao in its environment only, every read in Vault's audit trail.
#[derive(Debug, Parser)]
#[command(name = "keywrap", version, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// Say what keywrap does (config used, token source, paths read); never values.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,

    /// Use this keywrap.toml instead of looking for one from the current directory up.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// keywrap's command line, as parsed and as its help, completions and man pages show it:
/// the connection and login options are global, but listed (under their own headings) only
/// by the subcommands in [`VAULT_SUBCOMMANDS`].
pub fn command() -> clap::Command {
    let root = Cli::command().mut_args(|arg| {
        let shown_only_where_used = is_vault_option(&arg);
        arg.hide(shown_only_where_used)
    });
    let shown: Vec<Arg> = root
        .get_arguments()
        .filter(|arg| is_vault_option(arg))
        .map(|arg| arg.clone().hide(false))
        .collect();
    // A subcommand that has an argument of a global's id keeps its own copy, visible here;
    // the parsed value still lands in `Cli`.
    VAULT_SUBCOMMANDS
        .iter()
        .fold(root, |root, path| show_on(root, path, &shown))
}

fn is_vault_option(arg: &Arg) -> bool {
    matches!(
        arg.get_help_heading(),
        Some(CONNECTION_HEADING | LOGIN_HEADING)
    )
}

fn show_on(command: clap::Command, path: &[&str], options: &[Arg]) -> clap::Command {
    match path.split_first() {
        None => command.args(options.iter().cloned()),
        Some((name, rest)) => command.mut_subcommands(|sub| {
            if sub.get_name() == *name {
                show_on(sub, rest, options)
            } else {
                sub
            }
        }),
    }
}

impl Cli {
    /// Parses the process's arguments with [`command`].
    pub fn try_parse_args() -> Result<Cli, clap::Error> {
        Self::try_parse_words(std::env::args_os())
    }

    /// Parses `words` (the program name first) with [`command`].
    pub fn try_parse_words<I, T>(words: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches: ArgMatches = command().try_get_matches_from(words)?;
        Cli::from_arg_matches(&matches)
    }
}

/// Connection settings; each overrides its VAULT_*/BAO_* variable and keywrap.toml.
#[derive(Debug, Args)]
#[command(next_help_heading = CONNECTION_HEADING)]
pub struct ConnectionArgs {
    /// Vault address; the nodes of a cluster comma-separated [env: VAULT_ADDR, BAO_ADDR]
    #[arg(long, global = true, value_name = "URL")]
    pub address: Option<String>,
    /// Vault Enterprise / OpenBao namespace [env: VAULT_NAMESPACE, BAO_NAMESPACE]
    #[arg(long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// CA certificate (PEM) to verify Vault with [env: VAULT_CACERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Directory of CA certificates [env: VAULT_CAPATH]
    #[arg(long, global = true, value_name = "DIR")]
    pub ca_path: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client auth [env: VAULT_CLIENT_CERT]
    #[arg(long, global = true, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM) for TLS client auth [env: VAULT_CLIENT_KEY]
    #[arg(long, global = true, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Do not verify Vault's certificate (testing only) [env: VAULT_SKIP_VERIFY]
    #[arg(long, global = true)]
    pub tls_skip_verify: bool,
    /// Give up talking to Vault after this many seconds in all (retries included)
    /// [default: 30]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
}

impl ConnectionArgs {
    pub fn flags(&self) -> ConnectionFlags {
        ConnectionFlags {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            ca_cert: self.ca_cert.clone(),
            ca_path: self.ca_path.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            skip_verify: self.tls_skip_verify,
            timeout: self.timeout,
        }
    }
}

/// clap's parser for `--secret NAME=REF`. Its errors do not repeat the argument, as clap's
/// own would: a key typed where its reference belongs stays out of the terminal and CI logs
/// (the message names the parts that are safe to show).
#[derive(Clone)]
pub struct SecretFlagParser;

impl clap::builder::TypedValueParser for SecretFlagParser {
    type Value = SecretFlag;

    fn parse_ref(
        &self,
        _command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<SecretFlag, clap::Error> {
        let problem = match value.to_str() {
            Some(text) => match text.parse() {
                Ok(flag) => return Ok(flag),
                Err(problem) => problem,
            },
            None => "NAME=REF is not valid UTF-8".to_string(),
        };
        Err(clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("invalid --secret: {problem}\n"),
        ))
    }
}

/// clap's parser for a REF argument: like [`SecretFlagParser`], its errors do not repeat the
/// argument (clap's own would), since a key typed where its reference belongs must stay out
/// of the terminal; the reference's own message shows the text only when it cannot be a key.
#[derive(Clone)]
pub struct ReferenceParser;

impl clap::builder::TypedValueParser for ReferenceParser {
    type Value = Reference;

    fn parse_ref(
        &self,
        _command: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Reference, clap::Error> {
        let problem = match value.to_str() {
            Some(text) => match text.parse() {
                Ok(reference) => return Ok(reference),
                Err(problem) => problem.to_string(),
            },
            None => "REF is not valid UTF-8".to_string(),
        };
        Err(clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("{problem}\n"),
        ))
    }
}

fn parse_signal(text: &str) -> Result<nix::sys::signal::Signal, String> {
    if let Ok(number) = text.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(number)
            .map_err(|_| format!("{text:?} is not a signal number"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse()
        .map_err(|_| format!("{text:?} is not a signal name (like TERM, INT, HUP)"))
}

/// How to log in; each overrides its KEYWRAP_* variable and keywrap.toml [auth].
#[derive(Debug, Args)]
#[command(next_help_heading = LOGIN_HEADING)]
pub struct AuthArgs {
    /// Auth method: token, approle, jwt, kubernetes (default: picked from what is found)
    #[arg(long, global = true, value_name = "METHOD", visible_alias = "method")]
    pub auth_method: Option<Method>,
    /// Mount path of the auth method (default: the method's name)
    #[arg(long, global = true, value_name = "PATH", visible_alias = "mount")]
    pub auth_mount: Option<String>,
    /// Vault role to log in as (jwt, kubernetes)
    #[arg(long, global = true, value_name = "ROLE", visible_alias = "role")]
    pub auth_role: Option<String>,
    /// File holding the AppRole role ID
    #[arg(long, global = true, value_name = "FILE")]
    pub role_id_file: Option<PathBuf>,
    /// File holding the AppRole secret ID
    #[arg(long, global = true, value_name = "FILE")]
    pub secret_id_file: Option<PathBuf>,
    /// The secret ID is a response-wrapping token: unwrap it first
    #[arg(long, global = true)]
    pub secret_id_wrapped: bool,
    /// File holding a JWT for jwt login
    #[arg(long, global = true, value_name = "FILE")]
    pub jwt_file: Option<PathBuf>,
    /// Variable holding a JWT for jwt login (e.g. a GitLab id_tokens name)
    #[arg(long, global = true, value_name = "NAME")]
    pub jwt_env: Option<String>,
    /// Audience to request from GitHub Actions' OIDC token service
    #[arg(long, global = true, value_name = "AUD", visible_alias = "audience")]
    pub jwt_audience: Option<String>,
    /// Kubernetes service-account token file
    #[arg(long, global = true, value_name = "FILE")]
    pub kubernetes_token_file: Option<PathBuf>,
}

impl AuthArgs {
    pub fn flags(&self) -> AuthFlags {
        AuthFlags {
            method: self.auth_method,
            mount: self.auth_mount.clone(),
            role: self.auth_role.clone(),
            role_id_file: self.role_id_file.clone(),
            secret_id_file: self.secret_id_file.clone(),
            secret_id_wrapped: self.secret_id_wrapped,
            jwt_file: self.jwt_file.clone(),
            jwt_env: self.jwt_env.clone(),
            audience: self.jwt_audience.clone(),
            kubernetes_token_file: self.kubernetes_token_file.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(visible_alias = "run")]
    Exec(ExecArgs),
    Check(CheckArgs),
    Read(ReadArgs),
    Init(InitArgs),
    Policy(PolicyArgs),
    /// Vault's audit trail: register keywrap's headers (setup), and report who read which
    /// key from an audit log (report).
    #[command(
        subcommand,
        after_help = "\
Examples:
  keywrap audit setup
  keywrap audit report --log /var/log/vault/audit.log"
    )]
    Audit(AuditCommand),
    Scan(ScanArgs),
    /// The git pre-commit hook that runs `keywrap scan --staged`.
    #[command(subcommand)]
    Hook(HookCommand),
    Proxy(Box<ProxyArgs>),
    Rotate(RotateArgs),
    Import(ImportArgs),
    Status(StatusArgs),
    Trust(TrustArgs),
    Untrust(UntrustArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  keywrap completions bash > ~/.local/share/bash-completion/completions/keywrap
  keywrap completions zsh > \"${fpath[1]}/_keywrap\"
  keywrap completions fish > ~/.config/fish/completions/keywrap.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    Man(ManArgs),
    /// Print keywrap's version (as --version does).
    Version,
}

/// Text for people, or JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table or lines for people.
    #[value(alias = "table")]
    Text,
    /// One JSON document.
    Json,
}

/// Print one secret value on stdout: the one keywrap command that shows a secret on purpose.
///
/// For a program that cannot take its key from the environment; wherever one can,
/// `keywrap exec` keeps the value out of the terminal, shell history and files. A terminal
/// gets the value and a newline; a pipe or file gets exactly the value (no newline added),
/// so `> key.pem` and `$(keywrap read ...)` get the bytes Vault holds. The read is in
/// Vault's audit trail like any other.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap read secret/openai#api_key | pbcopy
  (umask 077; keywrap read 'secret/tls?version=3#key' > server.key)
  keywrap read secret/registry#password | docker login -u ci --password-stdin registry.example.com

Never in a CI log: `keywrap exec -- CMD` gives CMD the key and conceals it in its output.
Exit status: 0; 125 if the value cannot be read.")]
pub struct ReadArgs {
    /// The field to print: [vault://]PATH[?version=N]#FIELD.
    #[arg(value_name = "REF", value_parser = ReferenceParser)]
    pub reference: Reference,

    /// End the value with a newline even when stdout is not a terminal.
    #[arg(long, overrides_with = "no_newline")]
    pub newline: bool,

    /// Never add a newline, not even on a terminal (as `op read -n`).
    #[arg(short = 'n', long, overrides_with = "newline")]
    pub no_newline: bool,
}

/// Write a keywrap.toml: a commented start, or references for the credentials of an
/// existing .env file (--from-env) or for the fields of a Vault path (--from-vault).
///
/// Only names and references are written, never a value: the values stay in Vault (or in
/// the .env file, until `keywrap import` moves them). An existing keywrap.toml is kept
/// unless --force.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap init
  keywrap init --from-env .env --to secret/myapp     # then: keywrap import .env --to secret/myapp
  keywrap init --from-vault secret/myapp             # every field of secret/myapp and the secrets under it
  keywrap init --from-vault secret/myapp --stdout    # show it, write nothing

Docs: docs/configuration.md")]
pub struct InitArgs {
    /// Add a reference for each credential in this dotenv file (as `keywrap import` would
    /// name it); plain settings are listed in a comment. Values are not read into the file.
    #[arg(long, value_name = "FILE", conflicts_with = "from_vault")]
    pub from_env: Option<PathBuf>,

    /// With --from-env: the KV path the references point at [default: secret/NAME, NAME being
    /// the directory's name].
    #[arg(long, value_name = "PATH", requires = "from_env")]
    pub to: Option<String>,

    /// Add a reference for each field of the secret at PATH and of the secrets directly under
    /// it (a KV listing). Reads the secrets to learn their field names; prints no value.
    #[arg(long, value_name = "PATH")]
    pub from_vault: Option<String>,

    /// Print the file on stdout instead of writing keywrap.toml.
    #[arg(long)]
    pub stdout: bool,

    /// Replace an existing keywrap.toml.
    #[arg(long)]
    pub force: bool,
}

/// Print keywrap's man page (roff), or write one page per subcommand into a directory.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap man | man -l -
  keywrap man --out-dir ~/.local/share/man/man1     # keywrap.1, keywrap-exec.1, ...")]
pub struct ManArgs {
    /// Write keywrap.1 and a keywrap-SUBCOMMAND.1 for each subcommand into DIR.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Run a command with secrets from Vault in its environment only.
///
/// References come from keywrap.toml's [env] table and --secret flags (flags win by name).
/// The command gets the current environment plus the secrets, minus every Vault credential.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap exec -- python app.py
  keywrap exec -s OPENAI_API_KEY=secret/openai#api_key -- node server.js
  keywrap exec -s DB_PASSWORD=kv/db?version=3#password -- ./migrate
  keywrap exec --dry-run -- python app.py     # what would be injected, from where

Exit status: the command's own; 128+N if it died of signal N; 125 if keywrap failed;
126 if the command cannot be executed; 127 if it was not found.")]
pub struct ExecArgs {
    /// Inject the field REF ([vault://]PATH[?version=N]#FIELD) as variable NAME.
    #[arg(short = 's', long = "secret", value_name = "NAME=REF", value_parser = SecretFlagParser)]
    pub secrets: Vec<SecretFlag>,

    /// List each variable with its reference and origin; read nothing, start nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: the plan as text or as JSON.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, requires = "dry_run")]
    pub format: OutputFormat,

    /// Read variables from a dotenv file; vault://PATH#FIELD values are references,
    /// others plain settings. Repeatable; later files win, --secret wins over all.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,

    /// Replace secret values (and their base64, URL and hex forms) in the command's output with
    /// <concealed by keywrap>. Default: on for output that is not a terminal; with a
    /// terminal, --mask runs the command on a pseudo-terminal keywrap filters.
    #[arg(long, overrides_with = "no_mask")]
    pub mask: bool,

    /// Never filter the command's output.
    #[arg(long, overrides_with = "mask")]
    pub no_mask: bool,

    /// Restart the command when a referenced secret gets a new version, checking KV v2
    /// metadata (versions only) every INTERVAL (30s, 5m, or seconds; default 60s).
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true,
          default_missing_value = "60s", value_parser = crate::duration::parse_interval)]
    pub watch: Option<Duration>,

    /// Signal that asks the command to stop before a --watch restart (TERM, HUP, SIGUSR1, 15...).
    #[arg(long, value_name = "SIGNAL", default_value = "TERM", value_parser = parse_signal)]
    pub restart_signal: nix::sys::signal::Signal,

    /// How long a restart waits after --restart-signal before KILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::duration::parse_interval)]
    pub restart_timeout: Duration,

    /// Read through a short-lived child token made for this run (limited uses and TTL,
    /// the run's identity as metadata in every audit entry), revoked when the command
    /// exits. The token in use needs "update" on auth/token/create.
    #[arg(long)]
    pub per_run_token: bool,

    /// Fail (status 125) instead of warning when a key is older than its max_age.
    #[arg(long)]
    pub strict_age: bool,

    /// The command and its arguments. Everything from the first word that is not an option
    /// on is the command's; a mistyped option before it is a usage error (125), not a
    /// command named `--dryrun`.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl ExecArgs {
    /// `--mask` (true), `--no-mask` (false), or neither.
    pub fn mask_choice(&self) -> Option<bool> {
        match (self.mask, self.no_mask) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// Verify that every reference resolves and is readable with the current login, without
/// printing any value (a CI preflight step). Exits 1 naming each failing reference.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap check
  keywrap check -s OPENAI_API_KEY=secret/openai#api_key
  keywrap check --format json")]
pub struct CheckArgs {
    /// Also check REF as variable NAME ([vault://]PATH[?version=N]#FIELD).
    #[arg(short = 's', long = "secret", value_name = "NAME=REF", value_parser = SecretFlagParser)]
    pub secrets: Vec<SecretFlag>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

/// Print the minimal Vault policy (HCL) that reads exactly the referenced secrets.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap policy | vault policy write myapp-ci -
  keywrap policy --metadata      # also for keywrap status / exec --watch")]
pub struct PolicyArgs {
    /// Also grant reading REF, as variable NAME.
    #[arg(short = 's', long = "secret", value_name = "NAME=REF", value_parser = SecretFlagParser)]
    pub secrets: Vec<SecretFlag>,
    /// Also grant reading KV v2 metadata (needed by `keywrap status` and `exec --watch`).
    #[arg(long)]
    pub metadata: bool,
    /// Also allow creating per-run child tokens (`exec --per-run-token`).
    #[arg(long)]
    pub per_run_token: bool,
    /// The role's tokens lack Vault's default policy: also grant lookup-self, renew-self and
    /// revoke-self, which keywrap uses to renew and revoke the token it logs in with.
    #[arg(long)]
    pub no_default_policy: bool,
}

/// Serve an HTTP proxy that adds API keys from Vault to upstream requests: clients get
/// their own revocable, rate-limited keys and never see the real one.
///
/// Routes come from keywrap.toml's [[proxy.routes]], or from --upstream and --header for one
/// route; {NAME} in a header is the secret NAME from [env] or --secret.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    next_help_heading = "Proxy options",
    after_help = "\
Examples:
  keywrap proxy keys create webapp --rpm 60 --tpm 40000
  keywrap proxy --upstream https://api.openai.com -s OPENAI=secret/openai#api_key \\
      --header 'Authorization: Bearer {OPENAI}' --metrics 127.0.0.1:9464
  curl -H \"Authorization: Bearer $CLIENT_KEY\" http://127.0.0.1:8787/v1/models"
)]
pub struct ProxyArgs {
    #[command(subcommand)]
    pub command: Option<ProxyCommand>,

    /// Address to serve on [default: 127.0.0.1:8787]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Forward everything to this base URL (one route at /; replaces [[proxy.routes]]).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// A header to set on upstream requests, 'Name: template' with {NAME} for a secret
    /// [default with one --secret NAME: 'Authorization: Bearer {NAME}']
    #[arg(long = "header", value_name = "HEADER", requires = "upstream")]
    pub headers: Vec<String>,
    /// The secret REF ([vault://]PATH[?version=N]#FIELD) as NAME for header templates.
    #[arg(short = 's', long = "secret", value_name = "NAME=REF", value_parser = SecretFlagParser)]
    pub secrets: Vec<SecretFlag>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Forward requests that carry no client key (they are still counted, as "anonymous").
    #[arg(long)]
    pub allow_anonymous: bool,
    /// KV v2 path of the client keys [default: secret/keywrap/proxy-keys]
    #[arg(long, value_name = "PATH", global = true)]
    pub keys_path: Option<String>,
    /// After a key rotation, retry a request once with the previous key if the upstream
    /// answers 401: until the next rotation, or for DURATION (e.g. 1h) [default: off, or
    /// the `overlap` of the secrets' [env] entries]
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "on")]
    pub overlap: Option<String>,
    /// Seconds to connect to the upstream [default: 10]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub connect_timeout: Option<Duration>,
    /// Seconds to wait for the upstream's response headers [default: 600]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub upstream_timeout: Option<Duration>,
    /// Retries of idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) after a connection
    /// error, a timeout, 502, 503 or 504 [default: 2]
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// CA certificate (PEM) to verify the upstream with, instead of the system roots.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Seconds between full reloads of the client keys from Vault (changed limits; a revoked
    /// or new key is seen within a second) [default: 10]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub keys_reload: Option<Duration>,
    /// Seconds between checks of the secrets' versions in Vault [default: 2]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub watch_interval: Option<Duration>,
    /// Seconds to let in-flight requests finish after SIGTERM [default: 30]
    #[arg(long, alias = "shutdown-timeout", value_name = "SECONDS", value_parser = parse_seconds)]
    pub shutdown_deadline: Option<Duration>,
    /// Access log on stderr, one line per request: text, json or off [default: text]
    #[arg(long, alias = "log-format", value_name = "FORMAT")]
    pub access_log: Option<String>,
    /// Let browser apps from this origin (e.g. https://app.example.com, or *) call the proxy
    /// (CORS); repeat for several.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Accept this Host header too (besides the listen address); repeat for several. Others
    /// get 421 (DNS rebinding).
    #[arg(long = "allowed-host", value_name = "HOST[:PORT]")]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once [default: 4096, at most the file descriptor limit]
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections open at once from one client address [default: 512]
    #[arg(long, value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Seconds a new connection may take to send its first byte [default: 5]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub first_byte_timeout: Option<Duration>,
    /// Tokens a request is expected to ask for when its body names no max_tokens (the
    /// reservation for keys with a token limit or budget) [default: 4096]
    #[arg(long, value_name = "TOKENS")]
    pub default_max_tokens: Option<u64>,
    /// Worker threads [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Client keys: create, list, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a client key; prints it once on stdout. Vault keeps only its SHA-256 hash.
    Create(KeyCreateArgs),
    /// List client keys and their limits (never the keys).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Revoke a client key; a running proxy refuses it at its next key reload.
    Revoke {
        /// The key's name.
        name: String,
    },
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Key options")]
pub struct KeyCreateArgs {
    /// A name for the client (letters, digits, '.', '_', '-'); it labels metrics and logs.
    pub name: String,
    /// Allow only this route prefix (repeat, or separate with commas) [default: all routes]
    #[arg(
        long = "route",
        alias = "routes",
        value_name = "PREFIX",
        value_delimiter = ','
    )]
    pub routes: Vec<String>,
    /// Allow only this model in JSON request bodies (repeat, or separate with commas)
    /// [default: any]
    #[arg(
        long = "model",
        alias = "models",
        value_name = "MODEL",
        value_delimiter = ','
    )]
    pub models: Vec<String>,
    /// Requests per minute [default: unlimited]
    #[arg(long, alias = "requests-per-minute", value_name = "N")]
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute [default: unlimited]
    #[arg(long, alias = "tokens-per-minute", value_name = "N")]
    pub tpm: Option<u64>,
    /// Total tokens this key may use, ever; what it spent is kept in Vault, so restarting the
    /// proxy does not renew it [default: unlimited]
    #[arg(long, value_name = "TOKENS")]
    pub budget: Option<u64>,
    /// Requests in flight at once [default: no cap]
    #[arg(long, alias = "max-concurrent", value_name = "N")]
    pub concurrency: Option<u64>,
}

/// Find API keys and other secrets in files, git history, staged changes or piped text.
///
/// Files and directories honour .gitignore and .keywrapignore and skip binary and huge
/// files. Findings show file, line, column, rule and a redacted preview, never the key.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap scan                       # the current directory
  keywrap scan --git                 # every blob in the repository's history, once
  keywrap scan --staged              # what `git commit` would commit (the pre-commit hook)
  git diff | keywrap scan --stdin
  keywrap scan --vault               # also the exact values keywrap.toml references
  keywrap scan --format sarif > keywrap.sarif
  keywrap scan --write-baseline .keywrap-baseline.json   # accept what is there today
  keywrap scan --baseline .keywrap-baseline.json         # fail only on new leaks

Suppress one line with a `keywrap:allow` comment on it.
Exit status: 1 if anything was found, 0 if clean, 2 on a usage or I/O error.")]
pub struct ScanArgs {
    /// Files and directories to scan [default: .]; with --git or --staged, a directory in
    /// the repository.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Scan every blob in the git history (all refs), each once, with the commit that
    /// introduced it.
    #[arg(long, conflicts_with_all = ["staged", "stdin"])]
    pub git: bool,

    /// Scan what `git commit` would commit: the staged files, reporting only the lines the
    /// commit adds (a key already committed in an edited file is not reported again).
    #[arg(long, conflicts_with = "stdin")]
    pub staged: bool,

    /// Scan standard input.
    #[arg(long, conflicts_with = "paths")]
    pub stdin: bool,

    /// Run as a hook of the pre-commit framework: the PATHs are the files it passes (the
    /// staged files, or every file with `pre-commit run --all-files`); the repository's
    /// top-level .keywrapignore applies to them, and no PATH means nothing to scan.
    #[arg(long, conflicts_with_all = ["git", "staged", "stdin"])]
    pub pre_commit: bool,

    /// Also find the exact values that keywrap.toml references in Vault (compared as keyed
    /// hashes; never printed).
    #[arg(long)]
    pub vault: bool,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: crate::scan::report::Format,

    /// Add rules from a TOML file of [[rules]] (a rule with a built-in id replaces it).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// Report only findings whose fingerprint is not in this baseline file.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write the fingerprints of all findings to FILE and exit 0 (adopt the scanner in a
    /// repository with known leaks).
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Skip files larger than this many MiB.
    #[arg(long, value_name = "MIB", default_value_t = 10)]
    pub max_file_size: u64,

    /// Worker threads [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Print the rules (built-in, keywrap.toml's and --rules files') and exit: one line
    /// each, or with --format json an array of objects.
    #[arg(long, conflicts_with_all = ["git", "staged", "stdin", "vault", "baseline", "write_baseline", "paths"])]
    pub list_rules: bool,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Install a pre-commit hook running `keywrap scan --staged`. An existing hook is kept
    /// and run first; --force replaces a hook that cannot be kept.
    Install {
        /// Replace a foreign hook that cannot be chained.
        #[arg(long)]
        force: bool,
    },
    /// Remove keywrap's pre-commit hook (and put back the hook it chained, if any).
    Uninstall,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Register keywrap's request headers (User-Agent, X-Correlation-ID, X-Keywrap-*) as
    /// audited, unhashed, so the audit log shows who read what from where. Needs `sudo` on
    /// sys/config/auditing/request-headers.
    #[command(after_help = "\
Examples:
  keywrap audit setup                      # once per Vault cluster, with a sudo-capable token
  keywrap exec -- python app.py            # its reads now show keywrap's headers in the log")]
    Setup,
    Report(ReportArgs),
}

/// Write a new version of a key (KV v2) and record the rotation; print the new version.
///
/// The new value comes from stdin or from --generate-with's output, never from an argument.
/// Every other field of the secret is kept. Check-and-set makes a concurrent rotation fail
/// instead of overwriting. A rerun completes a rotation that was interrupted. With --finish,
/// end the overlap: remove the previous version, after revoking it with --revoke-with.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  ./mint-key.sh | keywrap rotate secret/openai#api_key
  keywrap rotate --generate-with ./mint-key.sh secret/openai#api_key
  keywrap rotate --finish --revoke-with ./revoke-key.sh secret/openai#api_key
  keywrap rotate --finish --destroy secret/openai#api_key

Exit status: 0 on success; 125 on any failure, including a concurrent rotation that won.
Docs: docs/lifecycle.md")]
pub struct RotateArgs {
    /// The key to rotate: PATH#FIELD on a KV v2 mount.
    #[arg(value_name = "REF", value_parser = ReferenceParser)]
    pub reference: Reference,

    /// Run CMD (with sh -c) and use its standard output as the new key; if it fails,
    /// nothing is written.
    #[arg(long, value_name = "CMD", conflicts_with = "finish")]
    pub generate_with: Option<String>,

    /// End the overlap: delete the previous version (see --destroy).
    #[arg(long)]
    pub finish: bool,

    /// With --finish: destroy the previous version permanently instead of deleting it.
    #[arg(long, requires = "finish", overrides_with = "delete")]
    pub destroy: bool,

    /// With --finish: delete the previous version (soft, `vault kv undelete` restores it);
    /// the default, spelled out.
    #[arg(long, requires = "finish", overrides_with = "destroy")]
    pub delete: bool,

    /// With --finish: first run CMD (with sh -c) with the old key on its stdin to revoke it
    /// at the provider; if it fails, the previous version is kept.
    #[arg(long, value_name = "CMD", requires = "finish")]
    pub revoke_with: Option<String>,
}

/// Show each key's version, age and state against its max_age; reads metadata, never values.
///
/// Without REFs, every reference in keywrap.toml. A key is "rotate soon" within 14 days of
/// its max_age (per reference, or [policy] max_age, default 90d) and "overdue" past it.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap status
  keywrap status --format json secret/openai#api_key
  keywrap status --check          # in a scheduled CI job

Exit status: 0; 1 with --check when a key is overdue; 125 when a key could not be checked.
Docs: docs/lifecycle.md")]
pub struct StatusArgs {
    /// References to check instead of keywrap.toml's.
    #[arg(value_name = "REF", value_parser = ReferenceParser)]
    pub references: Vec<Reference>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,

    /// Exit with status 1 when any key is overdue.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// A table for people.
    #[value(alias = "table")]
    Text,
    Json,
}

/// Report reads of secrets from a Vault/OpenBao file audit log, and flag what to look at.
///
/// Streams the log (JSON lines, any size); never needs a secret value. Flags denied reads,
/// a path read from a host or CI job not seen before in the log, and bursts of reads.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap audit report --log /var/log/vault/audit.log
  keywrap audit report --log audit.log --path 'secret/openai*' --since 2026-11-01 --format csv
  keywrap audit report --log audit.log --host build-01 --format json
  keywrap audit report --log audit.log --since 24h --flagged --alert secret/ops#slack_webhook --alert-format slack
  keywrap audit report --log audit.log --flagged --alert-env SLACK_WEBHOOK

Docs: docs/audit-report.md")]
pub struct ReportArgs {
    /// The audit log file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,

    /// Only this secret path: a prefix (secret/team/) or a glob with * and ? (secret/*/openai),
    /// as references write it (secret/openai) or as the log has it (secret/data/openai).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Only reads at or after this time: RFC 3339, a date, or an age such as 24h or 7d.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only reads before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Only reads whose X-Keywrap-Host header (or, for other clients, remote address) is HOST.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// Only flagged reads.
    #[arg(long)]
    pub flagged: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Also send one alert per flag and path shown to the webhook whose URL is in Vault at
    /// this reference (PATH#FIELD): a webhook URL is a secret, so never the URL itself.
    #[arg(long, value_name = "REF", conflicts_with = "alert_env")]
    pub alert: Option<String>,

    /// Like --alert, with the webhook URL read from this environment variable.
    #[arg(long, value_name = "NAME")]
    pub alert_env: Option<String>,

    /// The alerts' body: a Slack incoming-webhook message or plain JSON.
    #[arg(long, value_enum, default_value_t = AlertFormat::Json)]
    pub alert_format: AlertFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertFormat {
    Slack,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A table for people.
    #[value(alias = "table")]
    Text,
    Json,
    Csv,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        command().debug_assert();
    }

    fn help_of(path: &[&str]) -> String {
        let mut command = command();
        command.build();
        let mut sub = &mut command;
        for name in path {
            sub = sub.find_subcommand_mut(name).unwrap();
        }
        sub.render_long_help().to_string()
    }

    #[test]
    fn connection_and_login_options_show_only_where_vault_is_used() {
        for path in VAULT_SUBCOMMANDS {
            let help = help_of(path);
            assert_eq!(
                help.matches("--address <URL>").count(),
                1,
                "{path:?}:\n{help}"
            );
            assert!(
                help.contains("\nConnection:\n") && help.contains("\nLogin:\n"),
                "{path:?}"
            );
        }
        for path in [
            &[][..],
            &["completions"],
            &["hook", "install"],
            &["audit", "report"],
            &["man"],
            &["version"],
        ] {
            let help = help_of(path);
            assert!(!help.contains("--address <URL>"), "{path:?}:\n{help}");
            assert!(
                !help.contains("--auth-method <METHOD>"),
                "{path:?}:\n{help}"
            );
        }
        // The proxy's key commands talk to Vault too.
        assert!(help_of(&["proxy", "keys", "list"]).contains("--auth-role"));
    }

    #[test]
    fn connection_options_are_taken_before_or_after_the_subcommand() {
        for words in [
            &["keywrap", "--address", "http://a:1", "exec", "--", "true"][..],
            &["keywrap", "exec", "--address", "http://a:1", "--", "true"],
            &["keywrap", "run", "--address", "http://a:1", "true"],
            &["keywrap", "audit", "setup", "--address", "http://a:1"],
            &[
                "keywrap",
                "proxy",
                "keys",
                "list",
                "--address",
                "http://a:1",
            ],
            &["keywrap", "completions", "--address", "http://a:1", "bash"],
        ] {
            let cli = Cli::try_parse_words(words.iter().copied()).unwrap();
            assert_eq!(
                cli.connection.address.as_deref(),
                Some("http://a:1"),
                "{words:?}"
            );
        }
        let cli = Cli::try_parse_words(["keywrap", "check", "--auth-role", "ci", "--jwt-env", "T"])
            .unwrap();
        assert_eq!(cli.auth.auth_role.as_deref(), Some("ci"));
        assert_eq!(cli.auth.jwt_env.as_deref(), Some("T"));
    }

    #[test]
    fn run_is_exec() {
        let cli = Cli::try_parse_words(["keywrap", "run", "--dry-run", "--", "env"]).unwrap();
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert!(exec.dry_run);
        assert_eq!(exec.command, ["env"]);
    }

    #[test]
    fn exec_takes_the_command_after_double_dash() {
        let cli = Cli::try_parse_words([
            "keywrap",
            "exec",
            "--secret",
            "A=secret/a#b",
            "--config",
            "x.toml",
            "--",
            "python",
            "-c",
            "print(1)",
        ])
        .unwrap();
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.command, ["python", "-c", "print(1)"]);
        assert_eq!(exec.secrets[0].name, "A");
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
    }

    #[test]
    fn exec_options_end_at_the_command() {
        let exec = |words: &[&str]| {
            let cli = Cli::try_parse_words(["keywrap", "exec"].iter().chain(words))?;
            let Command::Exec(exec) = cli.command else {
                panic!("not exec")
            };
            Ok::<_, clap::Error>(exec.command)
        };
        assert_eq!(exec(&["python", "-c", "x"]).unwrap(), ["python", "-c", "x"]);
        assert_eq!(
            exec(&["--", "-weird", "--dry-run"]).unwrap(),
            ["-weird", "--dry-run"]
        );
        let err = exec(&["--dryrun", "--", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}

/// Trust a keywrap.toml: let it set what can send your Vault token or files elsewhere.
///
/// A keywrap.toml comes with the code you cloned. Until you trust it, keywrap takes its
/// references but not its Vault address, namespace, TLS files, [auth] files and variables,
/// env files outside its directory, or proxy upstreams (flags and VAULT_*/KEYWRAP_*
/// variables need no trust). Trust records the file's path and the SHA-256 of its content
/// in ~/.config/keywrap/trusted (no secrets); a changed file is untrusted again.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap trust                       # the keywrap.toml found from here up
  keywrap trust ../service/keywrap.toml
  keywrap trust --list
  keywrap untrust

In CI, KEYWRAP_TRUST=keywrap.toml trusts the repository's own file for the job.
Docs: docs/configuration.md (Trust)")]
pub struct TrustArgs {
    /// The keywrap.toml to trust [default: --config, else the one found from the current
    /// directory up]
    #[arg(value_name = "PATH", conflicts_with = "list")]
    pub path: Option<PathBuf>,
    /// List the trusted files, and whether each is unchanged since it was trusted.
    #[arg(long)]
    pub list: bool,
}

/// Forget the trust in a keywrap.toml (its sensitive settings are refused again).
#[derive(Debug, Args)]
pub struct UntrustArgs {
    /// The keywrap.toml [default: --config, else the one found from the current directory up]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// Move the secrets of a dotenv file into Vault and leave references behind.
///
/// Values that a scan rule matches, or whose name looks like a credential's (KEY, TOKEN,
/// SECRET, PASSWORD, ...), go to Vault; plain settings stay. The values are written and read
/// back before any local file changes; keywrap.toml gets references (or, with --env-refs,
/// the env file gets vault:// lines), the env file is added to .gitignore, and keywrap says
/// whether the file was ever committed (then rotate the keys). Never prints a value.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  keywrap import .env --to secret/myapp --dry-run
  keywrap import .env --to secret/myapp
  keywrap import .env --to secret/myapp --split --env-refs --yes

Exit status: 0 on success; 125 on any failure (the message says what was left unchanged).
Docs: docs/import.md")]
pub struct ImportArgs {
    /// The dotenv file to import.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// The KV v2 secret path to write to (e.g. secret/myapp).
    #[arg(long, value_name = "PATH")]
    pub to: String,

    /// One secret per variable at PATH/NAME (field `value`) instead of one field each in PATH.
    #[arg(long)]
    pub split: bool,

    /// Rewrite the env file with NAME=vault://REF lines (for `exec --env-file`) instead of
    /// adding references to keywrap.toml.
    #[arg(long)]
    pub env_refs: bool,

    /// Replace fields that already exist in Vault with a different value (and keywrap.toml
    /// entries that name another reference).
    #[arg(long)]
    pub overwrite: bool,

    /// Do not ask before rewriting files.
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Show the plan (names, references, files) and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also move the secrets the import would leave in plaintext: passwords inside URLs and
    /// keys in comments (asked on a terminal when not given).
    #[arg(long)]
    pub move_leftovers: bool,
}
