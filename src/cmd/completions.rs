//! `keywrap completions SHELL`

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

pub fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(shell, &mut command, "keywrap", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
