//! One module per subcommand; `run` parses the command line and dispatches.

pub mod audit;
pub mod completions;
pub mod exec;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use crate::cli::{Cli, Command};

/// Parses the command line and runs the subcommand; returns the exit status.
pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    crate::log::set_verbose(cli.verbose);
    match &cli.command {
        Command::Exec(args) => exec::run(&cli, args),
        Command::Audit(command) => audit::run(&cli, command),
        Command::Completions { shell } => completions::run(*shell),
    }
}

/// A single-threaded async runtime: keywrap's concurrency is I/O on a few connections,
/// and one thread keeps start-up fast and memory small.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
