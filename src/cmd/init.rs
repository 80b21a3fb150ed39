//! `keywrap init`: write a keywrap.toml, blank or from what the project already has (a .env
//! file's names, a Vault path's fields). Names and references only: no value is written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, InitArgs};
use crate::config::{self, LoadedConfig};
use crate::dotenv::{self, EnvValue};
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::import::classify;
use crate::reference::Reference;
use crate::scan::matcher::Matcher;
use crate::session::Session;
use crate::vault::kv::{self, KvError};
use crate::vault::VaultClient;

const HEADER: &str = "\
# keywrap.toml: the secrets this project needs and where they are in Vault or OpenBao.
# References only, never values: commit it. Docs: docs/configuration.md, docs/references.md
#
#   keywrap exec -- CMD     run CMD with the secrets in its environment
#   keywrap check           every reference readable? (a CI preflight)
#   keywrap policy          the Vault policy that reads exactly these
";

const VAULT_SECTION: &str = "\
[vault]
# address = \"https://vault.example.com:8200\"   # or VAULT_ADDR (variables and flags win)
";

/// One `[env]` line to write.
struct Entry {
    name: String,
    reference: String,
}

pub fn run(cli: &Cli, args: &InitArgs) -> Result<ExitCode> {
    let target = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::FILE_NAME));
    if target.exists() && !args.force && !args.stdout {
        bail!(
            "{} already exists; --force replaces it, --stdout shows what init would write",
            target.display()
        );
    }
    let (text, next_steps) = if let Some(env_file) = &args.from_env {
        from_env(env_file, args.to.as_deref())?
    } else if let Some(path) = &args.from_vault {
        from_vault(cli, &target, path)?
    } else {
        let text = format!(
            "{HEADER}\n{VAULT_SECTION}\n[env]\n# VARIABLE = \"PATH#FIELD\", for example:\n# OPENAI_API_KEY = \"secret/openai#api_key\"\n"
        );
        let next = "add references under [env], then run `keywrap exec -- CMD`".to_string();
        (text, next)
    };
    // What init writes, keywrap must be able to load.
    LoadedConfig::parse(&target, text.clone())?;
    if args.stdout {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::write(&target, &text).with_context(|| format!("cannot write {}", target.display()))?;
    crate::log::note(format_args!("wrote {}; {next_steps}", target.display()));
    Ok(ExitCode::SUCCESS)
}

/// A reference for each credential in the env file, pointing where `keywrap import --to`
/// would store it; its references as they are; plain settings named in a comment.
fn from_env(path: &Path, to: Option<&str>) -> Result<(String, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let to = match to {
        Some(to) => to.trim_end_matches('/').to_string(),
        None => default_path()?,
    };
    let matcher = Matcher::new(&crate::scan::rules::builtin())?;
    let entries = dotenv::parse_quietly(path, &text, &mut BTreeMap::new(), &|_| None)?;
    let mut references = Vec::new();
    let mut credentials = Vec::new();
    let mut plain = Vec::new();
    for entry in entries {
        match &entry.value {
            EnvValue::Reference(reference) => references.push(Entry {
                name: entry.name.clone(),
                reference: reference.to_string(),
            }),
            EnvValue::Plain(value) => {
                let value = zeroize::Zeroizing::new(value.clone());
                if classify::classify(&matcher, &entry.name, &value).is_some() {
                    credentials.push(Entry {
                        reference: format!("{to}#{}", entry.name),
                        name: entry.name.clone(),
                    });
                } else {
                    plain.push(entry.name.clone());
                }
            }
        }
    }
    let mut out = format!("{HEADER}\n{VAULT_SECTION}\n[env]\n");
    let file = path.display();
    if !credentials.is_empty() {
        let _ = writeln!(
            out,
            "# The credentials of {file}, where `keywrap import {file} --to {to}` stores them:"
        );
        write_entries(&mut out, &credentials)?;
    }
    if !references.is_empty() {
        let _ = writeln!(out, "# The vault:// references of {file}:");
        write_entries(&mut out, &references)?;
    }
    if credentials.is_empty() && references.is_empty() {
        let _ = writeln!(out, "# {file} has no credentials to reference.");
    }
    if !plain.is_empty() {
        let _ = writeln!(
            out,
            "# Plain settings, not secrets, left in {file}: {}",
            plain.join(", ")
        );
    }
    let next = if credentials.is_empty() {
        "check the references with `keywrap check`".to_string()
    } else {
        format!(
            "{} reference(s) to {to}; the values are still only in {file}: `keywrap import {file} --to {to}` moves them into Vault",
            credentials.len()
        )
    };
    Ok((out, next))
}

/// `secret/NAME`, NAME being the current directory's name.
fn default_path() -> Result<String> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let name: String = cwd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        bail!("--to PATH is needed: the current directory has no name to use");
    }
    Ok(format!("secret/{name}"))
}

/// A reference for each field of the secret at `path` and of each secret directly under it.
fn from_vault(cli: &Cli, target: &Path, path: &str) -> Result<(String, String)> {
    let path = path.trim_matches('/');
    let env = Environment::from_process();
    // The connection and login settings of a keywrap.toml around, if any.
    let loaded = match &cli.config {
        Some(explicit) if !explicit.exists() => None,
        explicit => config::locate(explicit.as_deref())?,
    };
    let runtime = crate::runtime::runtime()?;
    let entries = runtime.block_on(async {
        let session = Session::open(
            super::session_inputs(cli, &env, loaded.as_ref()),
            RunIdentity::detect(&env, Some("keywrap-init")),
        )
        .await?;
        let entries = vault_entries(&session.client, path).await;
        session.close().await;
        entries
    })?;
    let mut out = format!("{HEADER}\n[vault]\n");
    match env.get("VAULT_ADDR").or_else(|| env.get("BAO_ADDR")) {
        Some(address) => {
            let _ = writeln!(out, "address = {}", toml_string(address));
        }
        None => out.push_str("# address = \"https://vault.example.com:8200\"   # or VAULT_ADDR\n"),
    }
    let _ = writeln!(
        out,
        "\n[env]\n# The fields of {path} and of the secrets under it:"
    );
    write_entries(&mut out, &entries)?;
    let next = format!(
        "{} reference(s) to {path}; `keywrap check` reads them, `keywrap policy --config {}` prints a policy for exactly them",
        entries.len(),
        target.display()
    );
    Ok((out, next))
}

async fn vault_entries(client: &VaultClient, path: &str) -> Result<Vec<Entry>> {
    let mount = kv::find_mount(client, path).await?;
    let mut entries = Vec::new();
    match kv::read(client, &mount, path, None).await {
        Ok(secret) => {
            for field in secret.fields.keys() {
                entries.push(Entry {
                    name: env_name(field),
                    reference: format!("{path}#{field}"),
                });
            }
        }
        Err(KvError::NotFound { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    for child in kv::list(client, &mount, path).await? {
        if child.ends_with('/') {
            continue;
        }
        let child_path = format!("{path}/{child}");
        let secret = kv::read(client, &mount, &child_path, None).await?;
        let only_value = secret.fields.len() == 1 && secret.fields.contains_key("value");
        for field in secret.fields.keys() {
            // `keywrap import --split` stores one secret per variable, field `value`.
            let name = match only_value {
                true => env_name(&child),
                false => env_name(&format!("{child}_{field}")),
            };
            entries.push(Entry {
                name,
                reference: format!("{child_path}#{field}"),
            });
        }
    }
    if entries.is_empty() {
        bail!("no secret at {path} nor directly under it (`vault kv list {path}` shows what is there)");
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for entry in &entries {
        if let Some(other) = seen.insert(&entry.name, &entry.reference) {
            bail!(
                "{} and {} would both be {}; write keywrap.toml by hand for this path",
                other,
                entry.reference,
                entry.name
            );
        }
    }
    Ok(entries)
}

/// An environment variable name for a field: upper case, `_` for anything else.
fn env_name(field: &str) -> String {
    let mut name: String = field
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_uppercase(),
            _ => '_',
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn write_entries(out: &mut String, entries: &[Entry]) -> Result<()> {
    for entry in entries {
        entry.reference.parse::<Reference>().with_context(|| {
            format!(
                "{} cannot be a reference for {}",
                entry.reference, entry.name
            )
        })?;
        let _ = writeln!(out, "{} = {}", entry.name, toml_string(&entry.reference));
    }
    Ok(())
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_become_variable_names() {
        assert_eq!(env_name("api_key"), "API_KEY");
        assert_eq!(env_name("openai-key.v2"), "OPENAI_KEY_V2");
        assert_eq!(env_name("2fa"), "_2FA");
    }

    #[test]
    fn an_env_file_gives_names_and_references_never_values() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let value = "sk-proj-".to_string() + &"Ab12".repeat(12);
        std::fs::write(
            &env,
            format!("OPENAI_API_KEY={value}\nPORT=8080\nDB_PASSWORD=vault://secret/db#password\n"),
        )
        .unwrap();
        let (text, next) = from_env(&env, Some("secret/myapp/")).unwrap();
        assert!(!text.contains(&value));
        assert!(
            text.contains("OPENAI_API_KEY = \"secret/myapp#OPENAI_API_KEY\""),
            "{text}"
        );
        assert!(
            text.contains("DB_PASSWORD = \"secret/db#password\""),
            "{text}"
        );
        assert!(text.contains("left in") && text.contains("PORT"), "{text}");
        assert!(!text.contains("PORT ="), "{text}");
        assert!(next.contains("keywrap import"), "{next}");
        LoadedConfig::parse(Path::new("keywrap.toml"), text).unwrap();
    }
}
