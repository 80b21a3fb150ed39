//! One module per subcommand; `run` parses the command line and dispatches.

pub mod audit;
pub mod check;
pub mod completions;
pub mod exec;
pub mod hook;
pub mod import;
pub mod init;
pub mod man;
pub mod policy;
pub mod proxy;
pub mod read;
pub mod rotate;
pub mod scan;
pub mod status;
pub mod trust;
pub mod version;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::SilentExit;

/// Parses the command line and runs the subcommand; returns the exit status.
pub fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse_args() {
        Ok(cli) => cli,
        Err(err) => {
            report_usage_error(&err);
            // Usage errors are keywrap's own failure: 125, as `env` does; scan and hook
            // follow linters instead (2), since 1 means "found something".
            return match err.exit_code() {
                0 => Ok(ExitCode::SUCCESS),
                _ if scan::is_scan_command_line(std::env::args_os().skip(1)) => {
                    Err(SilentExit(crate::error::USAGE_OR_IO).into())
                }
                _ => Err(SilentExit(crate::error::KEYWRAP_FAILED).into()),
            };
        }
    };
    crate::log::set_verbose(cli.verbose);
    match &cli.command {
        Command::Exec(args) => exec::run(&cli, args),
        Command::Check(args) => check::run(&cli, args),
        Command::Read(args) => read::run(&cli, args),
        Command::Init(args) => init::run(&cli, args),
        Command::Policy(args) => policy::run(&cli, args),
        Command::Audit(command) => audit::run(&cli, command),
        Command::Rotate(args) => rotate::run(&cli, args),
        Command::Import(args) => import::run(&cli, args),
        Command::Status(args) => status::run(&cli, args),
        Command::Trust(args) => trust::trust(&cli, args),
        Command::Untrust(args) => trust::untrust(&cli, args),
        Command::Proxy(args) => proxy::run(&cli, args),
        Command::Scan(args) => scan::run(&cli, args).or_else(scan::exit_two),
        Command::Hook(command) => hook::run(command).or_else(scan::exit_two),
        Command::Completions { shell } => completions::run(*shell),
        Command::Man(args) => man::run(args),
        Command::Version => version::run(),
    }
}

/// The settings a Vault session is opened with: the flags over the environment and
/// keywrap.toml. Built here so that `cli` only defines arguments.
pub fn session_inputs<'a>(
    cli: &Cli,
    env: &'a crate::environment::Environment,
    config: Option<&'a crate::config::LoadedConfig>,
) -> crate::session::SessionInputs<'a> {
    crate::session::SessionInputs {
        connection: cli.connection.flags(),
        auth: cli.auth.flags(),
        env,
        config,
    }
}

/// `--help` and `--version` as clap prints them (stdout); a missing subcommand with the
/// help it needs; any other usage error on one `keywrap: error:` line.
fn report_usage_error(err: &clap::Error) {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
        }
        _ => eprintln!("{}", crate::usage_error::one_line(err)),
    }
}
