//! `keywrap audit report` on the audit log a real OpenBao wrote while this test ran
//! keywrap: headers, denied reads, a new CI job, filters, the three formats, and a
//! truncated last line.

mod support;

use serde_json::Value;
use support::Bao;

/// A server whose log holds: two normal reads, a denied read, and a read from a CI job.
fn server_with_history() -> Bao {
    let bao = Bao::start();
    bao.keywrap()
        .args(["audit", "setup"])
        .run()
        .assert_success();
    bao.kv_put("secret/openai", &[("api_key", "fake-key-for-report")]);
    bao.kv_put("secret/db", &[("password", "fake-db-for-report")]);
    for _ in 0..2 {
        bao.keywrap()
            .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
            .run()
            .assert_success();
    }
    bao.write_policy(
        "other",
        "path \"secret/data/other\" { capabilities = [\"read\"] }",
    );
    let token = bao.token_with(&["other"]);
    bao.keywrap()
        .env("VAULT_TOKEN", &token)
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run()
        .assert_code(125);
    bao.keywrap()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_JOB", "deploy")
        .env("GITHUB_RUN_ID", "77")
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "-s",
            "D=secret/db#password",
            "--",
            "true",
        ])
        .run()
        .assert_success();
    bao
}

fn report_json(bao: &Bao, args: &[&str]) -> Value {
    let run = bao
        .keywrap()
        .args(["audit", "report", "--log"])
        .arg(&bao.audit_log)
        .args(["--format", "json"])
        .args(args)
        .run();
    run.assert_success();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn reports_who_read_what_and_flags_denied_reads_and_new_ci_jobs() {
    let bao = server_with_history();
    let report = report_json(&bao, &[]);
    let reads = report["reads"].as_array().unwrap();
    let openai: Vec<&Value> = reads
        .iter()
        .filter(|r| r["path"] == "secret/openai")
        .collect();
    assert_eq!(openai.len(), 4, "{reads:#?}");
    let first = openai[0];
    assert_eq!(first["allowed"], true);
    assert_eq!(first["command"], "true");
    assert!(!first["host"].as_str().unwrap().is_empty());
    assert!(!first["user"].as_str().unwrap().is_empty());
    assert_eq!(first["correlation_id"].as_str().unwrap().len(), 36);
    assert_eq!(first["remote_address"], "127.0.0.1");
    assert!(first["accessor"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    assert_eq!(first["flags"], serde_json::json!([]));
    assert_eq!(
        first["unverified"],
        serde_json::json!(["host", "user", "command"]),
        "what the headers claim is marked"
    );

    assert_eq!(openai[2]["allowed"], false);
    assert_eq!(openai[2]["flags"], serde_json::json!(["denied"]));
    assert_eq!(
        openai[3]["ci"],
        "github-actions repo=acme/app job=deploy run=77"
    );
    assert_eq!(openai[3]["flags"], serde_json::json!(["new CI job"]));
    assert_eq!(
        openai[3]["unverified"],
        serde_json::json!(["host", "user", "command", "ci", "new CI job"])
    );
    // The first read of secret/db sets its baseline.
    let db: Vec<&Value> = reads.iter().filter(|r| r["path"] == "secret/db").collect();
    assert_eq!(db.len(), 1);
    assert_eq!(db[0]["flags"], serde_json::json!([]));
    assert_eq!(report["summary"]["denied"], 1);
    assert!(!serde_json::to_string(&report)
        .unwrap()
        .contains("fake-key-for-report"));
}

#[test]
fn filters_and_formats() {
    let bao = server_with_history();
    let only_db = report_json(&bao, &["--path", "secret/d*"]);
    assert_eq!(only_db["reads"].as_array().unwrap().len(), 1);
    assert_eq!(
        only_db["summary"]["reads"], 5,
        "rules still see the whole log"
    );
    let flagged = report_json(&bao, &["--flagged"]);
    assert_eq!(flagged["reads"].as_array().unwrap().len(), 2);
    assert_eq!(
        report_json(&bao, &["--host", "no-such-host"])["reads"],
        serde_json::json!([])
    );
    assert_eq!(
        report_json(&bao, &["--host", "127.0.0.1"])["reads"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "a remote address is a host too"
    );
    assert_eq!(
        report_json(&bao, &["--path", "secret/data/db"])["reads"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the path as the log has it"
    );
    assert_eq!(
        report_json(&bao, &["--since", "1h"])["reads"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        report_json(&bao, &["--until", "2000-01-01"])["reads"],
        serde_json::json!([])
    );

    let csv = bao
        .keywrap()
        .args(["audit", "report", "--format", "csv", "--log"])
        .arg(&bao.audit_log)
        .run();
    csv.assert_success();
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines[0], "time,path,allowed,accessor,display_name,remote_address,host,user,command,ci,correlation_id,flags,unverified");
    assert_eq!(lines.len(), 6);
    assert!(
        lines[3].contains(",secret/openai,false,")
            && lines[3].ends_with(",denied,host;user;command"),
        "{}",
        lines[3]
    );

    let piped = bao
        .keywrap()
        .args(["audit", "report", "--format", "json", "--log", "-"])
        .stdin(bao.audit_text())
        .run();
    piped.assert_success();
    let piped: Value = serde_json::from_str(&piped.stdout).unwrap();
    assert_eq!(
        piped["summary"]["reads"], 5,
        "a log on stdin reads the same"
    );

    let text = bao
        .keywrap()
        .args(["audit", "report", "--log"])
        .arg(&bao.audit_log)
        .run();
    text.assert_success();
    let table = bao
        .keywrap()
        .args(["audit", "report", "--format", "table", "--log"])
        .arg(&bao.audit_log)
        .run();
    assert_eq!(
        table.stdout, text.stdout,
        "--format table is the text table"
    );
    assert!(text.stdout.starts_with("TIME"), "{}", text.stdout);
    assert!(text.stdout.contains("DENIED"));
    assert!(
        text.stdout.contains("5 of 5 secret reads shown"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_truncated_log_and_foreign_lines_are_survived() {
    let bao = server_with_history();
    let mut log = bao.audit_text();
    log.push_str("not an audit entry\n");
    // Half of a read of secret/db, as a crash mid-write leaves it.
    let read = log
        .lines()
        .find(|l| {
            l.contains("\"type\":\"request\"")
                && l.contains("\"operation\":\"read\"")
                && l.contains("\"path\":\"secret/data/db\"")
        })
        .unwrap()
        .to_string();
    log.push_str(&read[..read.len() - 40]);
    let path = bao.dir.path().join("copy.log");
    std::fs::write(&path, log).unwrap();
    let run = bao
        .keywrap()
        .args(["audit", "report", "--format", "json", "--log"])
        .arg(&path)
        .run();
    run.assert_success();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["summary"]["reads"], 5);
    assert_eq!(
        report["summary"]["malformed"], 2,
        "the line of text and the cut read"
    );

    let empty = bao.dir.path().join("other.log");
    std::fs::write(&empty, "hello\nworld\n").unwrap();
    let run = bao
        .keywrap()
        .args(["audit", "report", "--log"])
        .arg(&empty)
        .run();
    run.assert_success()
        .assert_stderr_contains("no reads of secrets");
    bao.keywrap()
        .args(["audit", "report", "--log", "/nonexistent/audit.log"])
        .run()
        .assert_code(125)
        .assert_stderr_contains("cannot open the audit log /nonexistent/audit.log");
}

#[test]
fn a_log_rewritten_with_spaces_reads_the_same() {
    let bao = server_with_history();
    let compact = report_json(&bao, &[]);
    // What `json.dumps` (or `jq` without -c) makes of each entry.
    let spaced: String = bao
        .audit_text()
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            let mut out = serde_json::to_string(&entry)
                .unwrap()
                .replace("\":", "\": ")
                .replace(",\"", ", \"");
            out.push('\n');
            out
        })
        .collect();
    let path = bao.dir.path().join("spaced.log");
    std::fs::write(&path, spaced).unwrap();
    let run = bao
        .keywrap()
        .args(["audit", "report", "--format", "json", "--log"])
        .arg(&path)
        .run();
    run.assert_success();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["summary"]["reads"], 5, "{}", run.stdout);
    assert_eq!(report["reads"], compact["reads"]);
}

#[test]
fn a_large_log_shows_progress_on_a_terminal_only() {
    // Over the 64 MiB threshold: responses with a large body, then one read.
    let padding = format!(
        "{{\"time\":\"2026-11-30T05:00:00Z\",\"type\":\"response\",\"request\":{{\"operation\":\"update\",\"path\":\"sys/x\"}},\"body\":\"{}\"}}\n",
        "x".repeat(1000)
    );
    let read = r#"{"time":"2026-11-30T05:07:22Z","type":"request","auth":{"accessor":"hmac-sha256:ab76","display_name":"token"},"request":{"operation":"read","mount_point":"secret/","mount_type":"kv","path":"secret/data/openai","remote_address":"10.1.2.3"}}"#;
    let log = padding.repeat((65 << 20) / padding.len()) + read + "\n";
    let keywrap = &mut support::Keywrap::new();
    let path = keywrap.write_file("big-audit.log", &log);
    drop(log);

    // indicatif draws only on a terminal with a size and a TERM that is not dumb, as real
    // terminals are; the pty gets both.
    let run = keywrap
        .args(["audit", "report", "--log"])
        .arg(&path)
        .run_in_pty_shell(|keywrap| format!("stty cols 100 rows 30; TERM=xterm {keywrap}"));
    run.assert_success();
    // Frames are rate-limited, so which percentages appear varies; the first and the shape do not.
    assert!(
        run.stdout
            .starts_with("keywrap: reading audit log [--------------------]   0% (")
            && run.stdout.contains("#---")
            && run.stdout.contains(" of 65.00 MiB)"),
        "{:?}",
        &run.stdout[..run.stdout.len().min(400)]
    );
    let report = run
        .stdout
        .rsplit("\r\x1b[2K")
        .next()
        .expect("the line is cleared");
    assert!(report.starts_with("TIME"), "{report:?}");
    assert!(report.contains("secret/openai"), "{report:?}");

    let piped = support::Keywrap::new()
        .args(["audit", "report", "--log"])
        .arg(&path)
        .run();
    piped.assert_success();
    assert!(
        !piped.stderr.contains("reading audit log"),
        "{}",
        piped.stderr
    );
    assert!(
        piped.stdout.contains("1 of 1 secret reads shown"),
        "{}",
        piped.stdout
    );
}

#[test]
fn a_machine_read_before_keywrap_named_it_is_not_a_new_host() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-key-for-report")]);
    // Another client, then keywrap before `audit setup`: only the remote address is known.
    bao.kv_field("secret/openai", "api_key", None);
    let exec = |bao: &Bao| {
        bao.keywrap()
            .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
            .run()
            .assert_success();
    };
    exec(&bao);
    bao.keywrap()
        .args(["audit", "setup"])
        .run()
        .assert_success();
    exec(&bao);
    exec(&bao);
    let report = report_json(&bao, &[]);
    let reads = report["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 4, "{reads:#?}");
    assert!(!reads[3]["host"].as_str().unwrap().is_empty());
    for read in reads {
        assert_eq!(read["flags"], serde_json::json!([]), "{reads:#?}");
    }
}

#[test]
fn a_host_name_claimed_by_any_token_holder_is_unverified() {
    let bao = Bao::start();
    bao.keywrap()
        .args(["audit", "setup"])
        .run()
        .assert_success();
    bao.kv_put("secret/openai", &[("api_key", "fake-key-for-report")]);
    bao.keywrap()
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run()
        .assert_success();
    // Anyone with a token can send keywrap's headers: here, another host's name.
    let response = ureq::get(format!("{}/v1/secret/data/openai", bao.addr))
        .header("X-Vault-Token", support::ROOT_TOKEN)
        .header("X-Keywrap-Host", "build-01")
        .header("X-Keywrap-CI", "github-actions repo=acme/app job=release")
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report = report_json(&bao, &[]);
    let reads = report["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 2, "{reads:#?}");
    let claimed = &reads[1];
    assert_eq!(claimed["host"], "build-01");
    assert_eq!(claimed["remote_address"], "127.0.0.1");
    assert_eq!(
        claimed["flags"],
        serde_json::json!(["new host", "new CI job"])
    );
    assert_eq!(
        claimed["unverified"],
        serde_json::json!(["host", "ci", "new host", "new CI job"]),
        "the address did not change: only the header says this is a new host"
    );
    let text = bao
        .keywrap()
        .args(["audit", "report", "--log"])
        .arg(&bao.audit_log)
        .run();
    text.assert_success();
    assert!(
        text.stdout.contains("new host (unverified)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("X-Keywrap-* headers, which any token holder can send"),
        "{}",
        text.stdout
    );
}

#[test]
fn alert_sends_each_flagged_anomaly_once_and_no_secret() {
    let bao = server_with_history();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let receiver = {
        let calls = calls.clone();
        // The first attempt fails, so the retry is exercised.
        support::stub::Stub::start(move |_| {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => (503, "{}".into()),
                _ => (200, "ok".into()),
            }
        })
    };
    let run = bao
        .keywrap()
        .env("OPS_WEBHOOK", &receiver.url)
        .args(["audit", "report", "--flagged", "--alert-env", "OPS_WEBHOOK"])
        .args(["--alert-format", "slack", "--log"])
        .arg(&bao.audit_log)
        .run();
    run.assert_success().assert_stderr_contains("sent 2 alerts");
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "one retry and two alerts");
    let texts: Vec<String> = requests[1..]
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"denied\"") && t.contains("secret/openai")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("\"new CI job\"")),
        "{texts:?}"
    );
    for request in &requests {
        let everything = format!("{request:?}{}", String::from_utf8_lossy(&request.body));
        for secret in [
            "fake-key-for-report",
            "fake-db-for-report",
            support::ROOT_TOKEN,
            "kwp_",
        ] {
            assert!(!everything.contains(secret), "{everything}");
        }
    }
}

#[test]
fn alert_to_a_failing_webhook_fails_after_bounded_retries() {
    let bao = server_with_history();
    let receiver = support::stub::Stub::start(|_| (500, "{}".into()));
    bao.kv_put(
        "secret/ops",
        &[(
            "hook",
            &format!("{}/hooks/not-a-real-secret-part", receiver.url),
        )],
    );
    let run = bao
        .keywrap()
        .args(["audit", "report", "--flagged", "--alert", "secret/ops#hook"])
        .arg("--log")
        .arg(&bao.audit_log)
        .run();
    run.assert_code(125)
        .assert_stderr_contains("did not take the alert after 4 attempts: HTTP 500");
    assert!(!run.stderr.contains("not-a-real-secret-part"));
    assert_eq!(receiver.requests.lock().unwrap().len(), 4);
}

#[test]
fn alert_refuses_a_webhook_url_in_argv() {
    let bao = server_with_history();
    let run = bao
        .keywrap()
        .args(["audit", "report", "--flagged", "--alert"])
        .arg("https://hooks.example.invalid/services/not-a-real-secret-part")
        .arg("--log")
        .arg(&bao.audit_log)
        .run();
    assert!(!run.status.success());
    run.assert_stderr_contains("not the URL itself (not shown)");
    assert!(!run.stderr.contains("not-a-real-secret-part"));
    let unset = bao
        .keywrap()
        .args(["audit", "report", "--alert-env", "KEYWRAP_TEST_NO_SUCH_VAR"])
        .arg("--log")
        .arg(&bao.audit_log)
        .run();
    assert!(!unset.stderr.is_empty() && unset.stderr.contains("KEYWRAP_TEST_NO_SUCH_VAR"));
}
