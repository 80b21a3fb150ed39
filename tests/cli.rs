//! The command line as a newcomer meets it: help that shows the Vault options only where
//! they apply, one-line usage errors, `run`, `version`, the man pages, `--format json`, and
//! messages that say what to do next.

mod support;

use serde_json::Value;
use support::{Bao, Keywrap};

#[test]
fn help_shows_the_vault_options_only_on_commands_that_talk_to_vault() {
    let completions = Keywrap::new().args(["completions", "--help"]).run();
    completions.assert_success();
    assert!(
        !completions.stdout.contains("--address"),
        "{}",
        completions.stdout
    );
    assert!(!completions.stdout.contains("--jwt-file"));
    assert!(
        completions.stdout.lines().count() < 25,
        "completions --help is short:\n{}",
        completions.stdout
    );

    let exec = Keywrap::new().args(["exec", "--help"]).run();
    exec.assert_success();
    for heading in ["\nConnection:\n", "\nLogin:\n"] {
        assert_eq!(exec.stdout.matches(heading).count(), 1, "{}", exec.stdout);
    }
    assert_eq!(exec.stdout.matches("--address <URL>").count(), 1);

    let top = Keywrap::new().arg("--help").run();
    assert!(!top.stdout.contains("--address <URL>"), "{}", top.stdout);
    assert!(
        top.stdout.contains("keywrap exec --help"),
        "says where they are"
    );
}

#[test]
fn usage_errors_are_one_line_with_the_prefix_and_keep_their_statuses() {
    for (words, status) in [
        (&["exec", "--dryrun", "--", "true"][..], 125),
        (&["bogus"], 125),
        (&["read"], 125),
        (&["--timeout", "0", "check"], 125),
        (&["scan", "--bogus"], 2),
        (&["hook", "bogus"], 2),
    ] {
        let run = Keywrap::new().args(words).run();
        run.assert_code(status);
        assert_eq!(run.stderr.lines().count(), 1, "{words:?}:\n{}", run.stderr);
        assert!(
            run.stderr.starts_with("keywrap: error: "),
            "{words:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty());
    }
    let typo = Keywrap::new()
        .args(["exec", "--dryrun", "--", "true"])
        .run();
    typo.assert_stderr_contains("'--dry-run'")
        .assert_stderr_contains("see keywrap exec --help");
}

#[test]
fn help_and_version_still_go_to_stdout_with_status_zero() {
    let help = Keywrap::new().args(["check", "--help"]).run();
    help.assert_success();
    assert!(help.stdout.contains("Usage: keywrap check"));
    let flag = Keywrap::new().arg("--version").run();
    let word = Keywrap::new().arg("version").run();
    flag.assert_success();
    word.assert_success();
    assert_eq!(word.stdout, flag.stdout);
    assert_eq!(
        word.stdout,
        format!("keywrap {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_and_policy_without_keywrap_toml_say_what_exec_says() {
    let exec = Keywrap::new().args(["exec", "--", "true"]).run();
    let check = Keywrap::new().arg("check").run();
    let policy = Keywrap::new().arg("policy").run();
    let why = "no keywrap.toml found in ";
    for run in [&exec, &check, &policy] {
        run.assert_code(125)
            .assert_stderr_contains(why)
            .assert_stderr_contains("or its parents, and no --secret given");
    }
    check.assert_stderr_contains("nothing to check: ");
}

#[test]
fn run_is_exec() {
    let bao = Bao::start();
    bao.kv_put("secret/app", &[("token", "fake-token-for-the-run-alias")]);
    let run = bao
        .keywrap()
        .args(["run", "-s", "APP_TOKEN=secret/app#token", "--no-mask", "--"])
        .args(["sh", "-c", "printf '%s' \"$APP_TOKEN\""])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-token-for-the-run-alias");
    assert_eq!(bao.audit_reads_of("secret/data/app").len(), 1);
}

#[test]
fn man_pages_cover_every_subcommand_and_its_vault_options() {
    let page = Keywrap::new().arg("man").run();
    page.assert_success();
    assert!(
        page.stdout.contains(".TH keywrap 1"),
        "{}",
        &page.stdout[..200]
    );
    assert!(page.stdout.contains("exec") && page.stdout.contains("read"));

    let keywrap = Keywrap::new();
    let dir = keywrap.workdir.path().join("man1");
    let mut keywrap = keywrap;
    keywrap
        .args(["man", "--out-dir"])
        .arg(&dir)
        .run()
        .assert_success();
    for name in [
        "keywrap",
        "keywrap-exec",
        "keywrap-read",
        "keywrap-proxy-keys-list",
    ] {
        assert!(dir.join(format!("{name}.1")).is_file(), "{name}.1");
    }
    let exec = std::fs::read_to_string(dir.join("keywrap-exec.1")).unwrap();
    assert!(
        exec.contains("address"),
        "exec's page has the connection options"
    );
    let completions = std::fs::read_to_string(dir.join("keywrap-completions.1")).unwrap();
    assert!(!completions.contains("auth\\-method"), "{completions}");
}

#[test]
fn exec_dry_run_as_json() {
    let keywrap = Keywrap::new();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nOPENAI_API_KEY = { ref = \"secret/openai#api_key\", previous = \"OPENAI_API_KEY_PREVIOUS\", overlap = \"1h\" }\n",
    );
    keywrap.write_file(
        ".env",
        "PORT=8080\nDB_PASSWORD=vault://secret/db#password\n",
    );
    let mut keywrap = keywrap;
    let run = keywrap
        .args([
            "exec",
            "--dry-run",
            "--format",
            "json",
            "--env-file",
            ".env",
            "--",
        ])
        .args(["sh", "-c", "true"])
        .run();
    run.assert_success();
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    let variables = plan["variables"].as_array().unwrap();
    let names: Vec<&str> = variables
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["DB_PASSWORD", "OPENAI_API_KEY", "OPENAI_API_KEY_PREVIOUS"]
    );
    assert_eq!(variables[0]["reference"], "secret/db#password");
    assert!(variables[0]["from"].as_str().unwrap().ends_with(".env:2"));
    assert_eq!(variables[2]["previous_version_for"], "1h");
    assert_eq!(plan["settings"], serde_json::json!(["PORT"]));
    assert!(plan["command"]["program"]
        .as_str()
        .unwrap()
        .ends_with("/sh"));
    assert_eq!(plan["command"]["args"], serde_json::json!(["-c", "true"]));
    assert!(!run.stdout.contains("8080"), "setting values are not shown");

    let without = Keywrap::new()
        .args(["exec", "--format", "json", "--", "true"])
        .run();
    without.assert_code(125).assert_stderr_contains("--dry-run");
}

#[test]
fn check_as_json_names_each_reference_and_fails_with_status_one() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-key-for-check-json")]);
    let run = bao
        .keywrap()
        .args(["check", "--format", "json"])
        .args([
            "-s",
            "A=secret/openai#api_key",
            "-s",
            "B=secret/openai#missing",
        ])
        .run();
    run.assert_code(1);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let references = report["references"].as_array().unwrap();
    assert_eq!(references[0]["name"], "A");
    assert_eq!(references[0]["ok"], true);
    assert_eq!(references[0]["version"], 1);
    assert_eq!(references[1]["ok"], false);
    assert!(references[1]["error"].as_str().unwrap().contains("api_key"));
    assert!(!run.stdout.contains("fake-key-for-check-json"));
    run.assert_stderr_contains("1 of 2 references cannot be read");

    let good = bao
        .keywrap()
        .args(["check", "--format", "json", "-s", "A=secret/openai#api_key"])
        .run();
    good.assert_success();
    assert_eq!(
        serde_json::from_str::<Value>(&good.stdout).unwrap()["ok"],
        true
    );
}

#[test]
fn proxy_keys_list_as_json() {
    let bao = Bao::start();
    bao.keywrap()
        .args([
            "proxy", "keys", "create", "webapp", "--rpm", "60", "--model", "gpt-x",
        ])
        .run()
        .assert_success();
    bao.keywrap()
        .args(["proxy", "keys", "create", "batch", "--budget", "1000"])
        .run()
        .assert_success();
    let run = bao
        .keywrap()
        .args(["proxy", "keys", "list", "--format", "json"])
        .run();
    run.assert_success();
    let keys: Value = serde_json::from_str(&run.stdout).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "batch");
    assert_eq!(keys[0]["budget"], 1000);
    assert_eq!(keys[0]["spent"], 0);
    assert_eq!(keys[1]["name"], "webapp");
    assert_eq!(keys[1]["rpm"], 60);
    assert_eq!(keys[1]["tpm"], Value::Null, "unlimited");
    assert_eq!(keys[1]["models"], serde_json::json!(["gpt-x"]));
    assert_eq!(keys[1]["routes"], Value::Null, "all routes");
    assert!(keys[1]["created"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(!run.stdout.contains("kwp_"), "never a client key");
}

#[test]
fn permission_denied_points_at_keywrap_policy() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-key-for-denied")]);
    bao.write_policy(
        "other",
        "path \"secret/data/other\" { capabilities = [\"read\"] }",
    );
    let token = bao.token_with(&["default", "other"]);
    let keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nOPENAI_API_KEY = \"secret/openai#api_key\"\n",
    );
    let mut keywrap = keywrap;
    let run = keywrap
        .env("VAULT_TOKEN", &token)
        .args(["exec", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("permission denied")
        .assert_stderr_contains("`keywrap policy`");

    let status = bao
        .keywrap()
        .env("VAULT_TOKEN", &token)
        .args(["status", "secret/openai#api_key"])
        .run();
    status.assert_code(125);
    assert!(
        status.stdout.contains("keywrap policy --metadata")
            || status.stderr.contains("keywrap policy --metadata"),
        "{}{}",
        status.stdout,
        status.stderr
    );
}
