//! `keywrap hook`: the pre-commit hook blocks a real `git commit` that adds a key, keeps a
//! hook that was already there, and never removes or overwrites another tool's hook.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::GitRepo;

fn fake_token() -> String {
    let mut rng = fastrand::Rng::with_seed(42);
    let tail: String = (0..36).map(|_| rng.alphanumeric()).collect();
    format!("{}_{tail}", "ghp")
}

fn hooks(repo: &GitRepo) -> std::path::PathBuf {
    repo.path().join(".git/hooks")
}

fn write_foreign_hook(repo: &GitRepo, name: &str, marker_file: &str) -> String {
    let script = format!("#!/bin/sh\ntouch \"{marker_file}\"\n");
    let path = hooks(repo).join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn blocks_a_commit_that_adds_a_key_and_says_what_to_do() {
    let repo = GitRepo::new();
    repo.keywrap()
        .args(["hook", "install"])
        .run()
        .assert_success();

    repo.write("app.py", "print('hello')\n");
    repo.git(&["add", "app.py"]);
    let clean = repo.try_git(&["commit", "-q", "-m", "clean"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );

    repo.write(".env", &format!("GITHUB_TOKEN={}\n", fake_token()));
    repo.git(&["add", ".env"]);
    let blocked = repo.try_git(&["commit", "-q", "-m", "add env"]);
    assert!(!blocked.status.success(), "the commit went through");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&blocked.stdout),
        String::from_utf8_lossy(&blocked.stderr)
    );
    assert!(output.contains(".env:1:14"), "{output}");
    assert!(output.contains("commit blocked"), "{output}");
    assert!(
        output.contains("keywrap import .env --to secret/myapp"),
        "{output}"
    );
    assert!(output.contains("keywrap exec"), "{output}");
    assert!(
        !output.contains(&fake_token()[4..]),
        "the key is not printed"
    );
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]).trim(), "1");
}

#[test]
fn a_commit_that_only_edits_around_an_old_key_goes_through() {
    let repo = GitRepo::new();
    repo.write(
        "settings.py",
        &format!("DEBUG = False\nTOKEN = \"{}\"\n", fake_token()),
    );
    repo.commit_all("before keywrap", "Bob <bob@example.com>");
    repo.keywrap()
        .args(["hook", "install"])
        .run()
        .assert_success();

    // The key was committed before the hook: editing the file does not add it.
    repo.write(
        "settings.py",
        &format!("DEBUG = True\nTOKEN = \"{}\"\n", fake_token()),
    );
    repo.git(&["add", "settings.py"]);
    let edit = repo.try_git(&["commit", "-q", "-m", "debug on"]);
    assert!(
        edit.status.success(),
        "{}",
        String::from_utf8_lossy(&edit.stderr)
    );
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]).trim(), "2");
}

#[test]
fn keeps_an_existing_hook_by_chaining_and_restores_it() {
    let repo = GitRepo::new();
    let ran = repo.path().join("foreign-hook-ran");
    let original = write_foreign_hook(&repo, "pre-commit", &ran.to_string_lossy());

    repo.keywrap()
        .args(["hook", "install"])
        .run()
        .assert_success();
    repo.write("a.txt", "a\n");
    repo.git(&["add", "a.txt"]);
    let commit = repo.try_git(&["commit", "-q", "-m", "a"]);
    assert!(
        commit.status.success(),
        "{}",
        String::from_utf8_lossy(&commit.stderr)
    );
    assert!(ran.exists(), "the hook that was there still runs");

    repo.keywrap()
        .args(["hook", "uninstall"])
        .run()
        .assert_success()
        .assert_stderr_contains("restored");
    let restored = std::fs::read_to_string(hooks(&repo).join("pre-commit")).unwrap();
    assert_eq!(restored, original);
    assert!(!hooks(&repo).join("pre-commit.keywrap-chained").exists());
}

#[test]
fn refuses_to_overwrite_or_remove_a_foreign_hook() {
    let repo = GitRepo::new();
    let original = write_foreign_hook(&repo, "pre-commit", "/dev/null");
    write_foreign_hook(&repo, "pre-commit.keywrap-chained", "/dev/null");

    repo.keywrap()
        .args(["hook", "install"])
        .run()
        .assert_code(2)
        .assert_stderr_contains("--force");
    let hook = hooks(&repo).join("pre-commit");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), original);

    repo.keywrap()
        .args(["hook", "uninstall"])
        .run()
        .assert_code(2)
        .assert_stderr_contains("not keywrap's hook");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), original);

    repo.keywrap()
        .args(["hook", "install", "--force"])
        .run()
        .assert_success();
    assert!(std::fs::read_to_string(&hook)
        .unwrap()
        .contains("keywrap-managed-hook"));
    repo.keywrap()
        .args(["hook", "install"])
        .run()
        .assert_success()
        .assert_stderr_contains("updated");
}

#[test]
fn hook_outside_a_repository_is_an_error() {
    support::Keywrap::new()
        .args(["hook", "install"])
        .run()
        .assert_code(2)
        .assert_stderr_contains("not in a git repository");
}

/// The pre-commit framework from the project's .venv (scripts/install-test-deps).
fn pre_commit() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/pre-commit");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps",
        path.display()
    );
    path
}

/// Runs pre-commit in `repo` with keywrap's binary first on PATH and a private cache.
fn run_pre_commit(repo: &GitRepo, cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keywrap"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new(pre_commit())
        .args(args)
        .current_dir(repo.path())
        .env("PATH", path)
        .env("HOME", repo.path())
        .env("PRE_COMMIT_HOME", cache)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn output_of(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn pre_commit_framework_hook_scans_the_files_it_is_given() {
    // This repository's hook definitions, committed in a repository of their own, as
    // pre-commit clones them from a `repo:` at a `rev:`.
    let hooks_repo = GitRepo::new();
    let definitions = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.pre-commit-hooks.yaml"
    ))
    .unwrap();
    hooks_repo.write(".pre-commit-hooks.yaml", &definitions);
    let rev = hooks_repo.commit_all("hooks", "Bob <bob@example.com>");
    let cache = tempfile::tempdir().unwrap();

    let repo = GitRepo::new();
    repo.write(
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: keywrap-scan-system\n",
            hooks_repo.path().display()
        ),
    );
    repo.write("app.py", "print('hello')\n");
    repo.commit_all("start", "Bob <bob@example.com>");
    let clean = run_pre_commit(&repo, cache.path(), &["run", "--all-files"]);
    assert!(clean.status.success(), "{}", output_of(&clean));

    // A key committed before the hook: `--all-files` (the usual CI call) finds it.
    repo.write("settings.py", &format!("TOKEN = \"{}\"\n", fake_token()));
    repo.commit_all("add settings", "Bob <bob@example.com>");
    let leaked = run_pre_commit(&repo, cache.path(), &["run", "--all-files"]);
    let output = output_of(&leaked);
    assert!(!leaked.status.success(), "{output}");
    assert!(output.contains("settings.py:1:10"), "{output}");
    assert!(
        !output.contains("commit blocked"),
        "no commit here: {output}"
    );
    assert!(
        !output.contains(&fake_token()[4..]),
        "the key is not printed"
    );

    // .keywrapignore applies to the files pre-commit names.
    repo.write(".keywrapignore", "settings.py\n");
    repo.commit_all("ignore settings", "Bob <bob@example.com>");
    let ignored = run_pre_commit(&repo, cache.path(), &["run", "--all-files"]);
    assert!(ignored.status.success(), "{}", output_of(&ignored));

    // Installed as the git hook: a commit that adds a key is stopped.
    let install = run_pre_commit(&repo, cache.path(), &["install"]);
    assert!(install.status.success(), "{}", output_of(&install));
    repo.write(".env", &format!("GITHUB_TOKEN={}\n", fake_token()));
    repo.git(&["add", ".env"]);
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_keywrap"))
        .parent()
        .unwrap();
    let commit = std::process::Command::new("git")
        .args(["commit", "-q", "-m", "add env"])
        .current_dir(repo.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", repo.path())
        .env("PRE_COMMIT_HOME", cache.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let output = output_of(&commit);
    assert!(!commit.status.success(), "{output}");
    assert!(output.contains(".env:1:14"), "{output}");
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]).trim(), "3");
}
