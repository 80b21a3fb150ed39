//! Bad input: every failure is exit status 125 with a one-line message that names the
//! reference and the cause, the child is not started, and no secret or token is printed.

mod support;

use support::{Bao, BaoOptions, Keywrap, Run, ROOT_TOKEN};

/// Runs keywrap exec with the given args; the child would create a marker file.
fn exec_with(keywrap: &mut Keywrap, args: &[&str]) -> (Run, bool) {
    let marker = keywrap.workdir.path().join("child-started");
    let run = keywrap
        .arg("exec")
        .args(args)
        .args(["--", "touch"])
        .arg(&marker)
        .run();
    (run, marker.exists())
}

#[track_caller]
fn assert_failed_cleanly(run: &Run, started: bool, needles: &[&str]) {
    run.assert_code(125);
    assert!(!started, "the child was started");
    for needle in needles {
        run.assert_stderr_contains(needle);
    }
    assert!(
        !run.stderr.contains(ROOT_TOKEN),
        "the token leaked: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("fake-secret"),
        "a value leaked: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn unknown_path() {
    let bao = Bao::start();
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "K=secret/nothing-here#api_key"]);
    assert_failed_cleanly(
        &run,
        started,
        &[
            "K (secret/nothing-here#api_key)",
            "no secret at \"secret/nothing-here\"",
        ],
    );
}

#[test]
fn unknown_mount() {
    let bao = Bao::start();
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "K=nomount/x#api_key"]);
    assert_failed_cleanly(
        &run,
        started,
        &["K (nomount/x#api_key)", "no KV secrets engine is mounted"],
    );
}

#[test]
fn unknown_field_lists_the_fields_there() {
    let bao = Bao::start();
    bao.kv_put(
        "secret/openai",
        &[("api_key", "fake-secret-1"), ("org", "fake-secret-2")],
    );
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "K=secret/openai#apikey"]);
    assert_failed_cleanly(&run, started, &["no field \"apikey\"", "api_key, org"]);
}

#[test]
fn missing_version() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    let (run, started) = exec_with(
        &mut bao.keywrap(),
        &["-s", "K=secret/openai?version=7#api_key"],
    );
    assert_failed_cleanly(
        &run,
        started,
        &["version 7 of \"secret/openai\" does not exist"],
    );
}

#[test]
fn deleted_version() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-2")]);
    bao.ok(
        "POST",
        "secret/delete/openai",
        Some(serde_json::json!({ "versions": [1] })),
    );
    let (run, started) = exec_with(
        &mut bao.keywrap(),
        &["-s", "K=secret/openai?version=1#api_key"],
    );
    assert_failed_cleanly(
        &run,
        started,
        &["version 1 of \"secret/openai\" was deleted"],
    );
}

#[test]
fn version_pin_on_kv1() {
    let bao = Bao::start();
    bao.enable_kv("kv1", 1);
    bao.kv1_put("kv1/a", &[("k", "fake-secret-1")]);
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "K=kv1/a?version=2#k"]);
    assert_failed_cleanly(&run, started, &["KV v1", "remove ?version=2"]);
}

#[test]
fn no_token() {
    let bao = Bao::start();
    let mut keywrap = bao.keywrap();
    keywrap.env_remove("VAULT_TOKEN");
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["no Vault credentials", "VAULT_TOKEN"]);
}

#[test]
fn bad_token() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    let mut keywrap = bao.keywrap();
    keywrap.env("VAULT_TOKEN", "s.not-a-real-token");
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["refused the token from VAULT_TOKEN"]);
    assert!(!run.stderr.contains("not-a-real-token"));
}

#[test]
fn permission_denied_names_the_missing_capability() {
    let bao = Bao::start();
    bao.kv_put("secret/allowed", &[("k", "fake-secret-1")]);
    bao.kv_put("secret/forbidden", &[("k", "fake-secret-2")]);
    bao.write_policy(
        "only-allowed",
        "path \"secret/data/allowed\" { capabilities = [\"read\"] }",
    );
    let token = bao.token_with(&["only-allowed"]);
    let mut keywrap = bao.keywrap();
    keywrap.env("VAULT_TOKEN", &token);
    let (run, started) = exec_with(
        &mut keywrap,
        &["-s", "A=secret/allowed#k", "-s", "F=secret/forbidden#k"],
    );
    assert_failed_cleanly(
        &run,
        started,
        &[
            "F (secret/forbidden#k)",
            "permission denied",
            "\"read\" capability on secret/data/forbidden",
        ],
    );
    assert!(
        !run.stderr.contains("A (secret/allowed#k)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&token));
}

#[test]
fn permission_denied_when_the_policies_grant_nothing_under_the_mount() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    bao.write_policy(
        "elsewhere",
        "path \"other/data/x\" { capabilities = [\"read\"] }",
    );
    // With and without the default policy (which lets a token look itself up).
    for policies in [&["elsewhere", "default"][..], &["elsewhere"]] {
        let token = bao.token_with(policies);
        let mut keywrap = bao.keywrap();
        keywrap.env("VAULT_TOKEN", &token);
        let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
        assert_failed_cleanly(
            &run,
            started,
            &[
                "K (secret/openai#api_key)",
                "permission denied",
                "\"read\" capability on secret/data/openai",
            ],
        );
        assert!(!run.stderr.contains(&token));
    }
}

#[test]
fn unreachable_vault_fails_after_a_few_retries() {
    let mut keywrap = Keywrap::new();
    let address = format!("http://127.0.0.1:{}", support::free_port());
    keywrap
        .env("VAULT_ADDR", &address)
        .env("VAULT_TOKEN", ROOT_TOKEN);
    let started_at = std::time::Instant::now();
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(
        &run,
        started,
        &["cannot reach Vault", &address, "4 attempts"],
    );
    assert!(started_at.elapsed() < std::time::Duration::from_secs(20));

    // The hint names where the address came from.
    let mut keywrap = Keywrap::new();
    keywrap
        .env("BAO_ADDR", &address)
        .env("VAULT_TOKEN", ROOT_TOKEN);
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["cannot reach Vault", "check BAO_ADDR"]);
}

#[test]
fn sealed_vault() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    bao.ok("POST", "sys/seal", None);
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["sealed", "unseal"]);
}

#[test]
fn tls_failure_without_the_ca_and_success_with_it() {
    let bao = Bao::start_with(BaoOptions { tls: true });
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    let mut keywrap = bao.keywrap();
    keywrap.env_remove("VAULT_CACERT");
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["TLS", "VAULT_CACERT"]);

    let mut keywrap = bao.keywrap();
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    run.assert_success();
    assert!(started);

    let mut keywrap = bao.keywrap();
    keywrap
        .env_remove("VAULT_CACERT")
        .env("VAULT_SKIP_VERIFY", "true");
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    run.assert_success()
        .assert_stderr_contains("TLS VERIFICATION IS OFF (VAULT_SKIP_VERIFY)");
    assert!(started);

    // http:// to a server that speaks TLS.
    let mut keywrap = bao.keywrap();
    keywrap.env("VAULT_ADDR", bao.addr.replace("https://", "http://"));
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["cannot reach Vault", "use https://"]);

    // https:// to a server that speaks plain HTTP.
    let plain = Bao::start();
    let mut keywrap = plain.keywrap();
    keywrap.env("VAULT_ADDR", plain.addr.replace("http://", "https://"));
    let (run, started) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    assert_failed_cleanly(&run, started, &["TLS", "use an http:// address"]);

    // The warning names whatever turned verification off.
    let mut keywrap = bao.keywrap();
    keywrap
        .env_remove("VAULT_CACERT")
        .env("BAO_SKIP_VERIFY", "1");
    let (run, _) = exec_with(&mut keywrap, &["-s", "K=secret/openai#api_key"]);
    run.assert_success()
        .assert_stderr_contains("TLS VERIFICATION IS OFF (BAO_SKIP_VERIFY)");
}

#[test]
fn client_certificates_required_given_and_refused() {
    let (bao, mtls) = Bao::start_with_client_cert_listener();
    bao.kv_put("secret/openai", &[("api_key", "fake-secret-1")]);
    let keywrap = || {
        let mut keywrap = bao.keywrap();
        keywrap
            .env("VAULT_ADDR", &mtls.addr)
            .env("VAULT_CACERT", &mtls.ca_cert);
        keywrap
    };
    let reference = ["-s", "K=secret/openai#api_key"];
    let (run, started) = exec_with(&mut keywrap(), &reference);
    assert_failed_cleanly(
        &run,
        started,
        &["requires a client certificate", "VAULT_CLIENT_CERT"],
    );

    for prefix in ["VAULT", "BAO"] {
        let mut keywrap = keywrap();
        keywrap
            .env(format!("{prefix}_CLIENT_CERT"), &mtls.client_cert)
            .env(format!("{prefix}_CLIENT_KEY"), &mtls.client_key);
        let (run, started) = exec_with(&mut keywrap, &reference);
        run.assert_success();
        assert!(started, "{prefix}");
    }
    let (cert, key) = (mtls.client_cert.to_str(), mtls.client_key.to_str());
    let flags = ["--client-cert", cert.unwrap(), "--client-key", key.unwrap()];
    let (run, started) = exec_with(&mut keywrap(), &[&flags[..], &reference].concat());
    run.assert_success();
    assert!(started);

    let mut keywrap = keywrap();
    keywrap
        .env("VAULT_CLIENT_CERT", &mtls.untrusted_cert)
        .env("VAULT_CLIENT_KEY", &mtls.untrusted_key);
    let (run, started) = exec_with(&mut keywrap, &reference);
    assert_failed_cleanly(&run, started, &["rejected", "VAULT_CLIENT_CERT"]);
}

#[test]
fn malformed_reference_in_a_flag() {
    let bao = Bao::start();
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "K=secret/openai"]);
    run.assert_code(125);
    assert!(!started);
    run.assert_stderr_contains("missing #FIELD");
    assert!(bao
        .audit_entries()
        .iter()
        .all(|e| e["request"]["path"] != "secret/data/openai"));
}

#[test]
fn a_key_given_where_its_reference_belongs_is_not_repeated() {
    let bao = Bao::start();
    let key = ["sk", "-proj-", "fakeKeyForTests0123456789"].concat();
    for flag in [format!("OPENAI_API_KEY={key}"), key.clone()] {
        let (run, started) = exec_with(&mut bao.keywrap(), &["-s", &flag]);
        run.assert_code(125).assert_stderr_contains("not shown");
        assert!(!started);
        assert!(!run.stderr.contains(&key), "{}", run.stderr);
    }
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        &format!("[env]\nOPENAI_API_KEY = \"{key}\"\n"),
    );
    let (run, started) = exec_with(&mut keywrap, &[]);
    assert_failed_cleanly(&run, started, &["keywrap.toml:2:", "not shown"]);
    assert!(!run.stderr.contains(&key), "{}", run.stderr);
}

#[test]
fn malformed_reference_in_the_config_names_line_and_column() {
    let bao = Bao::start();
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nGOOD = \"secret/a#k\"\nBAD = \"secret/a?version=x#k\"\n",
    );
    let (run, started) = exec_with(&mut keywrap, &[]);
    assert_failed_cleanly(
        &run,
        started,
        &[
            "keywrap.toml:3:25:",
            "version must be a positive whole number",
        ],
    );
}

#[test]
fn malformed_toml_names_line_and_column() {
    let bao = Bao::start();
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nA = \"secret/a#k\"\nB = secret/b#k\n",
    );
    let (run, started) = exec_with(&mut keywrap, &[]);
    assert_failed_cleanly(&run, started, &["keywrap.toml:3:5:"]);

    let mut keywrap = bao.keywrap();
    keywrap.write_file("keywrap.toml", "[env]\nA = 5\n");
    let (run, started) = exec_with(&mut keywrap, &[]);
    assert_failed_cleanly(
        &run,
        started,
        &["keywrap.toml:2:5: expected a reference in quotes"],
    );
    assert!(!run.stderr.contains("untagged"), "{}", run.stderr);
}

#[test]
fn invalid_variable_names() {
    let bao = Bao::start();
    let (run, started) = exec_with(&mut bao.keywrap(), &["-s", "1BAD=secret/a#k"]);
    run.assert_code(125).assert_stderr_contains(
        "invalid variable name (4 characters, not shown): it must start with a letter",
    );
    assert!(!started);
    let mut keywrap = bao.keywrap();
    keywrap.write_file("keywrap.toml", "[env]\n\"MY-KEY\" = \"secret/a#k\"\n");
    let (run, started) = exec_with(&mut keywrap, &[]);
    assert_failed_cleanly(
        &run,
        started,
        &[
            "keywrap.toml:2:1:",
            "invalid variable name (6 characters, not shown): character 3 is not allowed",
        ],
    );
}

#[test]
fn no_config_and_no_flags() {
    let bao = Bao::start();
    let (run, started) = exec_with(&mut bao.keywrap(), &[]);
    assert_failed_cleanly(&run, started, &["no keywrap.toml found"]);
}
