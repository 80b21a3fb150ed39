//! `keywrap exec`: resolve references, start the command with the values in its
//! environment only, supervise it, and pass on its exit status.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::bindings::{self, Binding};
use crate::child::{self, environment::ChildEnvironment, signals::Supervisor, ResolvedCommand};
use crate::cli::{Cli, ExecArgs};
use crate::config;
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::session::Session;

pub fn run(cli: &Cli, args: &ExecArgs) -> Result<ExitCode> {
    let env = Environment::from_process();
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let loaded = config::locate(cli.config.as_deref())?;
    match &loaded {
        Some(found) => crate::log::verbose(format_args!("config {}", found.path.display())),
        None => crate::log::verbose(format_args!(
            "no {} in {} or its parents",
            config::FILE_NAME,
            cwd.display()
        )),
    }
    let bindings = bindings::collect(loaded.as_ref(), &args.secrets)?;

    // Resolve the command before touching Vault: a typo costs no secret read.
    let (name, rest) = args.command.split_first().context("no command given")?;
    let command = child::resolve(
        name,
        rest,
        std::env::var_os("PATH").as_deref(),
        &cwd,
    )?;

    if args.dry_run {
        print_plan(&bindings, &command, loaded.is_some());
        return Ok(ExitCode::SUCCESS);
    }
    if bindings.is_empty() {
        if loaded.is_none() {
            bail!(
                "nothing to inject: no {} found in {} or its parents, and no --secret given",
                config::FILE_NAME,
                cwd.display()
            );
        }
        crate::log::warn("keywrap.toml has no [env] references; running the command without secrets");
    }

    let identity = RunIdentity::detect(&env, Some(&command.display_name()));
    let run_id = identity.correlation_id.clone();
    let resolved = if bindings.is_empty() {
        Default::default()
    } else {
        let session = Session::open(&cli.connection.flags(), &env, loaded.as_ref(), identity)?;
        let runtime = super::runtime()?;
        let resolved = runtime.block_on(crate::resolve::resolve(&session.client, &bindings))?;
        for (address, read) in &resolved.reads {
            match read.version {
                Some(version) => crate::log::verbose(format_args!("read {address} (version {version})")),
                None => crate::log::verbose(format_args!("read {address}")),
            }
        }
        resolved
    };

    let child_env = ChildEnvironment::build(&env, &run_id, &[], resolved.values);
    let mut supervisor = Supervisor::install()?;
    let mut process = child::spawn(&command, &child_env)?;
    drop(child_env);
    let status = supervisor.wait(&mut process)?;
    Ok(ExitCode::from(child::exit_code(status)))
}

/// `--dry-run`: each variable with its reference and where it was written; no values.
fn print_plan(bindings: &[Binding], command: &ResolvedCommand, has_config: bool) {
    if bindings.is_empty() {
        println!(
            "no references{}",
            if has_config { " (keywrap.toml has no [env] entries)" } else { "" }
        );
    } else {
        let name_width = bindings.iter().map(|b| b.name.len()).max().unwrap_or(0).max(4);
        let reference_width = bindings
            .iter()
            .map(|b| b.reference.to_string().len())
            .max()
            .unwrap_or(0)
            .max(9);
        println!("{:name_width$}  {:reference_width$}  FROM", "NAME", "REFERENCE");
        for binding in bindings {
            println!(
                "{:name_width$}  {:reference_width$}  {}",
                binding.name,
                binding.reference.to_string(),
                binding.origin
            );
        }
    }
    println!(
        "would run: {}{}",
        command.program.display(),
        command
            .args
            .iter()
            .map(|a| format!(" {}", a.to_string_lossy()))
            .collect::<String>()
    );
}
