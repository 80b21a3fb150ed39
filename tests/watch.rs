//! `--watch` against a real OpenBao: a new version restarts the child with the new value,
//! a child that ignores the restart signal is killed after --restart-timeout, and stopping
//! keywrap stops the child and passes its status on.

mod support;

use support::Bao;

/// Prints its value, then waits; exits 7 on TERM (or ignores TERM when `stubborn`).
fn long_running(stubborn: bool) -> Vec<String> {
    let trap = if stubborn {
        "trap '' TERM"
    } else {
        "trap 'exit 7' TERM"
    };
    vec![
        "--no-mask".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("{trap}; echo \"started with $V\"; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done"),
    ]
}

#[test]
fn a_new_version_restarts_the_child_with_the_new_value() {
    let bao = Bao::start();
    bao.kv_put("secret/rotating", &[("v", "fake-value-one")]);
    let mut keywrap = bao.keywrap();
    let mut running = keywrap
        .args(["exec", "--watch=1s", "-s", "V=secret/rotating#v"])
        .args(long_running(false))
        .spawn();
    running.wait_for_stdout("started with fake-value-one", 10);
    bao.kv_put("secret/rotating", &[("v", "fake-value-two")]);
    running.wait_for_stdout("started with fake-value-two", 15);
    assert!(
        running.stderr().contains("restarting the command"),
        "{}",
        running.stderr()
    );

    assert_eq!(
        running.signal_and_wait("TERM").code(),
        Some(7),
        "the child's own status"
    );
    let metadata_reads = bao
        .audit_entries()
        .into_iter()
        .filter(|e| e["type"] == "request" && e["request"]["path"] == "secret/metadata/rotating")
        .count();
    assert!(metadata_reads >= 1);
    assert_eq!(
        bao.audit_reads_of("secret/data/rotating").len(),
        2,
        "values read only at start and on the change"
    );
}

#[test]
fn a_child_that_ignores_the_restart_signal_is_killed_after_the_timeout() {
    let bao = Bao::start();
    bao.kv_put("secret/rotating", &[("v", "fake-value-one")]);
    let mut keywrap = bao.keywrap();
    let mut running = keywrap
        .args([
            "exec",
            "--watch=1s",
            "--restart-signal=15",
            "--restart-timeout=1s",
            "-s",
            "V=secret/rotating#v",
        ])
        .args(long_running(true))
        .spawn();
    running.wait_for_stdout("started with fake-value-one", 10);
    bao.kv_put("secret/rotating", &[("v", "fake-value-two")]);
    running.wait_for_stdout("started with fake-value-two", 15);
    assert!(
        running.stderr().contains("killing it"),
        "{}",
        running.stderr()
    );
    assert!(running.signal_and_wait("INT").code().is_some());
}

#[test]
fn watch_flags_are_checked() {
    let run = support::Keywrap::new()
        .args(["exec", "--watch=soon", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("invalid duration");
    let run = support::Keywrap::new()
        .args(["exec", "--restart-signal=NOPE", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("not a signal name");
    let run = support::Keywrap::new()
        .args(["exec", "--watch", "5", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("as in `--watch=5`");
}

#[test]
fn a_restarted_child_that_fails_at_once_is_retried_with_backoff() {
    let bao = Bao::start();
    bao.kv_put("secret/rotating", &[("v", "fake-good-one")]);
    let mut keywrap = bao.keywrap();
    let mut running = keywrap
        .args(["exec", "--watch=1s", "-s", "V=secret/rotating#v", "--no-mask", "--", "sh", "-c"])
        .arg("trap 'exit 7' TERM; case $V in *bad*) echo \"failing with $V\"; exit 1;; esac; echo \"started with $V\"; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done")
        .spawn();
    running.wait_for_stdout("started with fake-good-one", 10);
    bao.kv_put("secret/rotating", &[("v", "fake-bad-value")]);
    running.wait_for_stdout("failing with fake-bad-value", 15);
    running.wait_for_stderr("starting it again in 1s", 10);
    bao.kv_put("secret/rotating", &[("v", "fake-good-two")]);
    running.wait_for_stdout("started with fake-good-two", 15);
    assert_eq!(running.signal_and_wait("TERM").code(), Some(7));
}

#[test]
fn stopping_keywrap_forwards_the_signal_once_and_passes_the_status_on() {
    let bao = Bao::start();
    bao.kv_put("secret/rotating", &[("v", "fake-value-one")]);
    let mut keywrap = bao.keywrap();
    let mut running = keywrap
        .args(["exec", "--watch=1s", "-s", "V=secret/rotating#v", "--", "sh", "-c"])
        .arg("n=0; trap 'n=$((n+1))' TERM; echo ready; i=0; while [ $i -lt 100 ] && [ $n -eq 0 ]; do sleep 0.1; i=$((i+1)); done; sleep 0.5; exit $((20+n))")
        .spawn();
    running.wait_for_stdout("ready", 10);
    assert_eq!(
        running.signal_and_wait("TERM").code(),
        Some(21),
        "one TERM, and the child's status"
    );
}

#[test]
fn a_restart_masks_the_new_value_and_warns_about_short_values_once() {
    let bao = Bao::start();
    bao.kv_put("secret/rotating", &[("v", "fake-value-one")]);
    bao.kv_put("secret/short", &[("v", "abc")]);
    let mut keywrap = bao.keywrap();
    let mut running = keywrap
        .args(["exec", "--watch=1s", "-s", "V=secret/rotating#v", "-s", "S=secret/short#v", "--", "sh", "-c"])
        .arg("trap 'exit 7' TERM; case $V in *two) echo second;; esac; echo \"started with $V\"; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done")
        .spawn();
    running.wait_for_stdout("started with <concealed by keywrap>", 10);
    bao.kv_put("secret/rotating", &[("v", "fake-value-two")]);
    running.wait_for_stdout("second", 15);
    running.wait_for_stdout("second\nstarted with <concealed by keywrap>", 5);
    assert_eq!(running.signal_and_wait("TERM").code(), Some(7));
    assert!(
        !running.stdout().contains("fake-value"),
        "{}",
        running.stdout()
    );
    assert_eq!(
        running.stderr().matches("shorter than").count(),
        1,
        "{}",
        running.stderr()
    );
}
