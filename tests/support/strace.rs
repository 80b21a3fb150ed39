//! Running keywrap under `strace -f` to see which files it opens, creates and with which
//! mode: the proof that keywrap writes nothing it should not, and creates what it writes
//! private from the start.

use std::path::PathBuf;

use super::Keywrap;

/// Whether strace can be used. `.ci/run` installs strace and sets KEYWRAP_REQUIRE_STRACE=1,
/// so a test that needs it never skips there.
pub fn available() -> bool {
    let found = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok();
    if !found && std::env::var_os("KEYWRAP_REQUIRE_STRACE").is_some() {
        panic!("strace is required (KEYWRAP_REQUIRE_STRACE is set) but not installed");
    }
    found
}

/// The system calls that open, create, rename or link files.
pub const FILE_CALLS: &str = "trace=open,openat,openat2,creat,rename,renameat,renameat2,mkdir,mkdirat,truncate,link,linkat,symlink,symlinkat";

/// Runs keywrap's command under `strace -f -e <calls>` with its environment and working
/// directory; returns the exit status, stderr and the trace.
pub fn trace(keywrap: &mut Keywrap, calls: &str) -> (std::process::ExitStatus, String, String) {
    let trace: PathBuf = keywrap.home.path().join("trace.log");
    let workdir = keywrap.workdir.path().to_path_buf();
    let command = keywrap.command();
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = command
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let dir = command
        .get_current_dir()
        .map(|d| d.to_path_buf())
        .unwrap_or(workdir);
    let output = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", calls, "-o"])
        .arg(&trace)
        .arg(program)
        .args(args)
        .env_clear()
        .envs(envs)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        text.contains("openat"),
        "the trace recorded nothing: {text}"
    );
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        text,
    )
}
