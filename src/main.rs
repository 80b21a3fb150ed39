use std::process::ExitCode;

fn main() -> ExitCode {
    keywrap::hardening::disable_core_dumps();
    match keywrap::cmd::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("keywrap: error: {err:#}");
            ExitCode::from(keywrap::error::exit_status_of(&err))
        }
    }
}
