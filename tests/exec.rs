//! `keywrap exec` against a real OpenBao server: injection, KV v1/v2, versions, one read per
//! path, precedence, the stripped token, exit statuses and --dry-run.

mod support;

use support::{Bao, Keywrap, ROOT_TOKEN};

/// A child that prints the named variables as NAME=VALUE lines (or NAME unset), with
/// masking off so the values themselves can be checked (tests/mask.rs covers masking).
fn print_vars(names: &[&str]) -> Vec<String> {
    let script = names
        .iter()
        .map(|n| format!("if [ -n \"${{{n}+x}}\" ]; then printf '%s=%s\\n' {n} \"${n}\"; else echo '{n} unset'; fi"))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        "--no-mask".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        script,
    ]
}

#[test]
fn injects_a_kv2_field_and_strips_the_token() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-openai-key-for-tests")]);
    let run = bao
        .keywrap()
        .env("BAO_TOKEN", ROOT_TOKEN)
        .env("VAULT_ROLE_ID", "fake-role")
        .args(["exec", "--secret", "OPENAI_API_KEY=secret/openai#api_key"])
        .args(print_vars(&[
            "OPENAI_API_KEY",
            "VAULT_TOKEN",
            "BAO_TOKEN",
            "VAULT_ROLE_ID",
            "VAULT_ADDR",
            "KEYWRAP_RUN",
        ]))
        .run();
    run.assert_success();
    assert!(
        run.stdout
            .contains("OPENAI_API_KEY=fake-openai-key-for-tests\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("VAULT_TOKEN unset"));
    assert!(run.stdout.contains("BAO_TOKEN unset"));
    assert!(run.stdout.contains("VAULT_ROLE_ID unset"));
    assert!(
        run.stdout.contains(&format!("VAULT_ADDR={}", bao.addr)),
        "non-credential settings stay"
    );
    assert!(run.stdout.contains("KEYWRAP_RUN="), "{}", run.stdout);
}

#[test]
fn reads_kv1_and_the_vault_scheme() {
    let bao = Bao::start();
    bao.enable_kv("kv1", 1);
    bao.kv1_put("kv1/team/db", &[("password", "fake-db-password")]);
    let run = bao
        .keywrap()
        .args(["exec", "-s", "DB=vault://kv1/team/db#password"])
        .args(print_vars(&["DB"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "DB=fake-db-password\n");
    assert_eq!(bao.audit_reads_of("kv1/team/db").len(), 1);
}

#[test]
fn pins_versions_and_defaults_to_the_latest() {
    let bao = Bao::start();
    bao.enable_kv("kv", 2);
    bao.kv_put("kv/team-a/openai", &[("api_key", "fake-old-key")]);
    bao.kv_put("kv/team-a/openai", &[("api_key", "fake-new-key")]);
    let run = bao
        .keywrap()
        .args([
            "exec",
            "-s",
            "OLD=kv/team-a/openai?version=1#api_key",
            "-s",
            "NEW=kv/team-a/openai#api_key",
        ])
        .args(print_vars(&["OLD", "NEW"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "OLD=fake-old-key\nNEW=fake-new-key\n");
}

#[test]
fn reads_each_path_once_however_many_fields() {
    let bao = Bao::start();
    bao.kv_put(
        "secret/multi",
        &[
            ("a", "fake-a-value"),
            ("b", "fake-b-value"),
            ("c", "fake-c-value"),
        ],
    );
    bao.kv_put("secret/other", &[("x", "fake-x-value")]);
    let run = bao
        .keywrap()
        .args([
            "exec",
            "-s",
            "A=secret/multi#a",
            "-s",
            "B=secret/multi#b",
            "-s",
            "C=secret/multi#c",
            "-s",
            "X=secret/other#x",
        ])
        .args(print_vars(&["A", "B", "C", "X"]))
        .run();
    run.assert_success();
    assert_eq!(
        run.stdout,
        "A=fake-a-value\nB=fake-b-value\nC=fake-c-value\nX=fake-x-value\n"
    );
    assert_eq!(bao.audit_reads_of("secret/data/multi").len(), 1);
    assert_eq!(bao.audit_reads_of("secret/data/other").len(), 1);
}

#[test]
fn config_is_found_upwards_and_flags_override_it() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-from-file")]);
    bao.kv_put("secret/b", &[("k", "fake-from-flag")]);
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nFILE_ONLY = \"secret/a#k\"\nBOTH = \"secret/a#k\"\n",
    );
    let nested = keywrap.workdir.path().join("src/deep");
    std::fs::create_dir_all(&nested).unwrap();
    let run = keywrap
        .current_dir(&nested)
        .args(["exec", "-s", "BOTH=secret/b#k"])
        .args(print_vars(&["BOTH", "FILE_ONLY"]))
        .run();
    run.assert_success();
    assert_eq!(
        run.stdout,
        "BOTH=fake-from-flag\nFILE_ONLY=fake-from-file\n"
    );
}

#[test]
fn explicit_config_and_address_from_the_file() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-1")]);
    let mut keywrap = Keywrap::new();
    let config = keywrap.write_file(
        "elsewhere/custom.toml",
        &format!(
            "[vault]\naddress = \"{}\"\n[env]\nA = \"secret/a#k\"\n",
            bao.addr
        ),
    );
    keywrap.trust(&config);
    let run = keywrap
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(["exec", "--config"])
        .arg(&config)
        .args(print_vars(&["A"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "A=fake-value-1\n");
}

#[test]
fn environment_address_beats_the_file_and_flag_beats_both() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-2")]);
    let unreachable = format!("http://127.0.0.1:{}", support::free_port());
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        &format!("[vault]\naddress = \"{unreachable}\"\n[env]\nA = \"secret/a#k\"\n"),
    );
    keywrap
        .args(["exec", "--"])
        .args(["true"])
        .run()
        .assert_success();

    let mut keywrap = Keywrap::new();
    let run = keywrap
        .env("VAULT_ADDR", &unreachable)
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(["--address", &bao.addr, "exec", "-s", "A=secret/a#k"])
        .args(print_vars(&["A"]))
        .run();
    run.assert_success();
}

#[test]
fn token_file_is_used_when_no_variable_is_set() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-3")]);
    let mut keywrap = Keywrap::new();
    std::fs::write(
        keywrap.home.path().join(".vault-token"),
        format!("{ROOT_TOKEN}\n"),
    )
    .unwrap();
    let run = keywrap
        .env("BAO_ADDR", &bao.addr)
        .args(["exec", "-s", "A=secret/a#k"])
        .args(print_vars(&["A"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "A=fake-value-3\n");
}

#[test]
fn passes_on_the_childs_exit_status() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-4")]);
    let run = bao
        .keywrap()
        .args(["exec", "-s", "A=secret/a#k", "--", "sh", "-c", "exit 3"])
        .run();
    run.assert_code(3);
    let run = bao
        .keywrap()
        .args([
            "exec",
            "-s",
            "A=secret/a#k",
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ])
        .run();
    run.assert_code(128 + 9);
    let run = bao
        .keywrap()
        .args([
            "exec",
            "-s",
            "A=secret/a#k",
            "--",
            "sh",
            "-c",
            "kill -TERM $$",
        ])
        .run();
    run.assert_code(128 + 15);
}

#[test]
fn a_missing_command_costs_no_secret_read() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-5")]);
    let run = bao
        .keywrap()
        .args(["exec", "-s", "A=secret/a#k", "--", "no-such-command-kw"])
        .run();
    run.assert_code(127)
        .assert_stderr_contains("no-such-command-kw");
    assert!(bao.audit_reads_of("secret/data/a").is_empty());

    let mut keywrap = bao.keywrap();
    keywrap.write_file("not-executable.sh", "#!/bin/sh\necho hi\n");
    let run = keywrap
        .args(["exec", "-s", "A=secret/a#k", "--", "./not-executable.sh"])
        .run();
    run.assert_code(126);
    assert!(bao.audit_reads_of("secret/data/a").is_empty());

    let mut keywrap = bao.keywrap();
    let script = keywrap.write_file("old-python.sh", "#!/no/such/python2\nprint 1\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = keywrap
        .args(["exec", "-s", "A=secret/a#k", "--", "./old-python.sh"])
        .run();
    run.assert_code(127)
        .assert_stderr_contains("interpreter /no/such/python2 was not found");
    assert!(bao.audit_reads_of("secret/data/a").is_empty());
}

#[test]
fn a_mistyped_option_is_a_usage_error_not_the_command() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-5")]);
    let run = bao
        .keywrap()
        .args(["exec", "--dryrun", "-s", "A=secret/a#k", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("unexpected argument '--dryrun'")
        .assert_stderr_contains("--dry-run");
    assert!(bao.audit_reads_of("secret/data/a").is_empty());
}

#[test]
fn dry_run_lists_references_and_reads_nothing() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-6")]);
    let mut keywrap = bao.keywrap();
    let config = keywrap.write_file("keywrap.toml", "[env]\nFROM_FILE = \"secret/a#k\"\n");
    let marker = keywrap.workdir.path().join("started");
    let run = keywrap
        .args([
            "exec",
            "--dry-run",
            "-s",
            "FROM_FLAG=secret/a?version=1#k",
            "--",
            "touch",
        ])
        .arg(&marker)
        .run();
    run.assert_success();
    assert!(run.stdout.contains("FROM_FILE"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("{}:2", config.display())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FROM_FLAG  secret/a?version=1#k"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--secret"));
    assert!(!run.stdout.contains("fake-value-6"));
    assert!(!marker.exists(), "dry run started the command");
    assert!(bao.audit_reads_of("secret/data/a").is_empty());
}

#[test]
fn nested_runs_explain_the_missing_credentials() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-7")]);
    let keywrap_binary = env!("CARGO_BIN_EXE_keywrap");
    let run = bao
        .keywrap()
        .args([
            "exec",
            "-s",
            "A=secret/a#k",
            "--",
            keywrap_binary,
            "exec",
            "-s",
            "B=secret/a#k",
            "--",
            "true",
        ])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("nested keywrap, inside another `keywrap exec` (KEYWRAP_RUN=");
}

#[test]
fn core_dumps_are_off_for_keywrap_but_not_for_the_child() {
    if !std::path::Path::new("/proc/self/limits").exists() {
        return;
    }
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-8")]);
    // Start keywrap with a known soft limit: keywrap drops its own to 0, and the child gets
    // the original back.
    let keywrap_binary = env!("CARGO_BIN_EXE_keywrap");
    let script = format!(
        "ulimit -S -c 4096; exec {keywrap_binary} exec -s A=secret/a#k -- sh -c \"grep 'Max core' /proc/$$/limits; grep 'Max core' /proc/self/limits\""
    );
    let mut keywrap = bao.keywrap();
    let run = keywrap.command();
    let output = std::process::Command::new("sh")
        .args(["-c", &script])
        .envs(
            run.get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lines[0][4], "0", "keywrap's own soft core limit: {stdout}");
    // dash counts in 512-byte blocks, bash in KiB: either way, not zero.
    assert!(
        ["2097152", "4194304"].contains(&lines[1][4]),
        "the child's soft core limit: {stdout}"
    );
}

#[test]
fn help_shows_examples_and_completions_are_generated() {
    let run = Keywrap::new().args(["exec", "--help"]).run();
    run.assert_success();
    assert!(
        run.stdout.contains("keywrap exec -- python app.py"),
        "{}",
        run.stdout
    );
    for words in [
        &["completions", "--help"][..],
        &["audit", "--help"],
        &["audit", "setup", "--help"],
    ] {
        let run = Keywrap::new().args(words).run();
        run.assert_success();
        assert!(
            run.stdout.contains("Examples:\n  keywrap "),
            "{}",
            run.stdout
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let run = Keywrap::new().args(["completions", shell]).run();
        run.assert_success();
        assert!(run.stdout.contains("keywrap"), "{shell}");
        assert!(run.stdout.contains("exec"), "{shell}");
    }
}

#[test]
fn output_into_a_pipe_closed_early_ends_quietly() {
    // The completion script is larger than a pipe's buffer, so its write meets the closed
    // pipe; the dry-run plan is written after the reader is gone (it exits at once).
    let dry_run = ["exec", "--dry-run", "-s", "A=secret/a#k", "--", "true"];
    for words in [&["completions", "bash"][..], &dry_run] {
        let mut keywrap = Keywrap::new();
        let mut child = keywrap
            .args(words)
            .command()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{words:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{words:?}: {stderr}");
    }
}

#[test]
fn namespaces_from_the_environment_the_file_and_the_flag() {
    let bao = Bao::start();
    bao.ok("POST", "sys/namespaces/team-a", None);
    bao.ok(
        "POST",
        "team-a/sys/mounts/secret",
        Some(serde_json::json!({ "type": "kv", "options": { "version": "2" } })),
    );
    bao.ok(
        "POST",
        "team-a/secret/data/openai",
        Some(serde_json::json!({ "data": { "api_key": "fake-namespaced-key" } })),
    );
    let expected = vec!["A=fake-namespaced-key".to_string()];
    for variable in ["VAULT_NAMESPACE", "BAO_NAMESPACE"] {
        let run = bao
            .keywrap()
            .env(variable, "team-a")
            .args(["exec", "-s", "A=secret/openai#api_key"])
            .args(print_vars(&["A"]))
            .run();
        run.assert_success();
        assert_eq!(
            run.stdout.lines().collect::<Vec<_>>(),
            expected,
            "{variable}"
        );
    }
    let mut keywrap = bao.keywrap();
    let config = keywrap.write_file(
        "keywrap.toml",
        "[vault]\nnamespace = \"nowhere\"\n[env]\nA = \"secret/openai#api_key\"\n",
    );
    keywrap.trust(config);
    keywrap
        .args(["exec"])
        .args(print_vars(&["A"]))
        .run()
        .assert_code(125)
        .assert_stderr_contains("no namespace \"nowhere\"");
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[vault]\nnamespace = \"nowhere\"\n[env]\nA = \"secret/openai#api_key\"\n",
    );
    let run = keywrap
        .env("VAULT_NAMESPACE", "nowhere-either")
        .args(["--namespace", "team-a", "exec"])
        .args(print_vars(&["A"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout.lines().collect::<Vec<_>>(), expected);
}

#[test]
fn openbao_variables_alone_are_enough() {
    let bao = Bao::start_with(support::BaoOptions { tls: true });
    bao.kv_put("secret/a", &[("k", "fake-value-9")]);
    let run = Keywrap::new()
        .env("BAO_ADDR", &bao.addr)
        .env("BAO_TOKEN", ROOT_TOKEN)
        .env("BAO_CACERT", bao.ca_cert.as_ref().unwrap())
        .args(["exec", "-s", "A=secret/a#k"])
        .args(print_vars(&["A", "BAO_TOKEN"]))
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "A=fake-value-9\nBAO_TOKEN unset\n");
}
