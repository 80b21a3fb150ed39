//! Faults: each either costs a short wait or ends in a clear error (exit 125), never a hang,
//! a panic or a wrong value.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::fault::{Fault, FaultProxy};
use support::stub::Stub;
use support::{Bao, BaoOptions, Keywrap, ROOT_TOKEN};

fn through(proxy: &FaultProxy) -> Keywrap {
    let mut keywrap = Keywrap::new();
    keywrap
        .env("VAULT_ADDR", &proxy.address)
        .env("VAULT_TOKEN", ROOT_TOKEN);
    keywrap
}

fn print_key() -> [&'static str; 8] {
    [
        "exec",
        "-s",
        "K=secret/openai#api_key",
        "--no-mask",
        "--",
        "sh",
        "-c",
        "printf %s \"$K\"",
    ]
}

#[test]
fn a_stalled_connection_ends_at_the_deadline_with_what_was_tried() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-stall")]);
    let proxy = FaultProxy::start("127.0.0.1", bao.socket(), Fault::Stall, usize::MAX, "http");
    let started = Instant::now();
    let run = through(&proxy)
        .args(["--timeout", "2"])
        .args(print_key())
        .run();
    run.assert_code(125)
        .assert_stderr_contains("within the 2s deadline")
        .assert_stderr_contains(&proxy.address);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_deadline_bounds_the_whole_run_not_each_request() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-deadline")]);
    // Each answer takes 1.2 s: the mount lookup and the read each fit in 2 s, both do not.
    let proxy = FaultProxy::start(
        "127.0.0.1",
        bao.socket(),
        Fault::DelayEach(Duration::from_millis(1200)),
        usize::MAX,
        "http",
    );
    let started = Instant::now();
    let run = through(&proxy)
        .args(["--timeout", "2"])
        .args(print_key())
        .run();
    run.assert_code(125)
        .assert_stderr_contains("within the 2s deadline")
        .assert_stderr_contains(&proxy.address);
    assert!(run.stdout.is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_answer_cut_off_half_way_is_retried() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-cut")]);
    let proxy = FaultProxy::start("127.0.0.1", bao.socket(), Fault::CutAfter(40), 2, "http");
    let run = through(&proxy).args(print_key()).run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-cut");
    assert!(proxy.connections.load(std::sync::atomic::Ordering::SeqCst) > 2);
}

#[test]
fn a_slow_answer_within_the_deadline_only_costs_time() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-slow")]);
    let proxy = FaultProxy::start(
        "127.0.0.1",
        bao.socket(),
        Fault::Delay(Duration::from_millis(700)),
        usize::MAX,
        "http",
    );
    let run = through(&proxy).args(print_key()).run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-slow");
}

#[test]
fn a_server_sealed_mid_run() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-sealed")]);
    // Answers are held back 1 s: the mount lookup is served, then the server is sealed
    // before the read.
    let proxy = FaultProxy::start(
        "127.0.0.1",
        bao.socket(),
        Fault::Delay(Duration::from_secs(1)),
        usize::MAX,
        "http",
    );
    let mut keywrap = through(&proxy);
    let command = keywrap.args(print_key());
    let sealer = {
        let addr = bao.addr.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            agent
                .post(format!("{addr}/v1/sys/seal"))
                .header("X-Vault-Token", ROOT_TOKEN)
                .send_empty()
                .unwrap();
        })
    };
    let run = command.run();
    sealer.join().unwrap();
    run.assert_code(125).assert_stderr_contains("sealed");
    assert!(run.stdout.is_empty());
}

#[test]
fn the_next_node_answers_when_the_first_is_down() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-failover")]);
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let run = Keywrap::new()
        .env("VAULT_ADDR", format!("{dead},{}", bao.addr))
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(print_key())
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-failover");
}

#[test]
fn a_sealed_node_first_in_the_config_is_passed_over() {
    let sealed = Bao::start();
    sealed.ok("POST", "sys/seal", None);
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-past-sealed")]);
    let mut keywrap = Keywrap::new();
    keywrap.write_file(
        "keywrap.toml",
        &format!(
            "[vault]\naddress = [\"{}\", \"{}\"]\n\n[env]\nK = \"secret/openai#api_key\"\n",
            sealed.addr, bao.addr
        ),
    );
    keywrap.trust(keywrap.workdir.path().join("keywrap.toml"));
    let run = keywrap
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(["exec", "--no-mask", "--", "sh", "-c", "printf %s \"$K\""])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-past-sealed");
}

#[test]
fn a_login_token_that_expires_mid_run_is_reported_not_fatal() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-expiring")]);
    bao.write_policy(
        "read-openai",
        "path \"secret/data/openai\" { capabilities = [\"read\"] }",
    );
    let (role_id, secret_id) = bao.approle(
        "short",
        json!({ "token_policies": ["read-openai"], "token_ttl": "1s", "token_max_ttl": "2s" }),
    );
    let run = Keywrap::new()
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_ROLE_ID", role_id)
        .env("VAULT_SECRET_ID", secret_id)
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "sleep 3; exit 4",
        ])
        .run();
    run.assert_code(4);
    assert!(
        run.stderr.contains("max TTL") || run.stderr.contains("could not revoke"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_token_that_expires_between_lookup_and_read_is_named() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-expired")]);
    // Answers are 1.3 s late: the mount lookup is served, the read reaches Vault after the
    // token's 1 s TTL.
    let proxy = FaultProxy::start(
        "127.0.0.1",
        bao.socket(),
        Fault::DelayEach(Duration::from_millis(1300)),
        usize::MAX,
        "http",
    );
    bao.write_policy(
        "read-openai",
        "path \"secret/data/openai\" { capabilities = [\"read\"] }",
    );
    let token = bao.ok(
        "POST",
        "auth/token/create",
        Some(json!({ "ttl": "1s", "policies": ["default", "read-openai"] })),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let run = through(&proxy)
        .env("VAULT_TOKEN", &token)
        .args(print_key())
        .run();
    run.assert_code(125)
        .assert_stderr_contains("refused the token from VAULT_TOKEN: it is expired");
    assert!(!run.stderr.contains("capability"), "{}", run.stderr);
    assert!(!run.stderr.contains(&token));
}

#[test]
fn a_wrong_ca_is_a_tls_error() {
    let bao = Bao::start_with(BaoOptions { tls: true });
    bao.kv_put("secret/openai", &[("api_key", "fake-wrong-ca")]);
    let other = Bao::start_with(BaoOptions { tls: true });
    let run = bao
        .keywrap()
        .env("VAULT_CACERT", other.ca_cert.as_ref().unwrap())
        .args(print_key())
        .run();
    run.assert_code(125)
        .assert_stderr_contains("TLS connection")
        .assert_stderr_contains("invalid peer certificate");
}

#[test]
fn a_hostname_mismatch_is_a_tls_error() {
    let bao = Bao::start_with(BaoOptions { tls: true });
    bao.kv_put("secret/openai", &[("api_key", "fake-mismatch")]);
    // The certificate names 127.0.0.1 and localhost; 127.0.0.2 reaches the same server.
    let proxy = FaultProxy::start("127.0.0.2", bao.socket(), Fault::Pass, 0, "https");
    let run = bao
        .keywrap()
        .env("VAULT_ADDR", &proxy.address)
        .args(print_key())
        .run();
    run.assert_code(125)
        .assert_stderr_contains("TLS connection")
        .assert_stderr_contains("not valid for name \"127.0.0.2\"")
        .assert_stderr_contains("a name the certificate holds");
}

#[test]
fn a_node_whose_certificate_fails_is_passed_over() {
    let bao = Bao::start_with(BaoOptions { tls: true });
    bao.kv_put("secret/openai", &[("api_key", "fake-good-cert")]);
    let mismatch = FaultProxy::start("127.0.0.2", bao.socket(), Fault::Pass, 0, "https");
    let run = bao
        .keywrap()
        .env("VAULT_ADDR", format!("{},{}", mismatch.address, bao.addr))
        .args(print_key())
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-good-cert");
}

#[test]
fn malformed_and_oversized_answers_are_errors_not_panics() {
    let huge = "x".repeat(40 << 20);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "not json",
            "this is not json".to_string(),
            "unexpected answer",
        ),
        (
            "wrong shape",
            "{\"data\": 42}".to_string(),
            "unexpected answer",
        ),
        (
            "truncated",
            "{\"data\": {\"path\": \"secret/\"".to_string(),
            "unexpected answer",
        ),
        ("oversized", huge, "larger than 32 MiB"),
        (
            "binary",
            String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x01]).into_owned(),
            "unexpected answer",
        ),
    ];
    for (name, body, expected) in cases {
        let body = std::sync::Arc::new(body);
        let served = body.clone();
        let stub = Stub::start(move |_| (200, served.as_str().to_string()));
        let run = Keywrap::new()
            .env("VAULT_ADDR", &stub.url)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .args(["--timeout", "10"])
            .args(print_key())
            .run();
        assert_eq!(run.code(), Some(125), "{name}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    }
}

#[test]
fn server_errors_and_rate_limits_are_retried() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-retried")]);
    for (status, retry_after) in [(500, None), (502, None), (503, None), (429, Some(1))] {
        let proxy = FaultProxy::start(
            "127.0.0.1",
            bao.socket(),
            Fault::Status(status, retry_after),
            2,
            "http",
        );
        let started = Instant::now();
        let run = through(&proxy).args(print_key()).run();
        run.assert_success();
        assert_eq!(run.stdout, "fake-retried", "{status}");
        assert!(
            proxy.connections.load(std::sync::atomic::Ordering::SeqCst) > 2,
            "{status}"
        );
        if retry_after.is_some() {
            assert!(
                started.elapsed() >= Duration::from_secs(2),
                "429 + Retry-After: 1, twice: {:?}",
                started.elapsed()
            );
        }
    }
}

#[test]
fn a_rate_limit_without_retry_after_backs_off_exponentially() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-backoff")]);
    // No Retry-After, and Retry-After: 0, which would otherwise be a busy loop.
    for retry_after in [None, Some(0)] {
        let proxy = FaultProxy::start(
            "127.0.0.1",
            bao.socket(),
            Fault::Status(429, retry_after),
            5,
            "http",
        );
        let started = Instant::now();
        let run = through(&proxy).args(print_key()).run();
        run.assert_success();
        assert_eq!(run.stdout, "fake-backoff");
        // Five waits of at least 50, 100, 200, 400 and 800 ms (half of each ceiling).
        assert!(
            started.elapsed() >= Duration::from_millis(1550),
            "{retry_after:?}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn client_errors_are_not_retried() {
    let bao = Bao::start();
    for status in [400, 404, 405] {
        let proxy = FaultProxy::start(
            "127.0.0.1",
            bao.socket(),
            Fault::Status(status, None),
            usize::MAX,
            "http",
        );
        let run = through(&proxy).args(print_key()).run();
        run.assert_code(125)
            .assert_stderr_contains(&format!("injected {status}"));
        assert_eq!(
            proxy.connections.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{status} was retried"
        );
    }
    // And from the real server: a denied and a missing secret are each read once.
    bao.kv_put("secret/forbidden", &[("k", "fake-denied")]);
    bao.write_policy(
        "nothing",
        "path \"secret/data/other\" { capabilities = [\"read\"] }",
    );
    let token = bao.token_with(&["nothing"]);
    let run = bao
        .keywrap()
        .env("VAULT_TOKEN", &token)
        .args(["exec", "-s", "F=secret/forbidden#k", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("permission denied");
    let run = bao
        .keywrap()
        .args(["exec", "-s", "M=secret/missing#k", "--", "true"])
        .run();
    run.assert_code(125);
    for path in ["secret/data/forbidden", "secret/data/missing"] {
        assert_eq!(bao.audit_reads_of(path).len(), 1, "{path} was read again");
    }
}

#[test]
fn redirects_to_the_active_node_are_followed() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-redirected")]);
    bao.write_policy(
        "read-openai",
        "path \"secret/data/openai\" { capabilities = [\"read\"] }",
    );
    let active = format!("http://{}", bao.socket());
    for status in [307, 308] {
        let (role_id, secret_id) = bao.approle("ci", json!({ "token_policies": ["read-openai"] }));
        // Every request (the login, a POST with a body, included) is sent elsewhere: to
        // the other node of the configured cluster.
        let standby = FaultProxy::start(
            "127.0.0.1",
            bao.socket(),
            Fault::Redirect(status, bao.socket()),
            usize::MAX,
            "http",
        );
        let run = Keywrap::new()
            .env("VAULT_ADDR", format!("{},{active}", standby.address))
            .env("VAULT_ROLE_ID", role_id)
            .env("VAULT_SECRET_ID", secret_id)
            .args(print_key())
            .run();
        run.assert_success();
        assert_eq!(run.stdout, "fake-redirected", "{status}");
        assert!(
            standby
                .connections
                .load(std::sync::atomic::Ordering::SeqCst)
                >= 3
        );
    }
    // A load balancer moving reads to a configured node with 301 (a token, so no login).
    let balancer = FaultProxy::start(
        "127.0.0.1",
        bao.socket(),
        Fault::Redirect(301, bao.socket()),
        usize::MAX,
        "http",
    );
    let run = through(&balancer)
        .env("VAULT_ADDR", format!("{},{active}", balancer.address))
        .args(print_key())
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-redirected");
}

#[test]
fn a_redirect_to_another_origin_carries_neither_the_token_nor_login_material() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-redirected")]);
    let (role_id, secret_id) = bao.approle("ci", json!({ "token_policies": ["default"] }));
    // Another port on the same host: a recording listener that would answer anything.
    let recorder = Stub::start(|_| (200, "{}".into()));
    let elsewhere: std::net::SocketAddr =
        recorder.url.trim_start_matches("http://").parse().unwrap();
    for status in [301, 302, 303, 307, 308] {
        let node = FaultProxy::start(
            "127.0.0.1",
            bao.socket(),
            Fault::Redirect(status, elsewhere),
            usize::MAX,
            "http",
        );
        let run = through(&node).args(print_key()).run();
        run.assert_code(125)
            .assert_stderr_contains("redirected sys/internal/ui/mounts/secret/openai")
            .assert_stderr_contains(&format!("to {}", recorder.url))
            .assert_stderr_contains("did not follow it, so nothing was sent there")
            .assert_stderr_contains("not one of the configured Vault addresses");
        assert!(!run.stderr.contains(ROOT_TOKEN), "{}", run.stderr);
        // A login's credentials are a request body, redirected by 307 and 308.
        let run = Keywrap::new()
            .env("VAULT_ADDR", &node.address)
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID", &secret_id)
            .args(print_key())
            .run();
        run.assert_code(125);
        if status >= 307 {
            run.assert_stderr_contains("redirected auth/approle/login");
        }
        assert!(!run.stderr.contains(&secret_id), "{}", run.stderr);
    }
    let received = recorder.requests();
    assert!(received.is_empty(), "the other port received {received:?}");
}

#[test]
fn malformed_secret_reads_are_errors_not_panics() {
    let mount = r#"{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}"#;
    let deep = format!(
        r#"{{"data":{{"data":{{"api_key":{}{}}}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases: Vec<(&str, String)> = vec![
        ("html", "<html>bad gateway</html>".into()),
        (
            "data not a map",
            r#"{"data":{"data":"x","metadata":{"version":1}}}"#.into(),
        ),
        ("truncated", r#"{"data":{"data":{"api_key":"fake"#.into()),
        ("nested 100,000 deep", deep),
        (
            "invalid escape",
            r#"{"data":{"data":{"api_key":"\ud800"}}}"#.into(),
        ),
    ];
    for (name, body) in cases {
        let body = std::sync::Arc::new(body);
        let served = body.clone();
        let stub = Stub::start(move |request| {
            if request.target.contains("sys/internal/ui/mounts") {
                (200, mount.to_string())
            } else {
                (200, served.as_str().to_string())
            }
        });
        let run = Keywrap::new()
            .env("VAULT_ADDR", &stub.url)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .args(["--timeout", "10"])
            .args(print_key())
            .run();
        assert_eq!(run.code(), Some(125), "{name}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("unexpected answer from Vault for secret/data/openai"),
            "{name}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    }
}
