//! `keywrap completions SHELL`

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

pub fn run(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = crate::cli::command();
    // Generated into memory: clap_complete panics when stdout is closed early (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "keywrap", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        // `| head` closed the pipe: the reader has what it wanted.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write the completion script")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
