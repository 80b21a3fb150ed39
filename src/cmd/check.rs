//! `keywrap check`: every reference resolves and is readable with the current login; no
//! value is printed. A CI preflight step.

use std::process::ExitCode;

use std::io::Write;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bindings;
use crate::cli::{CheckArgs, Cli, OutputFormat};
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
        bail!(
            "nothing to check: {}",
            config::no_references(loaded.as_ref())
        );
    }
    let runtime = crate::runtime::runtime()?;
    let outcomes = runtime.block_on(async {
        let session = Session::open(
            super::session_inputs(cli, &env, loaded.as_ref()),
            RunIdentity::detect(&env, Some("keywrap-check")),
        )
        .await?;
        let outcomes = resolve::resolve_each(&session.client, &bindings).await;
        session.close().await;
        anyhow::Ok(outcomes)
    })?;
    let mut failed = Vec::new();
    let mut results = Vec::new();
    for (binding, outcome) in bindings.iter().zip(outcomes) {
        let (version, error) = match outcome {
            Ok((_, read)) => (read.version, None),
            Err(problem) => {
                failed.push(format!("{} ({})", binding.name, binding.reference));
                (None, Some(problem))
            }
        };
        results.push(Checked {
            name: binding.name.clone(),
            reference: binding.reference.to_string(),
            ok: error.is_none(),
            version,
            error,
        });
    }
    let report = match args.format {
        OutputFormat::Text => results.iter().map(Checked::line).collect::<String>(),
        OutputFormat::Json => {
            let report = serde_json::json!({ "ok": failed.is_empty(), "references": results });
            serde_json::to_string_pretty(&report)? + "\n"
        }
    };
    match std::io::stdout().lock().write_all(report.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(err).context("cannot write the report");
        }
        _ => {}
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

/// One reference's result; never its value.
#[derive(Debug, Serialize)]
struct Checked {
    name: String,
    reference: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Checked {
    fn line(&self) -> String {
        match (&self.error, self.version) {
            (Some(problem), _) => format!("FAIL  {} ({}): {problem}\n", self.name, self.reference),
            (None, Some(version)) => {
                format!(
                    "ok    {} ({}) version {version}\n",
                    self.name, self.reference
                )
            }
            (None, None) => format!("ok    {} ({})\n", self.name, self.reference),
        }
    }
}
