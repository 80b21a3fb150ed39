//! The keywrap binary: everything is in the library; this prints the error and sets the exit status.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    keywrap::hardening::disable_core_dumps();
    match keywrap::cmd::run() {
        Ok(code) => code,
        Err(err) => {
            if err.downcast_ref::<keywrap::error::SilentExit>().is_none() {
                eprintln!("keywrap: error: {err:#}");
            }
            ExitCode::from(keywrap::error::exit_status_of(&err))
        }
    }
}
