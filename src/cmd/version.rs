//! `keywrap version`: what `keywrap --version` prints, for those who type it as a word
//! (`op version`, `vault version`).

use std::process::ExitCode;

use anyhow::Result;

pub fn run() -> Result<ExitCode> {
    println!("keywrap {}", env!("CARGO_PKG_VERSION"));
    Ok(ExitCode::SUCCESS)
}
