//! `keywrap read` (one value on stdout, as `op read` and `vault kv get -field`) and
//! `keywrap init` (a keywrap.toml, blank or from a .env file or a Vault path), against a real
//! OpenBao server.

mod support;

use support::{Bao, Keywrap};

const VALUE: &str = "fake-value-for-keywrap-read";

#[test]
fn read_prints_exactly_the_value_to_a_pipe() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", VALUE)]);
    bao.keywrap()
        .args(["audit", "setup"])
        .run()
        .assert_success();
    let run = bao.keywrap().args(["read", "secret/openai#api_key"]).run();
    run.assert_success();
    assert_eq!(run.stdout, VALUE, "no newline added on a pipe");
    assert_eq!(run.stderr, "");
    let read = &bao.audit_reads_of("secret/data/openai")[0];
    assert_eq!(
        read["request"]["headers"]["x-keywrap-command"][0], "keywrap-read",
        "the read is audited as keywrap read"
    );

    let with = bao
        .keywrap()
        .args(["read", "--newline", "vault://secret/openai#api_key"])
        .run();
    assert_eq!(with.stdout, format!("{VALUE}\n"));
}

#[test]
fn read_ends_the_value_with_a_newline_on_a_terminal_unless_told_not_to() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", VALUE)]);
    let run = bao
        .keywrap()
        .args(["read", "secret/openai#api_key"])
        .run_in_pty();
    run.assert_success();
    assert_eq!(run.stdout, format!("{VALUE}\r\n"));
    let bare = bao
        .keywrap()
        .args(["read", "-n", "secret/openai#api_key"])
        .run_in_pty();
    assert_eq!(bare.stdout, VALUE);
}

#[test]
fn read_keeps_a_value_that_ends_in_a_newline_as_it_is() {
    let bao = Bao::start();
    let pem = "-----BEGIN FAKE-----\nnot a key\n-----END FAKE-----\n";
    bao.kv_put("secret/tls", &[("cert", pem)]);
    for extra in [&[][..], &["--newline"]] {
        let run = bao
            .keywrap()
            .arg("read")
            .args(extra)
            .arg("secret/tls?version=1#cert")
            .run();
        run.assert_success();
        assert_eq!(run.stdout, pem, "{extra:?}");
    }
}

#[test]
fn read_failures_name_the_reference_and_never_echo_a_pasted_key() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", VALUE)]);
    let run = bao.keywrap().args(["read", "secret/openai#apikey"]).run();
    run.assert_code(125)
        .assert_stderr_contains("secret/openai#apikey")
        .assert_stderr_contains("api_key");
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains(VALUE));

    let pasted = "fakepastedkeyvalue0123456789";
    let run = bao.keywrap().args(["read", pasted]).run();
    run.assert_code(125).assert_stderr_contains("not shown");
    assert!(!run.stderr.contains(pasted), "{}", run.stderr);
}

#[test]
fn init_writes_a_commented_keywrap_toml_and_keeps_an_existing_one() {
    let mut keywrap = Keywrap::new();
    let run = keywrap.arg("init").run();
    run.assert_success()
        .assert_stderr_contains("wrote keywrap.toml");
    let path = keywrap.workdir.path().join("keywrap.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("[env]") && text.contains("# OPENAI_API_KEY"),
        "{text}"
    );

    let mut again = Keywrap::new();
    again.current_dir(keywrap.workdir.path());
    let run = again.arg("init").run();
    run.assert_code(125)
        .assert_stderr_contains("already exists")
        .assert_stderr_contains("--force");
    let mut forced = Keywrap::new();
    forced.current_dir(keywrap.workdir.path());
    forced.args(["init", "--force"]).run().assert_success();

    // What init wrote is a keywrap.toml keywrap loads.
    let mut dry = Keywrap::new();
    dry.current_dir(keywrap.workdir.path());
    dry.args(["exec", "--dry-run", "--", "true"])
        .run()
        .assert_success();
}

#[test]
fn init_from_an_env_file_writes_names_and_references_never_values() {
    let keywrap = Keywrap::new();
    let secret = "fake-database-password-for-init";
    keywrap.write_file(
        ".env",
        &format!(
            "DATABASE_HOST=db.internal\nDATABASE_PASSWORD={secret}\nOPENAI_API_KEY=vault://secret/openai#api_key\n"
        ),
    );
    let mut keywrap = keywrap;
    let run = keywrap
        .args(["init", "--from-env", ".env", "--to", "secret/myapp"])
        .run();
    run.assert_success()
        .assert_stderr_contains("keywrap import .env --to secret/myapp");
    let text = std::fs::read_to_string(keywrap.workdir.path().join("keywrap.toml")).unwrap();
    assert!(!text.contains(secret), "{text}");
    assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
    assert!(
        text.contains("DATABASE_PASSWORD = \"secret/myapp#DATABASE_PASSWORD\""),
        "{text}"
    );
    assert!(
        text.contains("OPENAI_API_KEY = \"secret/openai#api_key\""),
        "{text}"
    );
    assert!(
        !text.contains("DATABASE_HOST ="),
        "a plain setting is no reference: {text}"
    );
    assert!(text.contains("DATABASE_HOST"), "but it is named: {text}");
}

#[test]
fn init_from_a_vault_path_references_every_field_and_check_passes() {
    let bao = Bao::start();
    bao.kv_put(
        "secret/myapp",
        &[("api_key", "fake-a"), ("org-id", "fake-b")],
    );
    bao.kv_put(
        "secret/myapp/db",
        &[("user", "fake-c"), ("password", "fake-d")],
    );
    bao.kv_put("secret/myapp/STRIPE_KEY", &[("value", "fake-e")]);
    let mut keywrap = bao.keywrap();
    let run = keywrap.args(["init", "--from-vault", "secret/myapp"]).run();
    run.assert_success()
        .assert_stderr_contains("5 reference(s)");
    let text = std::fs::read_to_string(keywrap.workdir.path().join("keywrap.toml")).unwrap();
    for line in [
        "API_KEY = \"secret/myapp#api_key\"",
        "ORG_ID = \"secret/myapp#org-id\"",
        "DB_USER = \"secret/myapp/db#user\"",
        "DB_PASSWORD = \"secret/myapp/db#password\"",
        "STRIPE_KEY = \"secret/myapp/STRIPE_KEY#value\"",
    ] {
        assert!(text.contains(line), "{line}:\n{text}");
    }
    for value in ["fake-a", "fake-b", "fake-c", "fake-d", "fake-e"] {
        assert!(!text.contains(value) && !run.stderr.contains(value));
    }
    assert!(
        text.contains(&format!("address = \"{}\"", bao.addr)),
        "{text}"
    );

    let mut check = bao.keywrap();
    check.current_dir(keywrap.workdir.path());
    let run = check.arg("check").run();
    run.assert_success();
    assert_eq!(run.stdout.matches("ok ").count(), 5, "{}", run.stdout);

    let printed = bao
        .keywrap()
        .args(["init", "--from-vault", "secret/nothing-here", "--stdout"])
        .run();
    printed
        .assert_code(125)
        .assert_stderr_contains("no secret at secret/nothing-here");
}
