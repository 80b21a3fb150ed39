//! The child process: its command, its environment, and supervising it to the end.
//!
//! keywrap always stays as a small supervisor rather than `execve`-ing into the child:
//! later features (revoking a login token at exit, renewing it, masking output, restarting
//! on rotation) need it, and it makes the exit status uniform: the child's own status, or
//! 128+N when it died of signal N, whoever reads it.

pub mod command;
pub mod environment;
pub mod output;
pub mod run;
pub mod signals;

use std::process::{Command, ExitStatus};

use anyhow::Result;

pub use command::{resolve, ResolvedCommand};

use crate::error::CommandError;

/// Starts the command with exactly the given environment and standard streams; with
/// `own_group`, as the leader of a new process group (see [`signals::child_needs_own_group`]).
pub fn spawn(
    command: &ResolvedCommand,
    env: &environment::ChildEnvironment,
    stdio: output::ChildStdio,
    own_group: bool,
) -> Result<std::process::Child> {
    let mut process = Command::new(&command.program);
    std::os::unix::process::CommandExt::arg0(&mut process, &command.name);
    process.args(&command.args).env_clear();
    env.apply(&mut process);
    crate::sys::prepare_child(&mut process, crate::hardening::inherited_core_limit());
    if let Some(stdin) = stdio.stdin {
        process.stdin(stdin);
    }
    if let Some(stdout) = stdio.stdout {
        process.stdout(stdout);
    }
    if let Some(stderr) = stdio.stderr {
        process.stderr(stderr);
    }
    if let Some(fd) = stdio.controlling_terminal {
        crate::sys::controlling_terminal(&mut process, fd);
    } else if own_group {
        std::os::unix::process::CommandExt::process_group(&mut process, 0);
    }
    process.spawn().map_err(|err| {
        let path = command.program.clone();
        match err.kind() {
            std::io::ErrorKind::NotFound => CommandError::NotFound {
                name: command.name.to_string_lossy().into_owned(),
            }
            .into(),
            _ => CommandError::CannotExecute {
                path,
                reason: err.to_string(),
            }
            .into(),
        }
    })
}

/// The exit status keywrap passes on: the child's code, or 128+N for signal N.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => crate::error::KEYWRAP_FAILED,
    }
}
