//! Finding the command before anything else happens: a typo costs no secret read.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::CommandError;

/// A command found on disk, ready to execute.
#[derive(Debug, Clone)]
pub struct ResolvedCommand {
    /// The file that will be executed.
    pub program: PathBuf,
    /// The name as the user typed it, passed as argv[0].
    pub name: OsString,
    pub args: Vec<OsString>,
}

impl ResolvedCommand {
    /// The program's name without its directory, for messages and the audit header.
    pub fn display_name(&self) -> String {
        Path::new(&self.name)
            .file_name()
            .unwrap_or(&self.name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Where a command is looked for when `PATH` is not set (`env -i`), as `execvp` does.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Finds `name` the way a shell does: as a path when it holds a `/`, else on `PATH`.
pub fn resolve(
    name: &OsStr,
    args: &[OsString],
    path_var: Option<&OsStr>,
    cwd: &Path,
) -> Result<ResolvedCommand, CommandError> {
    let display = name.to_string_lossy().into_owned();
    let path_var = path_var.or(Some(OsStr::new(DEFAULT_PATH)));
    let program = if name.as_bytes().contains(&b'/') {
        let path = cwd.join(name);
        check_executable(&path, &display)?;
        path
    } else if name.is_empty() {
        return Err(CommandError::NotFound { name: display });
    } else {
        match which::which_in(name, path_var, cwd) {
            Ok(path) => path,
            Err(_) => {
                // A file of that name that cannot be executed is 126, as in a shell.
                if let Some(found) = path_var
                    .into_iter()
                    .flat_map(std::env::split_paths)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
                {
                    return Err(CommandError::CannotExecute {
                        path: found,
                        reason: "permission denied (not executable)".into(),
                    });
                }
                return Err(CommandError::NotFound { name: display });
            }
        }
    };
    check_interpreter(&program)?;
    Ok(ResolvedCommand {
        program,
        name: name.to_os_string(),
        args: args.to_vec(),
    })
}

fn check_executable(path: &Path, display: &str) -> Result<(), CommandError> {
    let metadata = std::fs::metadata(path).map_err(|_| CommandError::NotFound {
        name: display.to_string(),
    })?;
    if metadata.is_dir() {
        return Err(CommandError::CannotExecute {
            path: path.to_path_buf(),
            reason: "it is a directory".into(),
        });
    }
    if nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(CommandError::CannotExecute {
            path: path.to_path_buf(),
            reason: "permission denied (not executable)".into(),
        });
    }
    Ok(())
}

/// A script whose `#!` interpreter is missing fails like a missing command (127, as in a
/// shell), and is found out here rather than after the secrets were read.
fn check_interpreter(program: &Path) -> Result<(), CommandError> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let Ok(read) = std::fs::File::open(program).and_then(|mut file| file.read(&mut head)) else {
        return Ok(());
    };
    let Some(line) = head[..read].strip_prefix(b"#!") else {
        return Ok(());
    };
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let Some(interpreter) = line
        .split(|b| b.is_ascii_whitespace())
        .find(|word| !word.is_empty())
    else {
        return Ok(());
    };
    let interpreter = Path::new(OsStr::from_bytes(interpreter));
    // Only a complete first line names the interpreter for certain.
    if interpreter.is_absolute() && read > line.len() + 2 && !interpreter.exists() {
        return Err(CommandError::MissingInterpreter {
            path: program.to_path_buf(),
            interpreter: interpreter.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn finds_commands_and_classifies_failures() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = Some(dir.path().as_os_str());

        let found = resolve(OsStr::new("tool"), &[], path, dir.path()).unwrap();
        assert_eq!(found.program, exe);
        assert!(matches!(
            resolve(OsStr::new("nope"), &[], path, dir.path()),
            Err(CommandError::NotFound { .. })
        ));
        assert!(matches!(
            resolve(OsStr::new("plain"), &[], path, dir.path()),
            Err(CommandError::CannotExecute { .. })
        ));
        assert!(matches!(
            resolve(OsStr::new("./plain"), &[], path, dir.path()),
            Err(CommandError::CannotExecute { .. })
        ));
        assert!(matches!(
            resolve(OsStr::new("./missing"), &[], path, dir.path()),
            Err(CommandError::NotFound { .. })
        ));
        assert!(resolve(OsStr::new("./tool"), &[], path, dir.path()).is_ok());
        let found = resolve(OsStr::new("sh"), &[], None, dir.path()).unwrap();
        assert!(
            found.program.is_absolute(),
            "no PATH: the default search path"
        );

        let script = dir.path().join("script");
        std::fs::write(&script, "#!/no/such/interpreter -x\necho hi\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            resolve(OsStr::new("script"), &[], path, dir.path()),
            Err(CommandError::MissingInterpreter { .. })
        ));
    }
}
