//! `keywrap check`: every reference resolves and is readable with the current login; no
//! value is printed. A CI preflight step.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::bindings;
use crate::cli::{CheckArgs, Cli};
use crate::config;
use crate::environment::Environment;
use crate::error::SilentExit;
use crate::identity::RunIdentity;
use crate::resolve;
use crate::session::Session;

pub fn run(cli: &Cli, args: &CheckArgs) -> Result<ExitCode> {
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    let bindings = bindings::collect(loaded.as_ref(), &args.secrets)?;
    if bindings.is_empty() {
        bail!("nothing to check: no references in keywrap.toml and no --secret given");
    }
    let runtime = super::runtime()?;
    let outcomes = runtime.block_on(async {
        let session = Session::open(
            cli.session_inputs(&env, loaded.as_ref()),
            RunIdentity::detect(&env, Some("keywrap-check")),
        )
        .await?;
        let outcomes = resolve::resolve_each(&session.client, &bindings).await;
        session.close().await;
        anyhow::Ok(outcomes)
    })?;
    let mut failed = Vec::new();
    for (binding, outcome) in bindings.iter().zip(outcomes) {
        match outcome {
            Ok((_, read)) => println!(
                "ok    {} ({}){}",
                binding.name,
                binding.reference,
                read.version
                    .map(|v| format!(" version {v}"))
                    .unwrap_or_default()
            ),
            Err(problem) => {
                failed.push(format!("{} ({})", binding.name, binding.reference));
                println!("FAIL  {} ({}): {problem}", binding.name, binding.reference);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!(
            "keywrap: {} of {} references cannot be read: {}",
            failed.len(),
            bindings.len(),
            failed.join(", ")
        );
        return Err(SilentExit(1).into());
    }
    Ok(ExitCode::SUCCESS)
}
