//! `keywrap read REF`: print one secret value, as `op read` and `vault kv get -field` do.
//! The one command that shows a secret on purpose; everything else keeps values out of
//! output.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::bindings::{Binding, Origin};
use crate::cli::{Cli, ReadArgs};
use crate::config;
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::resolve;
use crate::session::Session;

pub fn run(cli: &Cli, args: &ReadArgs) -> Result<ExitCode> {
    let env = Environment::from_process();
    // keywrap.toml still gives the connection and login settings.
    let loaded = config::locate(cli.config.as_deref())?;
    let binding = Binding {
        name: args.reference.field.clone(),
        reference: args.reference.clone(),
        origin: Origin::Flag,
    };
    let runtime = crate::runtime::runtime()?;
    let outcome = runtime.block_on(async {
        let session = Session::open(
            super::session_inputs(cli, &env, loaded.as_ref()),
            RunIdentity::detect(&env, Some("keywrap-read")),
        )
        .await?;
        let mut outcomes =
            resolve::resolve_each(&session.client, std::slice::from_ref(&binding)).await;
        session.close().await;
        anyhow::Ok(outcomes.remove(0))
    })?;
    let (value, _) = outcome.map_err(|problem| anyhow::anyhow!("{}: {problem}", args.reference))?;
    let value = value.expose();
    let newline = !value.ends_with('\n')
        && !args.no_newline
        && (args.newline || std::io::stdout().is_terminal());
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(value.as_bytes())
        .and_then(|()| match newline {
            true => stdout.write_all(b"\n"),
            false => Ok(()),
        })
        .and_then(|()| stdout.flush());
    match written {
        // `| head -c 4` closed the pipe: the reader has what it wanted.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write the value")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
