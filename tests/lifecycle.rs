//! The key lifecycle against a real OpenBao server: rotation with an overlap window seen
//! through `exec`, check-and-set between concurrent rotations, interrupted and failed
//! rotations, `--finish` with a revoker, and `status` ages and exit codes.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Bao, Keywrap};

/// A shell child that prints `NAME=value` or `NAME unset` for each name (masking off:
/// the values are what is checked).
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

/// Test keys, made at run time.
fn key(label: &str) -> String {
    format!("fake-{label}-{}", std::process::id())
}

fn config(bao: &Bao, text: &str) -> PathBuf {
    let path = bao.dir.path().join("keywrap.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn exec_sees(bao: &Bao, config: &PathBuf) -> String {
    let run = bao
        .keywrap()
        .arg("--config")
        .arg(config)
        .arg("exec")
        .args(print_vars(&["OPENAI_API_KEY", "OPENAI_API_KEY_PREVIOUS"]))
        .run();
    run.assert_success();
    run.stdout
}

fn rotate(bao: &Bao, args: &[&str], stdin: Option<&str>) -> support::Run {
    let mut keywrap = bao.keywrap();
    keywrap.arg("rotate").args(args);
    if let Some(value) = stdin {
        keywrap.stdin(value);
    }
    keywrap.run()
}

#[test]
fn exec_sees_the_right_keys_before_during_and_after_the_overlap() {
    let bao = Bao::start();
    let (old, new) = (key("old"), key("new"));
    bao.kv_put("secret/openai", &[("api_key", &old), ("org", "org-fake")]);
    let config = config(
        &bao,
        "[env]\nOPENAI_API_KEY = { ref = \"secret/openai#api_key\", previous = \"OPENAI_API_KEY_PREVIOUS\", overlap = \"2s\" }\n",
    );
    let plan = bao
        .keywrap()
        .arg("--config")
        .arg(&config)
        .args(["exec", "--dry-run", "--", "true"])
        .run();
    plan.assert_success();
    assert!(
        plan.stdout
            .lines()
            .any(|line| line.starts_with("OPENAI_API_KEY_PREVIOUS ")
                && line.contains("secret/openai#api_key (previous version, for 2s")),
        "--dry-run lists the overlap variable: {}",
        plan.stdout
    );
    assert_eq!(
        exec_sees(&bao, &config),
        format!("OPENAI_API_KEY={old}\nOPENAI_API_KEY_PREVIOUS unset\n")
    );

    let run = rotate(&bao, &["secret/openai#api_key"], Some(&format!("{new}\n")));
    run.assert_success();
    assert_eq!(run.stdout, "2\n", "only the version is printed");
    assert!(!run.stderr.contains(&new) && !run.stderr.contains(&old));
    assert_eq!(
        bao.kv_field("secret/openai", "org", None),
        "org-fake",
        "other fields are kept"
    );
    let custom = &bao.kv_metadata("secret/openai")["custom_metadata"];
    assert_eq!(custom["previous_version"], "1");
    assert_eq!(custom["rotated_version"], "2");
    assert!(
        custom["rotated_by"].as_str().unwrap().contains('@'),
        "{custom}"
    );
    assert!(
        custom["rotated_at"].as_str().unwrap().ends_with('Z'),
        "{custom}"
    );
    assert!(custom.get("rotation_pending").is_none(), "{custom}");

    assert_eq!(
        exec_sees(&bao, &config),
        format!("OPENAI_API_KEY={new}\nOPENAI_API_KEY_PREVIOUS={old}\n")
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        exec_sees(&bao, &config),
        format!("OPENAI_API_KEY={new}\nOPENAI_API_KEY_PREVIOUS unset\n")
    );
}

#[test]
fn finish_revokes_the_old_key_on_stdin_and_removes_its_version() {
    let bao = Bao::start();
    let (old, new) = (key("old"), key("new"));
    bao.kv_put("secret/openai", &[("api_key", &old)]);
    let config = config(
        &bao,
        "[env]\nOPENAI_API_KEY = { ref = \"secret/openai#api_key\", previous = \"OPENAI_API_KEY_PREVIOUS\", overlap = \"1h\" }\n",
    );
    let generator = format!("printf '%s' {new}");
    rotate(
        &bao,
        &["--generate-with", &generator, "secret/openai#api_key"],
        None,
    )
    .assert_success();
    assert_eq!(
        exec_sees(&bao, &config),
        format!("OPENAI_API_KEY={new}\nOPENAI_API_KEY_PREVIOUS={old}\n")
    );

    let revoked = bao.dir.path().join("revoked");
    let revoker = format!("cat > '{}'", revoked.display());
    let run = rotate(
        &bao,
        &[
            "--finish",
            "--delete",
            "--revoke-with",
            &revoker,
            "secret/openai#api_key",
        ],
        None,
    );
    run.assert_success();
    assert_eq!(
        std::fs::read_to_string(&revoked).unwrap(),
        old,
        "the old key went to the revoker's stdin"
    );
    let versions = &bao.kv_metadata("secret/openai")["versions"];
    assert_ne!(versions["1"]["deletion_time"], "", "{versions}");
    assert_eq!(versions["1"]["destroyed"], false);
    assert_eq!(
        exec_sees(&bao, &config),
        format!("OPENAI_API_KEY={new}\nOPENAI_API_KEY_PREVIOUS unset\n")
    );

    rotate(
        &bao,
        &["--finish", "--destroy", "secret/openai#api_key"],
        None,
    )
    .assert_success();
    assert_eq!(
        bao.kv_metadata("secret/openai")["versions"]["1"]["destroyed"],
        true
    );
    let status = bao
        .keywrap()
        .args(["status", "secret/openai#api_key"])
        .run();
    status.assert_success();
    assert!(
        status.stdout.contains("finished (v1 removed)"),
        "{}",
        status.stdout
    );
}

#[test]
fn a_failing_revoker_keeps_the_previous_version() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("old"))]);
    rotate(&bao, &["secret/openai#api_key"], Some(&key("new"))).assert_success();
    let run = rotate(
        &bao,
        &[
            "--finish",
            "--revoke-with",
            "cat >/dev/null; exit 4",
            "secret/openai#api_key",
        ],
        None,
    );
    run.assert_code(125)
        .assert_stderr_contains("the previous version was kept");
    assert_eq!(
        bao.kv_metadata("secret/openai")["versions"]["1"]["deletion_time"],
        ""
    );
}

#[test]
fn a_failing_generator_writes_nothing() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("old"))]);
    let run = rotate(
        &bao,
        &[
            "--generate-with",
            "echo half-a-key; exit 3",
            "secret/openai#api_key",
        ],
        None,
    );
    run.assert_code(125)
        .assert_stderr_contains("nothing was written");
    let metadata = bao.kv_metadata("secret/openai");
    assert_eq!(metadata["current_version"], 1);
    assert_eq!(
        metadata["custom_metadata"],
        Value::Null,
        "not even a marker"
    );
    rotate(&bao, &["secret/openai#api_key"], Some("")).assert_code(125);
    assert_eq!(bao.kv_metadata("secret/openai")["current_version"], 1);
}

#[test]
fn a_refused_write_leaves_the_old_version_current_and_no_marker() {
    let bao = Bao::start();
    let old = key("old");
    bao.kv_put("secret/openai", &[("api_key", &old)]);
    bao.write_policy(
        "no-data-write",
        "path \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/openai\" { capabilities = [\"read\", \"update\"] }\npath \"secret/data/openai\" { capabilities = [\"read\"] }\n",
    );
    let token = bao.token_with(&["no-data-write"]);
    let run = bao
        .keywrap()
        .env("VAULT_TOKEN", &token)
        .args(["rotate", "secret/openai#api_key"])
        .stdin(key("new"))
        .run();
    run.assert_code(125)
        .assert_stderr_contains("version 1 stays current");
    assert_eq!(bao.kv_field("secret/openai", "api_key", None), old.as_str());
    let custom = &bao.kv_metadata("secret/openai")["custom_metadata"];
    assert!(
        custom.get("rotation_pending").is_none(),
        "the marker was taken back: {custom}"
    );
}

#[test]
fn two_concurrent_rotations_cannot_both_win() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("old"))]);
    let dir = bao.dir.path();
    // Each generator waits for the other, so both rotations have read version 1 before
    // either writes.
    let generator = |me: &str, other: &str| {
        format!(
            "touch '{d}/{me}'; for i in $(seq 200); do [ -f '{d}/{other}' ] && break; sleep 0.05; done; printf '%s' fake-{me}-key",
            d = dir.display()
        )
    };
    let mut children: Vec<_> = [("a", "b"), ("b", "a")]
        .into_iter()
        .map(|(me, other)| {
            let mut keywrap = bao.keywrap();
            keywrap.args([
                "rotate",
                "--generate-with",
                &generator(me, other),
                "secret/openai#api_key",
            ]);
            std::thread::spawn(move || (me, keywrap.run()))
        })
        .collect();
    let results: Vec<_> = children.drain(..).map(|c| c.join().unwrap()).collect();
    let winners: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.code() == Some(0))
        .collect();
    let losers: Vec<_> = results
        .iter()
        .filter(|(_, r)| r.code() == Some(125))
        .collect();
    assert_eq!((winners.len(), losers.len()), (1, 1), "{results:?}");
    assert_eq!(winners[0].1.stdout, "2\n");
    losers[0]
        .1
        .assert_stderr_contains("another write to \"secret/openai\" landed first");
    assert_eq!(bao.kv_metadata("secret/openai")["current_version"], 2);
    assert_eq!(
        bao.kv_field("secret/openai", "api_key", None),
        format!("fake-{}-key", winners[0].0)
    );
    // Whatever order the metadata writes took, a rerun leaves the rotation recorded.
    let status = bao
        .keywrap()
        .args(["status", "secret/openai#api_key"])
        .run();
    if status.stdout.contains("interrupted") {
        rotate(&bao, &["secret/openai#api_key"], None).assert_success();
    }
    assert_eq!(
        bao.kv_metadata("secret/openai")["custom_metadata"]["rotated_version"],
        "2"
    );
}

/// Leaves the state a rotation interrupted between its data write and its record would.
fn interrupt_after_write(bao: &Bao) {
    bao.kv_put("secret/openai", &[("api_key", &key("old")), ("org", "o")]);
    bao.ok(
        "POST",
        "secret/metadata/openai",
        Some(json!({ "custom_metadata": {
            "rotation_pending": "1",
            "rotation_started_at": "2026-01-01T00:00:00Z",
            "rotation_started_by": "ann@build-01",
            "rotation_field": "api_key",
        }})),
    );
    bao.kv_put("secret/openai", &[("api_key", &key("new")), ("org", "o")]);
}

#[test]
fn status_explains_an_interrupted_rotation_and_a_rerun_completes_it() {
    let bao = Bao::start();
    interrupt_after_write(&bao);
    let status = bao
        .keywrap()
        .args(["status", "secret/openai#api_key"])
        .run();
    status.assert_success();
    assert!(
        status.stdout.contains("interrupted: v2 written (replacing v1) but not recorded; rerun `keywrap rotate` to complete"),
        "{}",
        status.stdout
    );
    let run = rotate(&bao, &["secret/openai#api_key"], None);
    run.assert_success()
        .assert_stderr_contains("completed the interrupted rotation");
    assert_eq!(run.stdout, "2\n");
    let custom = &bao.kv_metadata("secret/openai")["custom_metadata"];
    assert_eq!(custom["previous_version"], "1");
    assert_eq!(custom["rotated_version"], "2");
    assert_eq!(custom["rotated_by"], "ann@build-01");
    assert!(custom.get("rotation_pending").is_none(), "{custom}");
    assert_eq!(
        bao.kv_metadata("secret/openai")["current_version"],
        2,
        "no new version"
    );
}

#[test]
fn a_rotation_that_wrote_nothing_is_explained_and_redone() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("old"))]);
    bao.ok(
        "POST",
        "secret/metadata/openai",
        Some(json!({ "custom_metadata": { "rotation_pending": "1", "rotation_started_at": "2026-01-01T00:00:00Z" }})),
    );
    let status = bao
        .keywrap()
        .args(["status", "--format", "json", "secret/openai#api_key"])
        .run();
    let rows: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(rows[0]["needs_attention"], true);
    assert!(
        rows[0]["rotation"]
            .as_str()
            .unwrap()
            .contains("wrote nothing, v1 is still current"),
        "{rows}"
    );
    let run = rotate(&bao, &["secret/openai#api_key"], Some(&key("new")));
    run.assert_success();
    assert_eq!(run.stdout, "2\n");
    assert!(bao.kv_metadata("secret/openai")["custom_metadata"]
        .get("rotation_pending")
        .is_none());
}

#[test]
fn status_reports_ages_and_check_fails_on_overdue_keys() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("a"))]);
    bao.kv_put("secret/db", &[("password", &key("b"))]);
    bao.kv_put("secret/short", &[("k", &key("c"))]);
    let fresh = config(
        &bao,
        "[policy]\nmax_age = \"30d\"\n[env]\nOPENAI_API_KEY = \"secret/openai#api_key\"\nDB = { ref = \"secret/db#password\", max_age = \"90d\" }\nSHORT = { ref = \"secret/short#k\", max_age = \"10d\" }\n",
    );
    let run = bao
        .keywrap()
        .arg("--config")
        .arg(&fresh)
        .args(["status", "--check", "--format", "table"])
        .run();
    run.assert_success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("MAX AGE"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].starts_with("DB ") && lines[1].contains("90d") && lines[1].contains(" ok"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].contains("30d") && lines[2].contains(" ok"),
        "{}",
        run.stdout
    );
    assert!(
        lines[3].starts_with("SHORT ") && lines[3].contains(" rotate soon"),
        "a fresh key is within 14 days of a 10-day limit, and --check still passes: {}",
        run.stdout
    );

    let strict = config(&bao, "[env]\nOPENAI_API_KEY = { ref = \"secret/openai#api_key\", max_age = \"1s\" }\nDB = \"secret/db#password\"\n");
    std::thread::sleep(Duration::from_millis(1100));
    let run = bao
        .keywrap()
        .arg("--config")
        .arg(&strict)
        .args(["status", "--format", "json"])
        .run();
    run.assert_success();
    let rows: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows[1]["name"], "OPENAI_API_KEY");
    assert_eq!(rows[1]["state"], "overdue");
    assert_eq!(rows[1]["version"], 1);
    assert!(rows[1]["age_seconds"].as_u64().unwrap() >= 1);
    assert_eq!(rows[0]["state"], "ok");
    bao.keywrap()
        .arg("--config")
        .arg(&strict)
        .args(["status", "--check"])
        .run()
        .assert_code(1);
    // A REF written as in keywrap.toml is that entry, with its own max_age.
    let run = bao
        .keywrap()
        .arg("--config")
        .arg(&strict)
        .args(["status", "--check", "secret/openai#api_key"])
        .run();
    run.assert_code(1);
    assert!(
        run.stdout.contains("OPENAI_API_KEY  secret/openai#api_key")
            && run.stdout.contains(" 1s ")
            && run.stdout.contains("overdue"),
        "{}",
        run.stdout
    );

    let missing = bao
        .keywrap()
        .args(["status", "--check", "secret/nothing#x"])
        .run();
    missing.assert_code(125);
    assert!(
        missing.stdout.contains("no secret at"),
        "{}",
        missing.stdout
    );
    assert!(
        bao.audit_reads_of("secret/data/openai").is_empty(),
        "status reads metadata only"
    );
}

#[test]
fn exec_warns_once_about_overdue_keys_and_strict_age_refuses() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("a"))]);
    bao.kv_put("secret/db", &[("password", &key("b"))]);
    let config = config(
        &bao,
        "[policy]\nmax_age = \"1s\"\n[env]\nOPENAI_API_KEY = \"secret/openai#api_key\"\nDB = \"secret/db#password\"\n",
    );
    std::thread::sleep(Duration::from_millis(1100));
    let run = bao
        .keywrap()
        .arg("--config")
        .arg(&config)
        .args(["exec", "--", "true"])
        .run();
    run.assert_success();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("overdue"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("OPENAI_API_KEY (secret/openai#api_key)")
            && warnings[0].contains("DB ("),
        "{}",
        warnings[0]
    );

    let marker = bao.dir.path().join("ran");
    let run = bao
        .keywrap()
        .arg("--config")
        .arg(&config)
        .args(["exec", "--strict-age", "--", "touch"])
        .arg(&marker)
        .run();
    run.assert_code(125).assert_stderr_contains("--strict-age");
    assert!(!marker.exists(), "the command did not run");
}

#[test]
fn rotate_refuses_kv1_pinned_versions_and_values_in_argv() {
    let bao = Bao::start();
    bao.enable_kv("kv1", 1);
    bao.kv1_put("kv1/db", &[("password", "fake")]);
    rotate(&bao, &["kv1/db#password"], Some("x"))
        .assert_code(125)
        .assert_stderr_contains("KV v1");
    rotate(&bao, &["secret/x?version=2#k"], Some("x"))
        .assert_code(125)
        .assert_stderr_contains("remove ?version=");
    bao.kv_put("secret/openai", &[("api_key", "fake")]);
    rotate(&bao, &["secret/openai#api-key"], Some("x"))
        .assert_code(125)
        .assert_stderr_contains("no field \"api-key\" to rotate (its fields: api_key)");
    // The value has no command-line form at all.
    Keywrap::new()
        .args(["rotate", "secret/x#k", "fake-value"])
        .run()
        .assert_code(125);
}

#[test]
fn a_version_written_while_the_generator_runs_stops_the_rotation() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("old"))]);
    let (ready, go) = (bao.dir.path().join("ready"), bao.dir.path().join("go"));
    let generator = format!(
        "touch '{}'; for i in $(seq 200); do [ -f '{}' ] && break; sleep 0.05; done; printf fake-generated",
        ready.display(),
        go.display()
    );
    let mut keywrap = bao.keywrap();
    keywrap.args([
        "rotate",
        "--generate-with",
        &generator,
        "secret/openai#api_key",
    ]);
    let rotation = std::thread::spawn(move || keywrap.run());
    for _ in 0..200 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    bao.kv_put("secret/openai", &[("api_key", &key("outside"))]);
    std::fs::write(&go, "").unwrap();
    let run = rotation.join().unwrap();
    run.assert_code(125)
        .assert_stderr_contains("version 2 appeared while the new key was made")
        .assert_stderr_contains("revoke it at the provider");
    let metadata = bao.kv_metadata("secret/openai");
    assert_eq!(metadata["current_version"], 2);
    assert_eq!(
        metadata["custom_metadata"],
        Value::Null,
        "no marker was written"
    );
}

#[test]
fn status_output_cut_short_by_the_reader_is_not_an_error() {
    use std::io::Read;
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &key("a"))]);
    // More JSON than a pipe holds, so keywrap is still writing when the reader leaves.
    let mut keywrap = bao.keywrap();
    keywrap.args(["status", "--format", "json"]);
    keywrap.args(std::iter::repeat_n("secret/openai#api_key", 300));
    let mut child = keywrap
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(first, *b"[");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
