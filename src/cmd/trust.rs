//! `keywrap trust [PATH]`, `keywrap trust --list`, `keywrap untrust [PATH]`: record, show and
//! forget which keywrap.toml files may set what can send a token or a file elsewhere (see
//! [`crate::trust`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, TrustArgs, UntrustArgs};
use crate::config::{self, LoadedConfig};
use crate::trust::store::{self, Store};
use crate::trust::{display_path, store_location};

pub fn trust(cli: &Cli, args: &TrustArgs) -> Result<ExitCode> {
    if args.list {
        return list();
    }
    let path = target(cli, args.path.as_deref())?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    // A file keywrap cannot load is not worth trusting: say what is wrong with it now.
    let loaded = LoadedConfig::parse(&path, text)?;
    let canonical = std::fs::canonicalize(&path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut store = Store::open(store_location()?)?;
    store.insert(&canonical, loaded.trust().digest())?;
    store.save()?;
    println!(
        "trusted {} (sha256 {}), recorded in {}",
        display_path(&canonical),
        &loaded.trust().digest()[..12],
        store.file().display()
    );
    let settings = loaded.sensitive_settings();
    if settings.is_empty() {
        println!(
            "it sets nothing that needs trust today; a change to it needs `keywrap trust` again"
        );
    } else {
        println!("it may now set (until it changes):");
        for setting in settings {
            println!("  {setting}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn untrust(cli: &Cli, args: &UntrustArgs) -> Result<ExitCode> {
    let path = target(cli, args.path.as_deref())?;
    // A file that is gone is still forgotten by the path it had.
    let canonical = std::fs::canonicalize(&path)
        .or_else(|_| std::path::absolute(&path))
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut store = Store::open(store_location()?)?;
    if store.remove(&canonical) {
        store.save()?;
        println!("untrusted {}", display_path(&canonical));
    } else {
        println!("{} was not trusted", display_path(&canonical));
    }
    Ok(ExitCode::SUCCESS)
}

/// Each recorded file: `trusted` (unchanged), `changed` (trust it again after a review) or
/// `missing`.
fn list() -> Result<ExitCode> {
    let store = Store::open(store_location()?)?;
    if store.entries().is_empty() {
        println!("no trusted files (store: {})", store.file().display());
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = store
        .entries()
        .iter()
        .map(|entry| {
            let state = match std::fs::read(&entry.path) {
                Ok(bytes) if store::digest(&bytes) == entry.digest => "trusted",
                Ok(_) => "changed",
                Err(_) => "missing",
            };
            vec![state.to_string(), display_path(&entry.path)]
        })
        .collect();
    let mut out = String::new();
    crate::table::render(&["STATE".into(), "PATH".into()], &rows, &mut out);
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// PATH, else `--config`, else the keywrap.toml found from the current directory up.
fn target(cli: &Cli, path: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = path.or(cli.config.as_deref()) {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    match config::discover(&cwd) {
        Some(found) => Ok(found),
        None => bail!(
            "no {} in {} or its parents; name the file: keywrap trust PATH",
            config::FILE_NAME,
            display_path(&cwd)
        ),
    }
}
