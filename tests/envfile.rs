//! Env files against a real OpenBao: references resolved, plain settings passed through,
//! the dotenv syntax, precedence, errors with file:line:column, and the live-key warning.

mod support;

use support::Bao;

/// Prints NAME=VALUE for each variable (masking off: the values are what is checked).
fn print_vars(names: &[&str]) -> Vec<String> {
    let script = names
        .iter()
        .map(|n| format!("printf '%s=[%s]\\n' {n} \"${n}\""))
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
fn precedence_is_flag_then_later_env_file_then_config_then_inherited() {
    let bao = Bao::start();
    for name in ["toml", "env1", "env2", "flag"] {
        bao.kv_put(
            &format!("secret/{name}"),
            &[("v", &format!("fake-from-{name}"))],
        );
    }
    let keywrap = &mut bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "env_files = [\"conf/base.env\"]\n[env]\nA = \"secret/toml#v\"\nB = \"secret/toml#v\"\nC = \"secret/toml#v\"\nD = \"secret/toml#v\"\n",
    );
    keywrap.write_file(
        "conf/base.env",
        "B=vault://secret/env1#v\nC=plain-from-base\nE=base\nF=base\n",
    );
    keywrap.write_file(
        "later.env",
        "C=vault://secret/env2#v\nE=later\nD=vault://secret/env2#v\n",
    );
    let run = keywrap
        .env("A", "inherited")
        .env("F", "inherited")
        .env("G", "inherited")
        .args(["exec", "--env-file", "later.env", "-s", "D=secret/flag#v"])
        .args(print_vars(&["A", "B", "C", "D", "E", "F", "G"]))
        .run();
    run.assert_success();
    assert_eq!(
        run.stdout,
        "A=[fake-from-toml]\nB=[fake-from-env1]\nC=[fake-from-env2]\nD=[fake-from-flag]\nE=[later]\nF=[base]\nG=[inherited]\n"
    );
}

#[test]
fn dotenv_syntax_and_plain_settings_without_vault() {
    let keywrap = &mut support::Keywrap::new();
    keywrap.write_file(
        ".env",
        "# settings\nexport HOST=db.internal # inline comment\nPORT='5432'\nURL=\"postgres://${HOST}:$PORT/app\"\nLITERAL='${HOST} \\n'\nMULTI=\"line one\nline two\"\nESCAPED=\"tab\\there \\\"quoted\\\"\"\nDEFAULTED=${UNSET:-fallback}\n",
    );
    let run = keywrap
        .args(["exec", "--env-file", ".env"])
        .args(print_vars(&[
            "HOST",
            "PORT",
            "URL",
            "LITERAL",
            "MULTI",
            "ESCAPED",
            "DEFAULTED",
        ]))
        .run();
    run.assert_success();
    assert_eq!(
        run.stdout,
        "HOST=[db.internal]\nPORT=[5432]\nURL=[postgres://db.internal:5432/app]\nLITERAL=[${HOST} \\n]\nMULTI=[line one\nline two]\nESCAPED=[tab\there \"quoted\"]\nDEFAULTED=[fallback]\n"
    );
}

#[test]
fn a_malformed_file_names_file_line_and_column() {
    let keywrap = &mut support::Keywrap::new();
    keywrap.write_file(".env", "A=1\nB=\"unterminated\n");
    let run = keywrap
        .args(["exec", "--env-file", ".env", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains(".env:2:3: unterminated double-quoted value");

    let keywrap = &mut support::Keywrap::new();
    keywrap.write_file(".env", "A=vault://secret/app\n");
    let run = keywrap
        .args(["exec", "--env-file", ".env", "--", "true"])
        .run();
    run.assert_code(125).assert_stderr_contains(".env:1:");
    run.assert_stderr_contains("missing #FIELD");
}

#[test]
fn a_literal_key_gets_a_warning_without_its_value() {
    let keywrap = &mut support::Keywrap::new();
    let fake_key = ["sk", "-", &"x9".repeat(16)].concat();
    let sample_key = ["sk", "-test-", "12345678"].concat();
    keywrap.write_file(
        ".env",
        &format!("OPENAI_API_KEY={fake_key}\nANTHROPIC_API_KEY=\"{sample_key}\"\nMODE=sk-ip\n"),
    );
    let run = keywrap
        .args(["exec", "--env-file", ".env", "--", "true"])
        .run();
    run.assert_success();
    run.assert_stderr_contains(".env:1: OPENAI_API_KEY looks like a live");
    run.assert_stderr_contains(".env:2: ANTHROPIC_API_KEY looks like a live");
    run.assert_stderr_contains("Vault");
    assert!(!run.stderr.contains("MODE"), "{}", run.stderr);
    assert!(!run.stderr.contains(&fake_key) && !run.stderr.contains(&sample_key));
}

#[test]
fn references_in_env_files_are_resolved_and_masked() {
    let bao = Bao::start();
    bao.kv_put("secret/app", &[("key", "fake-env-file-secret")]);
    let keywrap = &mut bao.keywrap();
    keywrap.write_file(".env", "KEY=\"vault://secret/app#key\"\nMODE=debug\n");
    let run = keywrap
        .args([
            "exec",
            "--env-file",
            ".env",
            "--",
            "sh",
            "-c",
            "echo \"$MODE $KEY\"",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "debug <concealed by keywrap>\n");
    let dry = bao
        .keywrap()
        .current_dir(keywrap.workdir.path())
        .args(["exec", "--env-file", ".env", "--dry-run", "--", "true"])
        .run();
    assert!(
        dry.stdout.contains("KEY   secret/app#key  .env:1"),
        "{}",
        dry.stdout
    );
}
