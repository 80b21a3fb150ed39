//! A cloned repository's keywrap.toml cannot send the Vault token or a file anywhere: until
//! the user trusts it, every command refuses (125, one line) the settings that could, before
//! contacting anything; `keywrap trust`, a change, `keywrap untrust` round trip; CI trusts
//! with `KEYWRAP_TRUST`; a terminal asks.

mod support;

use std::path::{Path, PathBuf};

use support::recorder::Recorder;
use support::{Bao, BaoOptions, Keywrap, Run, ROOT_TOKEN};

/// A token the hostile file must never see leave.
const FAKE_TOKEN: &str = "hvs.fake-token-for-the-hostile-repository-test";

/// keywrap in `repo` with the trust store under `config_home`, reading Vault with the root
/// token; the address comes from wherever the test says.
fn keywrap_in(repo: &Path, config_home: &Path) -> Keywrap {
    let mut keywrap = Keywrap::new();
    keywrap
        .current_dir(repo)
        .env("XDG_CONFIG_HOME", config_home)
        .env("VAULT_TOKEN", ROOT_TOKEN);
    keywrap
}

/// The one line of a refusal of `setting` in `file`, and nothing else on stderr.
#[track_caller]
fn assert_refused(run: &Run, setting: &str, file: &Path) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line:\n{}", run.stderr);
    assert_refusal_line(run, setting, file);
}

/// The last line of stderr refuses `setting` in `file`, and it is the only error.
#[track_caller]
fn assert_refusal_line(run: &Run, setting: &str, file: &Path) {
    run.assert_code(125);
    let errors = run.stderr.lines().filter(|l| l.contains("error")).count();
    assert_eq!(errors, 1, "one error:\n{}", run.stderr);
    let line = run.stderr.lines().last().unwrap_or_default();
    let file = std::fs::canonicalize(file)
        .unwrap_or_else(|_| file.to_path_buf())
        .display()
        .to_string();
    assert!(
        line.starts_with(&format!("keywrap: error: {setting} in ")),
        "{line}"
    );
    assert!(line.contains(" is not used: "), "{line}");
    assert!(line.contains("`keywrap trust "), "{line}");
    let named = [file.clone(), file.replace("/private", "")];
    assert!(
        named.iter().any(|f| line.contains(f.as_str())),
        "{line} names {file}"
    );
}

fn hostile_repo(address: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("keywrap.toml"),
        format!("[vault]\naddress = \"{address}\"\n\n[env]\nA = \"secret/a#k\"\n"),
    )
    .unwrap();
    std::fs::write(
        repo.path().join(".env"),
        "API_TOKEN=fake-import-value-123456\n",
    )
    .unwrap();
    repo
}

#[test]
fn a_hostile_address_receives_nothing_from_any_command() {
    let recorder = Recorder::start();
    let repo = hostile_repo(&recorder.url);
    let config = repo.path().join("keywrap.toml");
    let commands: &[&[&str]] = &[
        &["exec", "--", "true"],
        &["check"],
        &["status"],
        &["policy"],
        &["scan", "--vault", "."],
        &["rotate", "secret/a#k"],
        &["audit", "setup"],
        &["proxy", "keys", "list"],
        &["import", ".env", "--to", "secret/app", "--yes"],
    ];
    for args in commands {
        // The token from VAULT_TOKEN, and from ~/.vault-token.
        for from_file in [false, true] {
            let home = tempfile::tempdir().unwrap();
            let mut keywrap = Keywrap::new();
            keywrap
                .current_dir(repo.path())
                .env("XDG_CONFIG_HOME", home.path())
                .args(*args)
                .stdin("fake-new-key-value\n");
            if from_file {
                std::fs::write(keywrap.home.path().join(".vault-token"), FAKE_TOKEN).unwrap();
            } else {
                keywrap.env("VAULT_TOKEN", FAKE_TOKEN);
            }
            let run = keywrap.run();
            if args[0] == "import" {
                // The plan and the git history note come first; then the refusal.
                assert_refusal_line(&run, "[vault] address", &config);
            } else {
                assert_refused(&run, "[vault] address", &config);
            }
            assert!(!run.stderr.contains(FAKE_TOKEN), "{}", run.stderr);
            recorder.assert_untouched();
        }
    }
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".env")).unwrap(),
        "API_TOKEN=fake-import-value-123456\n",
        "a refused import changes nothing"
    );
}

#[test]
fn an_address_from_the_environment_needs_no_trust_and_no_question() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-from-my-vault")]);
    let recorder = Recorder::start();
    let repo = hostile_repo(&recorder.url);
    let home = tempfile::tempdir().unwrap();
    let run = keywrap_in(repo.path(), home.path())
        .env("VAULT_ADDR", &bao.addr)
        .args(["exec", "--no-mask", "--", "sh", "-c", "printf %s \"$A\""])
        .run_in_pty();
    run.assert_success();
    assert!(run.stdout.contains("fake-value-from-my-vault"), "{run:?}");
    assert!(!run.stdout.contains("[y/N]"), "no question: {}", run.stdout);
    assert!(
        !run.stdout.contains("plain http"),
        "loopback: {}",
        run.stdout
    );
    recorder.assert_untouched();
    assert!(
        !home.path().join("keywrap").exists(),
        "nothing was recorded"
    );
}

#[test]
fn login_files_and_variables_named_by_an_untrusted_file_are_not_read() {
    let bao = Bao::start();
    let outside = tempfile::tempdir().unwrap();
    let secret_file = outside.path().join("id_ed25519");
    std::fs::write(&secret_file, "fake-private-key-material-0123456789\n").unwrap();
    // Made at run time: the repository holds no token-shaped literal.
    let github_token = &["ghs", "_fakeGitHubTokenForTheTrustTest0123456789"].concat();
    let cases = [
        ("jwt_env = \"GITHUB_TOKEN\"", "[auth] jwt_env"),
        ("jwt_file = \"../outside/id_ed25519\"", "[auth] jwt_file"),
        (
            &*format!("jwt_file = \"{}\"", secret_file.display()),
            "[auth] jwt_file",
        ),
        (
            "role_id_file = \"/etc/hostname\"\nsecret_id_file = \"../outside/id_ed25519\"",
            "[auth] role_id_file",
        ),
    ];
    for (setting, key) in cases {
        let repo = tempfile::tempdir().unwrap();
        let config = repo.path().join("keywrap.toml");
        std::fs::write(
            &config,
            format!("[auth]\nrole = \"ci\"\n{setting}\n\n[env]\nA = \"secret/a#k\"\n"),
        )
        .unwrap();
        let home = tempfile::tempdir().unwrap();
        let run = keywrap_in(repo.path(), home.path())
            .env_remove("VAULT_TOKEN")
            .env("VAULT_ADDR", &bao.addr)
            .env("GITHUB_TOKEN", github_token)
            .args(["exec", "--", "true"])
            .run();
        assert_refused(&run, key, &config);
        assert!(!run.stderr.contains(github_token), "{}", run.stderr);
        assert!(!run.stderr.contains("fake-private-key"), "{}", run.stderr);
    }
    assert!(
        !bao.audit_text().contains("/login"),
        "no login reached Vault"
    );
}

#[test]
fn env_files_outside_the_tree_need_trust_and_inside_ones_do_not() {
    let bao = Bao::start();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("vault-token"),
        format!("{FAKE_TOKEN}\n"),
    )
    .unwrap();
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join("conf")).unwrap();
    std::fs::write(repo.path().join("conf/app.env"), "MODE=fake-inside\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("vault-token"),
        repo.path().join("conf/link.env"),
    )
    .unwrap();
    let config = repo.path().join("keywrap.toml");
    let home = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("vault-token").display().to_string();
    for entry in [
        outside_file.as_str(),
        "conf/link.env",
        "../x/../../etc/hostname",
    ] {
        std::fs::write(
            &config,
            format!("env_files = [\"conf/app.env\", \"{entry}\"]\n"),
        )
        .unwrap();
        let run = keywrap_in(repo.path(), home.path())
            .env("VAULT_ADDR", &bao.addr)
            .args(["exec", "--", "true"])
            .run();
        assert_refused(
            &run,
            &format!("env_files entry \"{entry}\" (outside the file's directory)"),
            &config,
        );
        assert!(!run.stderr.contains("fake-token"), "{}", run.stderr);
    }
    std::fs::write(&config, "env_files = [\"conf/app.env\"]\n").unwrap();
    let run = keywrap_in(repo.path(), home.path())
        .env("VAULT_ADDR", &bao.addr)
        .args(["exec", "--", "sh", "-c", "printf %s \"$MODE\""])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-inside");
    // The same file given as --env-file is the user's own choice.
    let run = keywrap_in(repo.path(), home.path())
        .args([
            "exec",
            "--env-file",
            "conf/link.env",
            "--dry-run",
            "--",
            "true",
        ])
        .run();
    run.assert_code(125);
    assert!(!run.stderr.contains("is not used"), "{}", run.stderr);
    assert!(!run.stderr.contains("fake-token"), "{}", run.stderr);
}

#[test]
fn trust_change_and_untrust_round_trip() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-trusted-value")]);
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    let text = format!(
        "[vault]\naddress = \"{}\"\n\n[env]\nA = \"secret/a#k\"\n",
        bao.addr
    );
    std::fs::write(&config, &text).unwrap();
    let home = tempfile::tempdir().unwrap();
    let exec = || {
        keywrap_in(repo.path(), home.path())
            .args(["exec", "--no-mask", "--", "sh", "-c", "printf %s \"$A\""])
            .run()
    };
    let trust = |args: &[&str]| keywrap_in(repo.path(), home.path()).args(args).run();
    let listed = || trust(&["trust", "--list"]).stdout;

    assert_refused(&exec(), "[vault] address", &config);
    assert!(listed().contains("no trusted files"));

    let run = trust(&["trust"]);
    run.assert_success();
    assert!(
        run.stdout
            .contains(&format!("[vault] address = \"{}\"", bao.addr)),
        "{}",
        run.stdout
    );
    let run = exec();
    run.assert_success();
    assert_eq!(run.stdout, "fake-trusted-value");
    let canonical = std::fs::canonicalize(&config)
        .unwrap()
        .display()
        .to_string();
    assert!(
        listed().contains(&format!("trusted  {canonical}")),
        "{}",
        listed()
    );

    std::fs::write(&config, format!("{text}# an edit from git pull\n")).unwrap();
    let run = exec();
    assert_refused(&run, "[vault] address", &config);
    assert!(
        run.stderr.contains("changed since you trusted it"),
        "{}",
        run.stderr
    );
    assert!(
        listed().contains(&format!("changed  {canonical}")),
        "{}",
        listed()
    );

    trust(&["trust", config.to_str().unwrap()]).assert_success();
    exec().assert_success();

    let run = trust(&["untrust"]);
    run.assert_success();
    assert!(run.stdout.contains(&format!("untrusted {canonical}")));
    assert_refused(&exec(), "[vault] address", &config);
    assert!(listed().contains("no trusted files"));
    assert!(trust(&["untrust"]).stdout.contains("was not trusted"));
}

#[test]
fn ci_trusts_the_repositorys_own_file_with_the_variable() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-ci-value")]);
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    std::fs::write(
        &config,
        format!(
            "[vault]\naddress = \"{}\"\n\n[env]\nA = \"secret/a#k\"\n",
            bao.addr
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = keywrap_in(repo.path(), home.path())
        .env("KEYWRAP_TRUST", "keywrap.toml")
        .args(["exec", "--no-mask", "--", "sh", "-c", "printf %s \"$A\""])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-ci-value");
    assert!(
        !home.path().join("keywrap").exists(),
        "CI trust writes nothing"
    );
    let run = keywrap_in(repo.path(), home.path())
        .env("KEYWRAP_TRUST", "other/keywrap.toml")
        .args(["exec", "--", "true"])
        .run();
    assert_refused(&run, "[vault] address", &config);
    assert!(
        run.stderr.contains("KEYWRAP_TRUST names other files"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_terminal_asks_showing_the_settings_and_yes_is_recorded() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-asked-value")]);
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("keywrap.toml"),
        format!(
            "[vault]\naddress = \"{}\"\n[auth]\njwt_env = \"CI_JWT\"\n\n[env]\nA = \"secret/a#k\"\n",
            bao.addr
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = keywrap_in(repo.path(), home.path())
        .stdin("n\n")
        .args(["exec", "--", "true"])
        .run_in_pty();
    assert_eq!(run.code(), Some(125), "{run:?}");
    assert!(
        run.stdout.contains("you did not trust the file"),
        "{}",
        run.stdout
    );
    for shown in [
        format!("[vault] address = \"{}\"", bao.addr),
        "[auth] jwt_env = \"CI_JWT\"".to_string(),
        "[y/N]".to_string(),
    ] {
        assert!(run.stdout.contains(&shown), "{shown}: {}", run.stdout);
    }

    let run = keywrap_in(repo.path(), home.path())
        .stdin("y\n")
        .args(["exec", "--no-mask", "--", "sh", "-c", "printf %s \"$A\""])
        .run_in_pty();
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("fake-asked-value"), "{}", run.stdout);
    // Recorded: the next run, without a terminal, is trusted.
    let run = keywrap_in(repo.path(), home.path())
        .args(["exec", "--", "true"])
        .run();
    run.assert_success();
}

#[test]
fn skip_verify_in_the_file_is_never_honoured() {
    let bao = Bao::start_with(BaoOptions { tls: true });
    bao.kv_put("secret/a", &[("k", "fake-tls-value")]);
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    std::fs::write(
        &config,
        "[vault]\nskip_verify = true\n\n[env]\nA = \"secret/a#k\"\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    keywrap_in(repo.path(), home.path())
        .arg("trust")
        .run()
        .assert_success();
    let run = keywrap_in(repo.path(), home.path())
        .env("VAULT_ADDR", &bao.addr)
        .args(["exec", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("skip_verify = true in ")
        .assert_stderr_contains("is ignored")
        .assert_stderr_contains("VAULT_CACERT");
    let run = keywrap_in(repo.path(), home.path())
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_SKIP_VERIFY", "true")
        .args(["exec", "--", "true"])
        .run();
    run.assert_success();
}

#[test]
fn the_trust_store_is_private_from_its_creation() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("keywrap.toml"),
        "[env]\nA = \"secret/a#k\"\n",
    )
    .unwrap();
    let mut keywrap = Keywrap::new();
    keywrap.current_dir(repo.path()).arg("trust");
    let store = keywrap.home.path().join(".config/keywrap/trusted");
    if support::strace::available() {
        let (status, stderr, trace) =
            support::strace::trace(&mut keywrap, support::strace::FILE_CALLS);
        assert!(status.success(), "{stderr}");
        let created: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains("O_CREAT") || l.contains("mkdir"))
            .collect();
        let dir = store.parent().unwrap().display().to_string();
        assert!(
            created
                .iter()
                .any(|l| l.contains(&format!("\"{dir}\", 0700"))),
            "{created:#?}"
        );
        let files: Vec<&&str> = created.iter().filter(|l| l.contains("O_CREAT")).collect();
        assert_eq!(files.len(), 1, "{created:#?}");
        assert!(
            files[0].contains("O_EXCL") && files[0].contains(", 0600) = "),
            "{created:#?}"
        );
    } else {
        eprintln!("strace is not installed: checking the modes only");
        keywrap.run().assert_success();
    }
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&store), 0o600);
    assert_eq!(mode(store.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&store).unwrap();
    let canonical: PathBuf = std::fs::canonicalize(repo.path().join("keywrap.toml")).unwrap();
    assert!(
        text.lines()
            .any(|l| l.len() > 66 && l.ends_with(&format!("  {}", canonical.display()))),
        "{text}"
    );
}

#[test]
fn an_import_into_a_trusted_file_keeps_it_trusted() {
    let bao = Bao::start();
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    std::fs::write(&config, format!("[vault]\naddress = \"{}\"\n", bao.addr)).unwrap();
    std::fs::write(
        repo.path().join(".env"),
        "API_TOKEN=fake-imported-token-value\nPORT=8080\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    keywrap_in(repo.path(), home.path())
        .arg("trust")
        .run()
        .assert_success();
    keywrap_in(repo.path(), home.path())
        .args(["import", ".env", "--to", "secret/app", "--yes"])
        .run()
        .assert_success();
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("API_TOKEN = \"secret/app#API_TOKEN\""));
    // The import's own edit did not make the user trust the file again.
    let run = keywrap_in(repo.path(), home.path())
        .args([
            "exec",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "printf '%s %s' \"$API_TOKEN\" \"$PORT\"",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-imported-token-value 8080");
}

#[test]
fn an_untrusted_files_proxy_upstreams_get_nothing() {
    let upstream = Recorder::start();
    let vault = Recorder::start();
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    std::fs::write(
        &config,
        format!(
            "[env]\nOPENAI = \"secret/openai#api_key\"\n\n[[proxy.routes]]\nprefix = \"/openai\"\nupstream = \"{}\"\nheaders = {{ Authorization = \"Bearer {{OPENAI}}\" }}\n",
            upstream.url
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let run = keywrap_in(repo.path(), home.path())
        .env("VAULT_ADDR", &vault.url)
        .args(["proxy", "--listen", "127.0.0.1:0"])
        .run();
    assert_refused(&run, "[[proxy.routes]] upstream", &config);
    upstream.assert_untouched();
    vault.assert_untouched();
}

#[test]
fn an_untrusted_files_limits_store_and_alert_webhooks_get_nothing() {
    let redis = Recorder::start();
    let upstream = Recorder::start();
    let vault = Recorder::start();
    let redis_port = redis.url.rsplit(':').next().unwrap().to_string();
    let home = tempfile::tempdir().unwrap();
    // The store would be sent the password read from Vault with the user's token.
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nstore = \"redis://127.0.0.1:{redis_port}/0\"\nstore_password = \"secret/prod#redis\"\n"
        ),
    )
    .unwrap();
    for args in [
        vec![
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url,
        ],
        vec!["proxy", "keys", "list"],
    ] {
        let run = keywrap_in(repo.path(), home.path())
            .env("VAULT_ADDR", &vault.url)
            .args(args.clone())
            .run();
        assert_refused(&run, "[proxy] store", &config);
    }
    // An alert's destination is a secret of the user's Vault that the file picks.
    let repo = tempfile::tempdir().unwrap();
    let config = repo.path().join("keywrap.toml");
    std::fs::write(
        &config,
        "[[proxy.alerts]]\nurl = \"secret/prod#database_url\"\nbudget_percent = [50]\n",
    )
    .unwrap();
    let run = keywrap_in(repo.path(), home.path())
        .env("VAULT_ADDR", &vault.url)
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url,
        ])
        .run();
    assert_refused(&run, "[[proxy.alerts]] url", &config);
    redis.assert_untouched();
    upstream.assert_untouched();
    vault.assert_untouched();
}
