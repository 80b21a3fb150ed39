//! Nothing of a secret or the token reaches disk: keywrap, traced with `strace -f`, opens
//! no file for writing and creates, renames or links nothing.

mod support;

use serde_json::json;
use support::{Bao, Keywrap};

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
    keywrap.args([
        "exec",
        "-s",
        "K=secret/openai#api_key",
        "-s",
        "L=secret/openai#api_key",
        "--",
        "true",
    ]);
    assert_nothing_written(&mut keywrap);
}

#[test]
fn a_login_token_stays_in_memory() {
    if !strace_available() {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-never-on-disk")]);
    bao.write_policy(
        "read-openai",
        "path \"secret/data/openai\" { capabilities = [\"read\"] }",
    );
    bao.write_policy(
        "per-run",
        "path \"auth/token/create\" { capabilities = [\"update\"] }",
    );
    let (role_id, secret_id) = bao.approle(
        "ci",
        json!({ "token_policies": ["read-openai", "per-run"] }),
    );
    let mut keywrap = bao.keywrap();
    keywrap
        .env_remove("VAULT_TOKEN")
        .env("VAULT_ROLE_ID", role_id)
        .env("VAULT_SECRET_ID", secret_id)
        .args([
            "exec",
            "--per-run-token",
            "-s",
            "K=secret/openai#api_key",
            "--",
            "true",
        ]);
    assert_nothing_written(&mut keywrap);
    assert!(!keywrap.home.path().join(".vault-token").exists());
}

/// Runs keywrap under `strace -f` and asserts that it succeeded and that no file was opened
/// for writing, created, renamed or linked.
fn assert_nothing_written(keywrap: &mut Keywrap) {
    let trace = keywrap.home.path().join("trace.log");
    let workdir = keywrap.workdir.path().to_path_buf();
    let command = keywrap.command();
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = command
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let output = std::process::Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=open,openat,openat2,creat,rename,renameat,renameat2,mkdir,mkdirat,truncate,link,linkat,symlink,symlinkat",
            "-o",
        ])
        .arg(&trace)
        .arg(program)
        .args(args)
        .env_clear()
        .envs(envs)
        .current_dir(workdir)
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
