//! Nothing of a secret or the token reaches disk: keywrap, traced with `strace -f`, opens
//! no file for writing and creates, renames or links nothing.

mod support;

use support::Bao;

/// `.ci/run` installs strace and sets KEYWRAP_REQUIRE_STRACE=1 so this never skips there.
fn strace_available() -> bool {
    let found = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok();
    if !found && std::env::var_os("KEYWRAP_REQUIRE_STRACE").is_some() {
        panic!("strace is required (KEYWRAP_REQUIRE_STRACE is set) but not installed");
    }
    found
}

#[test]
fn exec_writes_nothing_to_disk() {
    if !strace_available() {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-never-on-disk")]);
    let mut keywrap = bao.keywrap();
    let trace = keywrap.home.path().join("trace.log");
    let command = keywrap
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "-s",
            "L=secret/openai#api_key",
            "--",
            "true",
        ])
        .command();
    let keywrap_binary = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let output = std::process::Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2,creat,rename,renameat,renameat2,mkdir,mkdirat,truncate,link,linkat,symlink,symlinkat", "-o"])
        .arg(&trace)
        .arg(keywrap_binary)
        .args(args)
        .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))))
        .current_dir(keywrap.workdir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(
        trace.contains("openat"),
        "the trace recorded nothing: {trace}"
    );
    let writes: Vec<&str> = trace
        .lines()
        .filter(|line| !line.contains("ENOENT"))
        .filter(|line| {
            [
                "O_WRONLY", "O_RDWR", "O_CREAT", "creat(", "rename", "mkdir", "truncate", "link(",
                "linkat(",
            ]
            .iter()
            .any(|marker| line.contains(marker))
        })
        .collect();
    assert!(writes.is_empty(), "files opened for writing: {writes:#?}");
}
