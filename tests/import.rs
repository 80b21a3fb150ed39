//! `keywrap import` against a real OpenBao: secrets into Vault and read back, references into
//! keywrap.toml or the env file, .gitignore, the git-history warning, and that a failure in
//! Vault or in a file rewrite leaves the local files as they were.

mod support;

use std::path::Path;

use support::{Bao, GitRepo, Keywrap};

/// An OpenAI-shaped key made at run time (no key-shaped literal in the repository).
fn openai_key() -> String {
    let run = "Qw3rTy8uIo2pAs5dFg7h";
    format!(
        "sk-{run}{}{}",
        ["T3Blbk", "FJ"].concat(),
        run.to_lowercase()
    )
}

/// A fake password that only the name marks as secret.
const PASSWORD: &str = "fake-horse-battery-staple";

fn env_text() -> String {
    format!(
        "# app settings\nDEBUG=true\nPORT=8080\n\nexport OPENAI_API_KEY={}\nDB_PASSWORD='{PASSWORD}'  # dev db\nOTHER=vault://secret/shared#x\nLOG_LEVEL=info\n",
        openai_key()
    )
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// No value of the env file appears in what keywrap printed.
#[track_caller]
fn assert_no_values(run: &support::Run) {
    for value in [openai_key().as_str(), PASSWORD] {
        assert!(
            !run.stdout.contains(value),
            "value in stdout:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(value),
            "value in stderr:\n{}",
            run.stderr
        );
    }
}

fn print_vars(names: &[&str]) -> Vec<String> {
    let script = names
        .iter()
        .map(|n| format!("printf '%s=[%s]\\n' {n} \"${n}\""))
        .collect::<Vec<_>>()
        .join("; ");
    ["--no-mask", "--", "sh", "-c", &script]
        .map(String::from)
        .to_vec()
}

fn setup(bao: &Bao) -> Keywrap {
    bao.kv_put("secret/shared", &[("x", "fake-shared")]);
    let keywrap = bao.keywrap();
    keywrap.write_file(".env", &env_text());
    keywrap
}

#[test]
fn import_moves_secrets_and_exec_sees_them() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    keywrap.write_file(
        "keywrap.toml",
        "# my config\n[env]\nSHARED = \"secret/shared#x\" # kept\n",
    );
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app", "--yes"])
        .run();
    run.assert_success();
    assert_no_values(&run);
    assert!(run
        .stdout
        .contains("move OPENAI_API_KEY (line 5) -> secret/app#OPENAI_API_KEY"));
    assert!(run.stdout.contains("keep DEBUG (line 2): plain setting"));
    assert!(run
        .stdout
        .contains("keep OTHER (line 7): already a vault:// reference"));
    run.assert_stderr_contains("not in a git repository");

    assert_eq!(
        bao.kv_field("secret/app", "OPENAI_API_KEY", None),
        openai_key().as_str()
    );
    assert_eq!(bao.kv_field("secret/app", "DB_PASSWORD", None), PASSWORD);
    assert!(bao.kv_field("secret/app", "DEBUG", None).is_null());

    assert_eq!(
        read(dir.join("keywrap.toml")),
        "# my config\nenv_files = [\".env\"]\n\n[env]\nSHARED = \"secret/shared#x\" # kept\nOPENAI_API_KEY = \"secret/app#OPENAI_API_KEY\"\nDB_PASSWORD = \"secret/app#DB_PASSWORD\"\n"
    );
    assert_eq!(
        read(dir.join(".env")),
        "# app settings\nDEBUG=true\nPORT=8080\n\n# OPENAI_API_KEY moved to Vault: secret/app#OPENAI_API_KEY (see keywrap.toml)\n# DB_PASSWORD moved to Vault: secret/app#DB_PASSWORD (see keywrap.toml)\nOTHER=vault://secret/shared#x\nLOG_LEVEL=info\n"
    );
    assert_eq!(read(dir.join(".gitignore")), "/.env\n");

    let run = bao
        .keywrap()
        .current_dir(&dir)
        .arg("exec")
        .args(print_vars(&[
            "OPENAI_API_KEY",
            "DB_PASSWORD",
            "SHARED",
            "DEBUG",
            "PORT",
            "OTHER",
        ]))
        .run();
    run.assert_success();
    // `exec` alone: the references from keywrap.toml and, through env_files, the plain
    // settings and the reference left in .env.
    assert_eq!(
        run.stdout,
        format!(
            "OPENAI_API_KEY=[{}]\nDB_PASSWORD=[{PASSWORD}]\nSHARED=[fake-shared]\nDEBUG=[true]\nPORT=[8080]\nOTHER=[fake-shared]\n",
            openai_key()
        )
    );

    // A second run has nothing left to move and adds no Vault version.
    let again = bao
        .keywrap()
        .current_dir(&dir)
        .args(["import", ".env", "--to", "secret/app", "--yes"])
        .run();
    again.assert_success();
    assert_eq!(bao.kv_metadata("secret/app")["current_version"], 1);
}

#[test]
fn split_writes_one_secret_per_variable() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    keywrap
        .args(["import", ".env", "--to", "secret/app/", "--split", "--yes"])
        .run()
        .assert_success();
    assert_eq!(
        bao.kv_field("secret/app/OPENAI_API_KEY", "value", None),
        openai_key().as_str()
    );
    assert_eq!(
        bao.kv_field("secret/app/DB_PASSWORD", "value", None),
        PASSWORD
    );
    let config = read(dir.join("keywrap.toml"));
    assert!(
        config.contains("OPENAI_API_KEY = \"secret/app/OPENAI_API_KEY#value\""),
        "{config}"
    );
    let run = bao
        .keywrap()
        .current_dir(&dir)
        .arg("exec")
        .args(print_vars(&["DB_PASSWORD"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, format!("DB_PASSWORD=[{PASSWORD}]\n"));
}

#[test]
fn env_refs_rewrite_the_env_file_for_exec_env_file() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    let run = keywrap
        .args([
            "import",
            ".env",
            "--to",
            "secret/app",
            "--env-refs",
            "--yes",
        ])
        .run();
    run.assert_success();
    assert_no_values(&run);
    assert!(!dir.join("keywrap.toml").exists());
    assert_eq!(
        read(dir.join(".env")),
        "# app settings\nDEBUG=true\nPORT=8080\n\nexport OPENAI_API_KEY=vault://secret/app#OPENAI_API_KEY\nDB_PASSWORD=vault://secret/app#DB_PASSWORD\nOTHER=vault://secret/shared#x\nLOG_LEVEL=info\n"
    );
    let run = bao
        .keywrap()
        .current_dir(&dir)
        .args(["exec", "--env-file", ".env"])
        .args(print_vars(&[
            "OPENAI_API_KEY",
            "DB_PASSWORD",
            "DEBUG",
            "OTHER",
        ]))
        .run();
    run.assert_success();
    assert_eq!(
        run.stdout,
        format!(
            "OPENAI_API_KEY=[{}]\nDB_PASSWORD=[{PASSWORD}]\nDEBUG=[true]\nOTHER=[fake-shared]\n",
            openai_key()
        )
    );
}

#[test]
fn dry_run_changes_nothing_and_prints_no_values() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app", "--dry-run"])
        .run();
    run.assert_success();
    assert_no_values(&run);
    assert!(run.stdout.contains("would import"));
    assert!(run
        .stdout
        .contains("move DB_PASSWORD (line 6) -> secret/app#DB_PASSWORD"));
    assert!(run.stdout.contains(".gitignore: add /.env"));
    assert!(run.stdout.contains("nothing was written"));
    assert_eq!(bao.api("GET", "secret/metadata/app", None).0, 404);
    assert_eq!(read(dir.join(".env")), env_text());
    assert!(!dir.join("keywrap.toml").exists());
    assert!(!dir.join(".gitignore").exists());
}

#[test]
fn a_committed_file_is_reported_for_rotation() {
    let bao = Bao::start();
    let repo = GitRepo::new();
    repo.write("app/.env", &env_text());
    let first = repo.commit_all("add env", "Dev <dev@example.com>");
    repo.write("app/.env", &format!("{}EXTRA=1\n", env_text()));
    repo.commit_all("more env", "Dev <dev@example.com>");
    let run = repo
        .keywrap()
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", support::ROOT_TOKEN)
        .args(["import", "app/.env", "--to", "secret/app", "--yes"])
        .run();
    run.assert_success();
    assert_no_values(&run);
    run.assert_stderr_contains("2 commit(s)")
        .assert_stderr_contains(&first[..7])
        .assert_stderr_contains("keywrap rotate")
        .assert_stderr_contains("app/.env is tracked by git")
        .assert_stderr_contains("run `git rm --cached app/.env` and commit");
    assert_eq!(read(repo.path().join(".gitignore")), "/app/.env\n");
    assert!(repo.path().join("app/keywrap.toml").exists());

    // A file that was never committed is said to be so, and an ignored one stays ignored.
    repo.write("other/.env", &env_text());
    repo.write("other/.gitignore", ".env\n");
    let run = repo
        .keywrap()
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", support::ROOT_TOKEN)
        .args(["import", "other/.env", "--to", "secret/other", "--yes"])
        .run();
    run.assert_success();
    run.assert_stderr_contains("never committed");
    assert!(!run.stderr.contains("git rm"), "{}", run.stderr);
    assert_eq!(read(repo.path().join("other/.gitignore")), ".env\n");
    assert_eq!(read(repo.path().join(".gitignore")), "/app/.env\n");
}

#[test]
fn without_a_terminal_or_yes_it_refuses_before_vault() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    let run = keywrap.args(["import", ".env", "--to", "secret/app"]).run();
    run.assert_code(125)
        .assert_stderr_contains("--yes")
        .assert_stderr_contains("nothing was written");
    assert_no_values(&run);
    assert_eq!(bao.api("GET", "secret/metadata/app", None).0, 404);
    assert_eq!(read(dir.join(".env")), env_text());
    assert!(!dir.join(".gitignore").exists());
}

#[test]
fn a_vault_failure_half_way_changes_no_local_file() {
    let bao = Bao::start();
    bao.write_policy(
        "first-only",
        "path \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }\npath \"secret/data/app/A_TOKEN\" { capabilities = [\"create\", \"read\", \"update\"] }\npath \"secret/metadata/app/A_TOKEN\" { capabilities = [\"read\"] }\n",
    );
    let token = bao.token_with(&["first-only"]);
    let keywrap = &mut bao.keywrap();
    let text = "A_TOKEN=fake-token-aaaaaaaa\nB_TOKEN=fake-token-bbbbbbbb\nPLAIN=1\n";
    keywrap.write_file(".env", text);
    keywrap.write_file(".gitignore", "target\n");
    let dir = keywrap.workdir.path().to_path_buf();
    let run = keywrap
        .env("VAULT_TOKEN", &token)
        .args(["import", ".env", "--to", "secret/app", "--split", "--yes"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("secret/app/B_TOKEN")
        .assert_stderr_contains("secret/app/A_TOKEN already written")
        .assert_stderr_contains("no local file was changed");
    assert!(!run.stderr.contains("fake-token-"), "{}", run.stderr);
    assert_eq!(
        bao.kv_field("secret/app/A_TOKEN", "value", None),
        "fake-token-aaaaaaaa"
    );
    assert_eq!(bao.api("GET", "secret/metadata/app/B_TOKEN", None).0, 404);
    assert_eq!(read(dir.join(".env")), text);
    assert_eq!(read(dir.join(".gitignore")), "target\n");
    assert!(!dir.join("keywrap.toml").exists());
}

#[test]
fn a_failed_rewrite_restores_the_files_already_changed() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    keywrap.write_file(".gitignore", "# build output\ntarget\n");
    // keywrap.toml cannot be created: a directory holds its name.
    std::fs::create_dir(dir.join("keywrap.toml")).unwrap();
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app", "--yes"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("cannot rewrite")
        .assert_stderr_contains("restored the original")
        .assert_stderr_contains(".gitignore");
    assert_no_values(&run);
    assert_eq!(read(dir.join(".gitignore")), "# build output\ntarget\n");
    assert_eq!(read(dir.join(".env")), env_text());
    assert!(dir.join("keywrap.toml").is_dir());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("keywrap-import"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The values reached Vault first (verified), so nothing is lost.
    assert_eq!(bao.kv_field("secret/app", "DB_PASSWORD", None), PASSWORD);
}

#[test]
fn an_existing_field_with_another_value_needs_overwrite() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    bao.kv_put(
        "secret/app",
        &[
            ("DB_PASSWORD", "fake-older-password"),
            ("UNRELATED", "fake-kept"),
        ],
    );
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app", "--yes"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("DB_PASSWORD")
        .assert_stderr_contains("--overwrite")
        .assert_stderr_contains("no local file was changed");
    assert_no_values(&run);
    assert!(!run.stderr.contains("fake-older-password"));
    assert_eq!(bao.kv_metadata("secret/app")["current_version"], 1);
    assert_eq!(read(dir.join(".env")), env_text());

    bao.keywrap()
        .current_dir(&dir)
        .args([
            "import",
            ".env",
            "--to",
            "secret/app",
            "--yes",
            "--overwrite",
        ])
        .run()
        .assert_success();
    assert_eq!(bao.kv_field("secret/app", "DB_PASSWORD", None), PASSWORD);
    assert_eq!(bao.kv_field("secret/app", "UNRELATED", None), "fake-kept");
    assert_eq!(bao.kv_metadata("secret/app")["current_version"], 2);
}

#[test]
fn on_a_terminal_it_asks_and_no_means_nothing_changes() {
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app"])
        .stdin("n\n")
        .run_in_pty();
    assert!(run.stdout.contains("[y/N]"), "{}", run.stdout);
    assert!(run.stdout.contains("import cancelled"), "{}", run.stdout);
    assert_eq!(bao.api("GET", "secret/metadata/app", None).0, 404);
    assert_eq!(read(dir.join(".env")), env_text());

    let run = bao
        .keywrap()
        .current_dir(&dir)
        .args(["import", ".env", "--to", "secret/app"])
        .stdin("y\n")
        .run_in_pty();
    run.assert_success();
    assert_eq!(bao.kv_field("secret/app", "DB_PASSWORD", None), PASSWORD);
    assert!(read(dir.join(".env")).contains("# DB_PASSWORD moved to Vault"));
}

#[test]
fn a_token_that_cannot_write_the_path_changes_nothing() {
    let bao = Bao::start();
    bao.write_policy(
        "read-only",
        "path \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }\npath \"secret/data/app\" { capabilities = [\"read\"] }\npath \"secret/metadata/app\" { capabilities = [\"read\"] }\n",
    );
    let token = bao.token_with(&["read-only"]);
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    let run = keywrap
        .env("VAULT_TOKEN", &token)
        .args(["import", ".env", "--to", "secret/app", "--yes"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("permission denied")
        .assert_stderr_contains("no local file was changed");
    assert_no_values(&run);
    assert_eq!(read(dir.join(".env")), env_text());
    assert!(!dir.join(".gitignore").exists());
    assert!(!dir.join("keywrap.toml").exists());
}

/// An env file with secrets the classifier alone leaves behind: a commented-out old key and
/// a password inside a URL.
fn leftover_text() -> String {
    format!(
        "# old key: OPENAI_API_KEY={}\nCACHE_URL=redis://:fake-redis-pass-77@cache:6379/0\nPORT=8080\n",
        openai_key()
    )
}

#[test]
fn secrets_left_in_plaintext_are_named_and_moved_on_request() {
    let bao = Bao::start();
    let keywrap = &mut bao.keywrap();
    let dir = keywrap.workdir.path().to_path_buf();
    keywrap.write_file(".env", &leftover_text());

    // Without the flag: one warning per leftover, the way to move them, and the file as it was.
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app", "--dry-run"])
        .run();
    run.assert_success()
        .assert_stderr_contains("the commented-out OPENAI_API_KEY (line 1) looks like an old key; the import leaves it in plaintext")
        .assert_stderr_contains("CACHE_URL (line 2) keeps a password inside its URL")
        .assert_stderr_contains("--move-leftovers");
    for value in [openai_key().as_str(), "fake-redis-pass-77"] {
        assert!(!run.stderr.contains(value), "{}", run.stderr);
        assert!(!run.stdout.contains(value), "{}", run.stdout);
    }
    assert_eq!(read(dir.join(".env")), leftover_text());

    let run = bao
        .keywrap()
        .current_dir(&dir)
        .args([
            "import",
            ".env",
            "--to",
            "secret/app",
            "--yes",
            "--move-leftovers",
        ])
        .run();
    run.assert_success();
    assert!(!run.stderr.contains("fake-redis-pass-77"), "{}", run.stderr);
    assert_eq!(
        bao.kv_field("secret/app", "OPENAI_API_KEY_COMMENTED_LINE1", None),
        openai_key().as_str()
    );
    assert_eq!(
        bao.kv_field("secret/app", "CACHE_URL", None),
        "redis://:fake-redis-pass-77@cache:6379/0"
    );
    let env = read(dir.join(".env"));
    assert_eq!(
        env,
        "# OPENAI_API_KEY (commented out) moved to Vault: secret/app#OPENAI_API_KEY_COMMENTED_LINE1\n# CACHE_URL moved to Vault: secret/app#CACHE_URL (see keywrap.toml)\nPORT=8080\n"
    );
    let config = read(dir.join("keywrap.toml"));
    assert!(
        config.contains("CACHE_URL = \"secret/app#CACHE_URL\""),
        "{config}"
    );
    assert!(
        !config.contains("COMMENTED"),
        "an old key gets no reference: {config}"
    );

    let run = bao
        .keywrap()
        .current_dir(&dir)
        .arg("exec")
        .args(print_vars(&["CACHE_URL", "PORT"]))
        .run();
    run.assert_success();
    assert_eq!(
        run.stdout,
        "CACHE_URL=[redis://:fake-redis-pass-77@cache:6379/0]\nPORT=[8080]\n"
    );
}

#[test]
fn on_a_terminal_it_offers_to_move_the_leftovers() {
    let bao = Bao::start();
    let keywrap = &mut bao.keywrap();
    let dir = keywrap.workdir.path().to_path_buf();
    keywrap.write_file(".env", &leftover_text());
    let run = keywrap
        .args(["import", ".env", "--to", "secret/app"])
        .stdin("y\ny\n")
        .run_in_pty();
    run.assert_success();
    assert!(
        run.stdout
            .contains("Move 2 of these to Vault as well? [y/N]"),
        "{}",
        run.stdout
    );
    assert_eq!(
        bao.kv_field("secret/app", "CACHE_URL", None),
        "redis://:fake-redis-pass-77@cache:6379/0"
    );
    assert!(!read(dir.join(".env")).contains("fake-redis-pass-77"));
}

/// The temporary file each rewrite goes through is created 0600 (O_CREAT|O_EXCL with mode
/// 0600 in one call), so no other user can open it while it holds the old and new text; the
/// rewritten file then keeps its own mode, and a new one gets 0666 less the umask.
#[test]
fn the_rewrite_is_private_while_it_is_written() {
    use std::os::unix::fs::PermissionsExt;
    let bao = Bao::start();
    let keywrap = &mut setup(&bao);
    let dir = keywrap.workdir.path().to_path_buf();
    std::fs::set_permissions(dir.join(".env"), std::fs::Permissions::from_mode(0o640)).unwrap();
    keywrap.args(["import", ".env", "--to", "secret/app", "--yes"]);
    if support::strace::available() {
        let (status, stderr, trace) = support::strace::trace(keywrap, support::strace::FILE_CALLS);
        assert!(status.success(), "{stderr}");
        let temporaries: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains("keywrap-import") && l.contains("O_CREAT"))
            .collect();
        // .gitignore, keywrap.toml and .env.
        assert_eq!(temporaries.len(), 3, "{trace}");
        for line in &temporaries {
            assert!(
                line.contains("O_EXCL") && line.contains(", 0600) = "),
                "{temporaries:#?}"
            );
        }
    } else {
        eprintln!("strace is not installed: checking the final modes only");
        keywrap.run().assert_success();
    }
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(".env"), 0o640);
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(mode("keywrap.toml"), 0o666 & !umask);
    assert!(read(dir.join(".env")).contains("# DB_PASSWORD moved to Vault"));
}
