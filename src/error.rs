//! Exit statuses, and the errors whose kind decides them.
//!
//! keywrap follows `env` and `timeout`: the child's own status when it ran, 128+N when it
//! died of signal N, and 125/126/127 when keywrap could not get that far.

use std::path::PathBuf;

/// keywrap itself failed: configuration, reference, Vault, auth.
pub const KEYWRAP_FAILED: u8 = 125;
/// `scan` and `hook`: a usage or I/O error (1 means a finding, as linters do).
pub const USAGE_OR_IO: u8 = 2;
/// The command was found but could not be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;

/// Failures to start the command, which get their own exit statuses.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("command not found: {name} (not on PATH, or not executable)")]
    NotFound { name: String },
    #[error("cannot execute {}: {reason}", path.display())]
    CannotExecute { path: PathBuf, reason: String },
    #[error("cannot run {}: its #! interpreter {} was not found", path.display(), interpreter.display())]
    MissingInterpreter { path: PathBuf, interpreter: PathBuf },
}

/// An error that carries an exit status but prints nothing more (the reason was already said).
#[derive(Debug, thiserror::Error)]
#[error("exit status {0}")]
pub struct SilentExit(pub u8);

/// The exit status for an error that ended keywrap.
pub fn exit_status_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(command) = cause.downcast_ref::<CommandError>() {
            return match command {
                CommandError::NotFound { .. } | CommandError::MissingInterpreter { .. } => {
                    NOT_FOUND
                }
                CommandError::CannotExecute { .. } => CANNOT_EXECUTE,
            };
        }
        if let Some(SilentExit(code)) = cause.downcast_ref::<SilentExit>() {
            return *code;
        }
    }
    KEYWRAP_FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_env_and_timeout() {
        let not_found = anyhow::Error::new(CommandError::NotFound { name: "x".into() });
        assert_eq!(exit_status_of(&not_found), 127);
        let denied = anyhow::Error::new(CommandError::CannotExecute {
            path: "/x".into(),
            reason: "Permission denied".into(),
        });
        assert_eq!(exit_status_of(&denied.context("starting")), 126);
        assert_eq!(exit_status_of(&anyhow::anyhow!("vault down")), 125);
        assert_eq!(exit_status_of(&anyhow::Error::new(SilentExit(3))), 3);
    }
}
