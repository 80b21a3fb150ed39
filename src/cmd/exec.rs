//! `keywrap exec`: resolve references, start the command with the values in its
//! environment only, supervise it, and pass on its exit status.

use std::io::Write;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::auth::lifecycle::{create_per_run_token, TokenKeeper};
use crate::bindings::{self, Binding};
use crate::child::output::{Routes, Terminals};
use crate::child::{self, signals::Supervisor, ResolvedCommand};
use crate::cli::{Cli, ExecArgs, OutputFormat};
use crate::config;
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::resolve::{self, Resolved};
use crate::secret::SecretValue;
use crate::session::Session;
use crate::watch::Watcher;

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
    let env_files = crate::dotenv::load_all(loaded.as_ref(), &args.env_files, &env)?;
    let (bindings, settings) = bindings::apply_env_files(bindings, &env_files, &args.secrets);

    // Resolve the command before touching Vault: a typo costs no secret read.
    let (name, rest) = args.command.split_first().context("no command given")?;
    if let Some(interval) = name
        .to_str()
        .filter(|word| args.watch.is_some() && crate::duration::parse_interval(word).is_ok())
    {
        // The interval is optional, so clap took `--watch 5`'s `5` for the command.
        bail!("`--watch {interval}` runs {interval:?} as the command: attach the interval with `=`, as in `--watch={interval}`");
    }
    let command = child::resolve(name, rest, std::env::var_os("PATH").as_deref(), &cwd)?;

    if args.dry_run {
        let rows = plan_rows(&bindings, loaded.as_ref())?;
        let settings: Vec<&str> = settings.iter().map(|(name, _)| name.as_str()).collect();
        let plan = match args.format {
            OutputFormat::Text => plan_text(&rows, loaded.is_some(), &settings, &command),
            OutputFormat::Json => plan_json(&rows, &settings, &command)?,
        };
        match std::io::stdout().lock().write_all(plan.as_bytes()) {
            // `| head` closed the pipe: the reader has what it wanted.
            Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(err).context("cannot write the plan");
            }
            _ => return Ok(ExitCode::SUCCESS),
        }
    }
    if bindings.is_empty() {
        if loaded.is_none() && env_files.is_empty() {
            bail!("nothing to inject: {}", config::no_references(None));
        }
        if env_files.is_empty() {
            crate::log::warn(
                "keywrap.toml has no [env] references; running the command without secrets",
            );
        }
    }

    let identity = RunIdentity::detect(&env, Some(&command.display_name()));
    let run_id = identity.correlation_id.clone();
    let (resolved, keeper, strip, watcher) = if bindings.is_empty() {
        if args.watch.is_some() {
            crate::log::warn("--watch: no references to watch");
        }
        (Resolved::default(), None, Vec::new(), None)
    } else {
        let runtime = crate::runtime::runtime()?;
        let session = runtime.block_on(Session::open(
            super::session_inputs(cli, &env, loaded.as_ref()),
            identity,
        ))?;
        let (mut resolved, keeper) =
            runtime.block_on(read_secrets(&session, &bindings, args.per_run_token))?;
        let lifecycle = crate::lifecycle::overlap::apply(
            &session.client,
            loaded.as_ref(),
            &bindings,
            &mut resolved,
            args.strict_age,
        );
        if let Err(err) = runtime.block_on(lifecycle) {
            runtime.block_on(keeper.revoke());
            return Err(err);
        }
        // --watch polls with the login token (a per-run token has only the uses it needs).
        let watcher = args.watch.map(|_| session.client.renewed_deadline());
        (resolved, Some(keeper), session.strip, watcher)
    };

    let mut keeper = keeper;
    if let Some(keeper) = &mut keeper {
        keeper.keep_alive();
    }
    let child_env = with_settings(&env, settings);
    let plan = child::run::Plan {
        command: &command,
        env: &child_env,
        run_id: &run_id,
        also_remove: &strip,
        restart_signal: args.restart_signal,
        restart_timeout: args.restart_timeout,
    };
    let watcher = watcher.map(|client| Watcher {
        client,
        bindings,
        versions: resolved.reads,
        config: loaded,
    });
    let status = supervise(args, &plan, watcher, resolved.values);
    if let Some(keeper) = keeper {
        keeper.finish();
    }
    Ok(ExitCode::from(child::exit_code(status?)))
}

/// Starts the command with its output plumbing and runs it to the end, restarting it on
/// `--watch` changes (see `child::run`).
fn supervise(
    args: &ExecArgs,
    plan: &child::run::Plan,
    watcher: Option<Watcher>,
    values: Vec<(String, SecretValue)>,
) -> Result<ExitStatus> {
    // Installed only now, so Ctrl-C still ends keywrap while it talks to Vault.
    let mut supervisor = Supervisor::install()?;
    if let (Some(interval), Some(watcher)) = (args.watch, watcher) {
        watcher.spawn(interval, supervisor.sender())?;
    }
    let output = child::output::Output::new(
        Routes::decide(args.mask_choice(), Terminals::detect()),
        values.iter().map(|(_, value)| value),
    )?;
    child::run::run(plan, values, &output, &mut supervisor)
}

/// The inherited environment with env-file settings over it.
fn with_settings(env: &Environment, settings: Vec<(String, String)>) -> Environment {
    let mut layered = env.clone();
    for (name, value) in settings {
        layered.set(name, value);
    }
    layered
}

/// Reads all bindings (through a per-run token when asked); on failure, revokes what this
/// run logged in for before returning the error.
async fn read_secrets(
    session: &Session,
    bindings: &[Binding],
    per_run_token: bool,
) -> Result<(Resolved, TokenKeeper)> {
    let per_run = if per_run_token {
        // One use per secret read, plus one to revoke itself when the child exits.
        let uses = resolve::reads_needed(bindings) as u64 + 1;
        let ttl = (session.connection.timeout * 2).max(Duration::from_secs(60));
        match create_per_run_token(&session.client, &session.identity, uses, ttl).await {
            Ok(client) => Some(client),
            Err(err) => {
                session.close().await;
                return Err(err);
            }
        }
    } else {
        None
    };
    let keeper = TokenKeeper::new(&session.client, session.obtained.clone(), per_run.clone());
    let reader = per_run.as_ref().unwrap_or(&session.client);
    match resolve::resolve_with(&session.client, reader, bindings).await {
        Ok(resolved) => {
            for (address, read) in &resolved.reads {
                match read.version {
                    Some(version) => {
                        crate::log::verbose(format_args!("read {address} (version {version})"))
                    }
                    None => crate::log::verbose(format_args!("read {address}")),
                }
            }
            Ok((resolved, keeper))
        }
        Err(err) => {
            keeper.revoke().await;
            Err(err.into())
        }
    }
}

/// One line of the `--dry-run` plan: a variable, its reference and where it was written.
#[derive(Debug, Serialize)]
struct PlanRow {
    name: String,
    reference: String,
    from: String,
    /// For the variable that gets a reference's previous version: the overlap window.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_version_for: Option<String>,
}

/// `--dry-run`: each variable with its reference and where it was written; no values.
/// A reference with an overlap window also gets a row for the variable of its previous
/// version.
fn plan_rows(bindings: &[Binding], config: Option<&config::LoadedConfig>) -> Result<Vec<PlanRow>> {
    let mut rows = Vec::new();
    for binding in bindings {
        let from = binding.origin.to_string();
        rows.push(PlanRow {
            name: binding.name.clone(),
            reference: binding.reference.to_string(),
            from: from.clone(),
            previous_version_for: None,
        });
        let options = crate::lifecycle::policy::options_for(config, binding)?;
        if let Some((previous, window)) = options.previous {
            rows.push(PlanRow {
                name: previous,
                reference: binding.reference.to_string(),
                from,
                previous_version_for: Some(crate::duration::format(window)),
            });
        }
    }
    Ok(rows)
}

fn plan_text(
    rows: &[PlanRow],
    has_config: bool,
    settings: &[&str],
    command: &ResolvedCommand,
) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str(if has_config {
            "no references (keywrap.toml has no [env] entries)\n"
        } else {
            "no references\n"
        });
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                let reference = match &row.previous_version_for {
                    Some(window) => format!(
                        "{} (previous version, for {window} after a rotation)",
                        row.reference
                    ),
                    None => row.reference.clone(),
                };
                vec![row.name.clone(), reference, row.from.clone()]
            })
            .collect();
        let header = ["NAME", "REFERENCE", "FROM"].map(String::from);
        crate::table::render(&header, &cells, &mut out);
    }
    if !settings.is_empty() {
        out.push_str(&format!(
            "plain settings from env files: {}\n",
            settings.join(", ")
        ));
    }
    out.push_str(&format!("would run: {}", command.program.display()));
    for arg in &command.args {
        out.push_str(&format!(" {}", arg.to_string_lossy()));
    }
    out.push('\n');
    out
}

/// The plan as one JSON document: `variables`, `settings` (names of the plain settings
/// from env files, never their values) and `command`.
fn plan_json(rows: &[PlanRow], settings: &[&str], command: &ResolvedCommand) -> Result<String> {
    let args: Vec<String> = command
        .args
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let plan = serde_json::json!({
        "variables": rows,
        "settings": settings,
        "command": {
            "program": command.program.to_string_lossy(),
            "args": args,
        },
    });
    Ok(serde_json::to_string_pretty(&plan)? + "\n")
}
