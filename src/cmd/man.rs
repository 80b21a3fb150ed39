//! `keywrap man`: the man pages, generated from the same command definition as `--help`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::ManArgs;

pub fn run(args: &ManArgs) -> Result<ExitCode> {
    let command = crate::cli::command();
    match &args.out_dir {
        Some(dir) => {
            write_pages(command, dir)?;
            crate::log::note(format_args!("man pages written to {}", dir.display()));
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .context("cannot render the man page")?;
            match std::io::stdout().lock().write_all(&page) {
                Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(err).context("cannot write the man page");
                }
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// keywrap.1, and keywrap-exec.1, keywrap-proxy-keys-create.1, ... for every subcommand.
fn write_pages(command: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))
}
