//! Nothing of a secret or the token reaches disk: keywrap, traced with `strace -f`, opens
//! no file for writing and creates, renames or links nothing.

mod support;

use serde_json::json;
use support::{Bao, Keywrap};

#[test]
fn exec_writes_nothing_to_disk() {
    if !support::strace::available() {
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
    if !support::strace::available() {
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
    let (status, stderr, trace) = support::strace::trace(keywrap, support::strace::FILE_CALLS);
    assert!(status.success(), "{stderr}");
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
