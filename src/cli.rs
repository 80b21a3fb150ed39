//! The command-line interface. Doc comments here are the `--help` texts.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bindings::SecretFlag;
use crate::settings::ConnectionFlags;

const EXAMPLES: &str = "\
Examples:
  keywrap exec -- python app.py
  keywrap exec --secret OPENAI_API_KEY=secret/openai#api_key -- python app.py
  keywrap exec --dry-run -- python app.py
  keywrap audit setup

Docs: docs/ in the keywrap repository (references, configuration, exit codes, threat model).";

/// Keep API keys out of code, files and logs: run a program with keys from Vault or
/// OpenBao in its environment only, every read in Vault's audit trail.
#[derive(Debug, Parser)]
#[command(name = "keywrap", version, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// Say what keywrap does (config used, token source, paths read); never values.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Use this keywrap.toml instead of looking for one from the current directory up.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Connection settings; each overrides its VAULT_*/BAO_* variable and keywrap.toml.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Vault address [env: VAULT_ADDR, BAO_ADDR]
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
    /// Give up talking to Vault after this many seconds
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

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Exec(ExecArgs),
    /// Vault's audit trail: register keywrap's headers so audit entries show them.
    #[command(subcommand)]
    Audit(AuditCommand),
    Scan(ScanArgs),
    /// The git pre-commit hook that runs `keywrap scan --staged`.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
    #[arg(short = 's', long = "secret", value_name = "NAME=REF")]
    pub secrets: Vec<SecretFlag>,

    /// List each variable with its reference and origin; read nothing, start nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<OsString>,
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

    /// Scan the staged contents of added and changed files (what `git commit` would commit).
    #[arg(long, conflicts_with = "stdin")]
    pub staged: bool,

    /// Scan standard input.
    #[arg(long, conflicts_with = "paths")]
    pub stdin: bool,

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
    Setup,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_after_double_dash() {
        let cli = Cli::parse_from([
            "keywrap", "exec", "--secret", "A=secret/a#b", "--config", "x.toml", "--", "python",
            "-c", "print(1)",
        ]);
        let Command::Exec(exec) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(exec.command, ["python", "-c", "print(1)"]);
        assert_eq!(exec.secrets[0].name, "A");
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
    }
}
