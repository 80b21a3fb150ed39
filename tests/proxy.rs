//! `keywrap proxy` against a real OpenBao server and a stand-in upstream on loopback:
//! injection and stripping, masking, client keys and revocation, streaming, limits, token
//! counts, metrics, rotation and shutdown.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use support::upstream::{fake_key, Upstream};
use support::{free_port, Background, Bao};

struct Proxy {
    bao: Bao,
    upstream: Upstream,
    process: Background,
    port: u16,
    metrics_port: u16,
}

impl Proxy {
    /// OpenBao with the upstream key at secret/openai, the stand-in upstream, and the proxy
    /// injecting `Authorization: Bearer {OPENAI}` plus whatever `extra` adds.
    fn start(extra: &[&str]) -> Proxy {
        let bao = Bao::start();
        bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
        Self::start_with(bao, extra)
    }

    fn start_with(bao: Bao, extra: &[&str]) -> Proxy {
        let upstream = Upstream::start();
        let port = free_port();
        let metrics_port = free_port();
        let process = Self::spawn(&bao, &upstream, port, metrics_port, extra);
        Proxy {
            bao,
            upstream,
            process,
            port,
            metrics_port,
        }
    }

    fn spawn(
        bao: &Bao,
        upstream: &Upstream,
        port: u16,
        metrics_port: u16,
        extra: &[&str],
    ) -> Background {
        let mut process = bao
            .keywrap()
            .args([
                "proxy",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                &upstream.url(),
            ])
            .args([
                "--secret",
                "OPENAI=secret/openai#api_key",
                "--header",
                "Authorization: Bearer {OPENAI}",
            ])
            .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
            .args(if extra.contains(&"--keys-reload") {
                &[][..]
            } else {
                &["--keys-reload", "0.3"][..]
            })
            .args(extra)
            .spawn();
        process.wait_for_port(port);
        process
    }

    /// Stops the proxy with SIGTERM and starts it again on the same addresses.
    fn restart(&mut self, extra: &[&str]) {
        let status = self.process.signal_and_wait("TERM");
        assert!(status.success(), "{status}");
        self.process = Self::spawn(
            &self.bao,
            &self.upstream,
            self.port,
            self.metrics_port,
            extra,
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `keywrap proxy keys create NAME ARGS`; returns the key.
    fn create_key(&self, name: &str, args: &[&str]) -> String {
        let run = self
            .bao
            .keywrap()
            .args(["proxy", "keys", "create", name])
            .args(args)
            .run();
        run.assert_success();
        run.stdout.trim().to_string()
    }

    /// The proxy's stderr once it contains `text` (the access log line of a request is
    /// written when its answer ends, just after the client has read it).
    fn log_with(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.process.stderr();
            if log.contains(text) {
                return log;
            }
            assert!(Instant::now() < deadline, "{text:?} not in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metrics(&self) -> String {
        get(
            &format!("http://127.0.0.1:{}/metrics", self.metrics_port),
            None,
        )
        .body
    }
}

/// Starts `keywrap proxy` in a new directory whose keywrap.toml (trusted, as a CI job would
/// trust it) is `config`, and waits for it on `port`. The returned `Keywrap` owns the directory.
fn proxy_from_config(bao: &Bao, port: u16, config: &str) -> (Background, support::Keywrap) {
    let keywrap = bao.keywrap();
    keywrap.write_file("keywrap.toml", config);
    let dir = keywrap.workdir.path().to_path_buf();
    let mut process = bao
        .keywrap()
        .current_dir(&dir)
        .env("KEYWRAP_TRUST", dir.join("keywrap.toml"))
        .arg("proxy")
        .spawn();
    process.wait_for_port(port);
    (process, keywrap)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn get(url: &str, key: Option<&str>) -> Answer {
    get_with(url, key, &[])
}

fn get_with(url: &str, key: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    let mut request = agent().get(url);
    if let Some(key) = key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.call().unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response.into_body().read_to_string().unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

#[test]
fn injects_the_key_and_strips_the_clients_credentials() {
    let proxy = Proxy::start(&["--header", "X-Org: org-fixed"]);
    let key = proxy.create_key("alice", &[]);
    let answer = get_with(
        &proxy.url("/v1/echo"),
        Some(&key),
        &[("X-Org", "org-evil"), ("X-Custom", "kept")],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = &proxy.upstream.seen()[0];
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {}", fake_key("one"))
    );
    assert_eq!(
        seen.headers["x-org"], "org-fixed",
        "an injected header replaces the client's"
    );
    assert_eq!(seen.headers["x-custom"], "kept");
    assert!(
        !seen.headers.values().any(|v| v.contains(&key)),
        "the client key never goes upstream"
    );
    assert_eq!(seen.headers["host"], proxy.upstream.addr.to_string());
}

#[test]
fn the_real_key_is_masked_in_answers_headers_and_logs() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("alice", &[]);
    let real = fake_key("one");
    let echo = get(&proxy.url("/v1/echo"), Some(&key));
    assert_eq!(echo.status, 200);
    assert!(!echo.body.contains(&real), "{}", echo.body);
    assert!(echo.body.contains(&"*".repeat(real.len())), "{}", echo.body);
    assert_eq!(
        echo.header("x-echo"),
        Some(format!("Bearer {}", "*".repeat(real.len())).as_str())
    );
    let split = get(&proxy.url("/v1/split"), Some(&key));
    assert_eq!(
        split.body,
        format!("key: Bearer {} end", "*".repeat(real.len())),
        "a key split across chunks"
    );
    proxy
        .upstream
        .accept_only(&["Bearer something-else-entirely".into()]);
    let refused = get(&proxy.url("/v1/echo"), Some(&key));
    assert_eq!(refused.status, 401, "upstream errors pass through");
    assert!(
        refused
            .body
            .contains("Incorrect API key provided: Bearer ****"),
        "{}",
        refused.body
    );
    let log = proxy.log_with(" alice GET /v1/echo 401 ");
    assert!(log.contains(" alice GET /v1/echo 200 "), "{log}");
    assert!(!log.contains(&real) && !log.contains(&key), "{log}");
}

#[test]
fn client_keys_are_hashed_checked_and_revocable() {
    let proxy = Proxy::start(&[]);
    assert_eq!(get(&proxy.url("/v1/echo"), None).status, 401);
    let key = proxy.create_key("alice", &["--rpm", "100"]);
    assert!(key.starts_with("kwp_"), "{key}");
    assert_eq!(
        get(&proxy.url("/v1/echo"), Some(&key)).status,
        200,
        "a key created after start works at once"
    );
    assert_eq!(
        get(&proxy.url("/v1/echo"), Some(&format!("{key}x"))).status,
        401
    );

    let stored = proxy
        .bao
        .ok("GET", "secret/data/keywrap/proxy-keys/alice", None);
    let stored = stored["data"]["data"].to_string();
    assert!(
        !stored.contains(&key) && stored.contains("sha256:"),
        "{stored}"
    );
    let list = proxy.bao.keywrap().args(["proxy", "keys", "list"]).run();
    list.assert_success();
    assert!(
        list.stdout.contains("alice") && list.stdout.contains("100"),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains(&key));

    proxy
        .bao
        .keywrap()
        .args(["proxy", "keys", "revoke", "alice"])
        .run()
        .assert_success();
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&proxy.url("/v1/echo"), Some(&key)).status != 401 {
        assert!(
            Instant::now() < deadline,
            "the revoked key still works after 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let again = proxy
        .bao
        .keywrap()
        .args(["proxy", "keys", "revoke", "alice"])
        .run();
    again
        .assert_code(125)
        .assert_stderr_contains("no client key named \"alice\"");
}

#[test]
fn a_short_key_is_masked_too() {
    let bao = Bao::start();
    let short = format!("sk-{}", "test");
    bao.kv_put("secret/openai", &[("api_key", &short)]);
    let proxy = Proxy::start_with(bao, &["--allow-anonymous"]);
    let echo = get(&proxy.url("/v1/echo"), None);
    assert_eq!(echo.status, 200);
    assert!(!echo.body.contains(&short), "{}", echo.body);
    assert_eq!(echo.header("x-echo"), Some("Bearer *******"));
}

#[test]
fn revocation_takes_effect_within_seconds_between_full_reloads() {
    let proxy = Proxy::start(&["--keys-reload", "60"]);
    let key = proxy.create_key("alice", &[]);
    assert_eq!(get(&proxy.url("/v1/echo"), Some(&key)).status, 200);
    proxy
        .bao
        .keywrap()
        .args(["proxy", "keys", "revoke", "alice"])
        .run()
        .assert_success();
    let revoked = Instant::now();
    while get(&proxy.url("/v1/echo"), Some(&key)).status != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(3),
            "the revoked key still works after 3 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn anonymous_access_only_when_allowed() {
    let proxy = Proxy::start(&["--allow-anonymous", "--access-log", "json"]);
    assert_eq!(
        get(&proxy.url("/v1/echo?api_key=query-secret"), None).status,
        200
    );
    assert_eq!(
        get(&proxy.url("/v1/echo"), Some("kwp_not-a-key")).status,
        401,
        "a bad client key is not anonymous"
    );
    let foreign = get(&proxy.url("/v1/echo"), Some("app-session-token"));
    assert_eq!(
        foreign.status, 200,
        "the app's own Authorization is replaced"
    );
    assert_eq!(
        proxy.upstream.seen().last().unwrap().headers["authorization"],
        format!("Bearer {}", fake_key("one"))
    );
    assert!(proxy.metrics().contains(
        "keywrap_proxy_requests_total{client=\"anonymous\",route=\"/\",status=\"200\"} 2"
    ));
    let log = proxy.log_with("\"status\":401");
    let line = log
        .lines()
        .find(|l| l.contains("\"client\":\"anonymous\""))
        .unwrap();
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["path"], "/v1/echo", "no query string in the log");
    assert_eq!(
        (
            entry["prompt_tokens"].as_u64(),
            entry["completion_tokens"].as_u64()
        ),
        (Some(3), Some(5))
    );
    assert!(!log.contains("query-secret"));
}

#[test]
fn large_uploads_stream_through() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("alice", &[]);
    // 4 MiB without a Content-Length: sent chunked, streamed on, never held whole.
    let upload = std::io::repeat(b'x').take(4 << 20);
    let response = agent()
        .post(&proxy.url("/v1/echo"))
        .header("Authorization", &format!("Bearer {key}"))
        .send(ureq::SendBody::from_owned_reader(upload))
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(proxy.upstream.seen()[0].body_len, 4 << 20);
}

#[test]
fn an_unreachable_upstream_is_a_502_after_retries() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    let port = free_port();
    let closed = free_port();
    let mut process = bao
        .keywrap()
        .args([
            "proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-anonymous",
            "--retries",
            "2",
        ])
        .args([
            "--upstream",
            &format!("http://127.0.0.1:{closed}"),
            "--secret",
            "OPENAI=secret/openai#api_key",
        ])
        .args(["--header", "Authorization: Bearer {OPENAI}"])
        .spawn();
    process.wait_for_port(port);
    let answer = get(&format!("http://127.0.0.1:{port}/v1/models"), None);
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(
        answer.body.contains("could not be reached"),
        "{}",
        answer.body
    );
    assert!(!process.stderr().contains(&fake_key("one")));
}

#[test]
fn errors_pass_through_and_only_idempotent_requests_are_retried_within_the_timeout() {
    let proxy = Proxy::start(&["--allow-anonymous", "--retries", "1", "--timeout", "0.5"]);
    let attempts = |path: &str| {
        proxy
            .upstream
            .seen()
            .iter()
            .filter(|s| s.path == path)
            .count()
    };
    let unavailable = get(&proxy.url("/v1/unavailable"), None);
    assert_eq!(unavailable.status, 503);
    assert!(
        unavailable.body.contains("overloaded"),
        "{}",
        unavailable.body
    );
    assert_eq!(unavailable.header("x-upstream-note"), Some("busy"));
    assert_eq!(attempts("/v1/unavailable"), 2, "a GET is retried once");
    let posted = agent()
        .post(&proxy.url("/v1/unavailable"))
        .send("{}")
        .unwrap();
    assert_eq!(posted.status().as_u16(), 503);
    assert_eq!(attempts("/v1/unavailable"), 3, "a POST is not retried");
    let slow = get(&proxy.url("/v1/slow"), None);
    assert_eq!(slow.status, 504, "{}", slow.body);
    assert_eq!(attempts("/v1/slow"), 2);
}

#[test]
fn route_and_model_allow_lists() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    let upstream = Upstream::start();
    let port = free_port();
    let (process, keywrap) = proxy_from_config(
        &bao,
        port,
        &format!(
            "[env]\nOPENAI = \"secret/openai#api_key\"\n\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[proxy.routes]]\nprefix = \"/openai\"\nupstream = \"{0}\"\nheaders = {{ Authorization = \"Bearer {{OPENAI}}\" }}\n\n\
             [[proxy.routes]]\nprefix = \"/other\"\nupstream = \"{0}/v1\"\nheaders = {{ x-api-key = \"{{secret/openai#api_key}}\" }}\n",
            upstream.url()
        ),
    );
    let dir = keywrap.workdir.path().to_path_buf();
    let run = bao
        .keywrap()
        .current_dir(&dir)
        .args([
            "proxy", "keys", "create", "bob", "--route", "/openai", "--model", "gpt-x",
        ])
        .run();
    run.assert_success();
    let key = run.stdout.trim().to_string();
    let post = |path: &str, model: &str| {
        agent()
            .post(&format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", &format!("Bearer {key}"))
            .header("Content-Type", "application/json")
            .send(format!("{{\"model\":\"{model}\"}}"))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post("/openai/v1/echo", "gpt-x"), 200);
    assert_eq!(post("/openai/v1/echo", "gpt-y"), 403);
    assert_eq!(
        post("/other/echo", "gpt-x"),
        403,
        "route not allowed for this key"
    );
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(upstream.seen()[0].path, "/v1/echo");
    assert_eq!(upstream.seen()[0].body_len, 17);
    let list_models = agent()
        .get(&format!("http://127.0.0.1:{port}/openai/v1/echo"))
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(
        list_models.status().as_u16(),
        200,
        "a request without a body names no model"
    );
    let run = bao
        .keywrap()
        .current_dir(&dir)
        .args(["proxy", "keys", "create", "carol"])
        .args(["--routes", "other,/openai/", "--models", "gpt-y,gpt-z"])
        .args([
            "--requests-per-minute",
            "50",
            "--tokens-per-minute",
            "90000",
        ])
        .run();
    run.assert_success();
    let carol = run.stdout.trim().to_string();
    let post_as = |key: &str, path: &str, model: &str| {
        agent()
            .post(&format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", &format!("Bearer {key}"))
            .send(format!("{{\"model\":\"{model}\"}}"))
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post_as(&carol, "/other/echo", "gpt-z"), 200);
    assert_eq!(
        upstream.seen().last().unwrap().headers["x-api-key"],
        fake_key("one"),
        "a reference right in the header template"
    );
    assert_eq!(post_as(&carol, "/openai/v1/echo", "gpt-y"), 200);
    assert_eq!(post_as(&carol, "/openai/v1/echo", "gpt-x"), 403);
    let list = bao
        .keywrap()
        .current_dir(&dir)
        .args(["proxy", "keys", "list"])
        .run();
    assert!(
        list.stdout.contains("gpt-y,gpt-z") && list.stdout.contains("90000"),
        "{}",
        list.stdout
    );
    drop(process);
}

#[test]
fn event_streams_pass_through_one_event_at_a_time() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("alice", &[]);
    let response = agent()
        .get(&proxy.url("/v1/sse"))
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut line = String::new();
    for n in 0..3 {
        // The upstream sends event n only after event n-1 reached the client: a buffering
        // proxy would stall here until the 10 s timeout.
        if n > 0 {
            proxy.upstream.release();
        }
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, format!("data: {{\"n\":{n}}}\n"));
        reader.read_line(&mut line).unwrap();
    }
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    std::thread::sleep(Duration::from_millis(200));
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("keywrap_proxy_tokens_total{client=\"alice\",kind=\"prompt\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keywrap_proxy_tokens_total{client=\"alice\",kind=\"completion\"} 11"),
        "{metrics}"
    );
}

#[test]
fn an_http_1_0_upstream_still_gets_http_1_1_answers_with_usage_counted() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    let upstream = support::upstream::http10(
        2,
        "data: {\"n\":0}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n\ndata: [DONE]\n\n",
    );
    let port = free_port();
    let metrics_port = free_port();
    let mut process = bao
        .keywrap()
        .args(["proxy", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--upstream",
            &format!("http://{upstream}"),
            "--allow-anonymous",
        ])
        .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .spawn();
    process.wait_for_port(port);
    let agent = agent();
    for _ in 0..2 {
        let response = agent
            .get(&format!("http://127.0.0.1:{port}/v1/chat/completions"))
            .call()
            .unwrap();
        assert_eq!(response.version(), ureq::http::Version::HTTP_11);
        let body = response.into_body().read_to_string().unwrap();
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    }
    std::thread::sleep(Duration::from_millis(100));
    let metrics = get(&format!("http://127.0.0.1:{metrics_port}/metrics"), None).body;
    assert!(
        metrics.contains("keywrap_proxy_tokens_total{client=\"anonymous\",kind=\"completion\"} 12"),
        "{metrics}"
    );
}

#[test]
fn requests_per_minute_hold_under_concurrency() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("busy", &["--rpm", "5"]);
    let url = proxy.url("/v1/echo");
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| get(&url, Some(&key))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((ok, limited.len()), (5, 15));
    let retry: u64 = limited[0].header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(proxy
        .metrics()
        .contains("keywrap_proxy_rate_limited_total{client=\"busy\",limit=\"rpm\"} 15"));
}

#[test]
fn tokens_are_counted_per_client_and_limited() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("tok", &["--tpm", "20"]);
    let other = proxy.create_key("other", &[]);
    let thrifty = proxy.create_key("thrifty", &["--budget", "10"]);
    for _ in 0..3 {
        assert_eq!(get(&proxy.url("/v1/echo"), Some(&key)).status, 200);
    }
    get(&proxy.url("/v1/echo"), Some(&other));
    for _ in 0..2 {
        assert_eq!(get(&proxy.url("/v1/echo"), Some(&thrifty)).status, 200);
    }
    std::thread::sleep(Duration::from_millis(100));
    let spent = get(&proxy.url("/v1/echo"), Some(&thrifty));
    assert_eq!(spent.status, 429, "16 tokens used of a budget of 10");
    assert!(spent.body.contains("budget"), "{}", spent.body);
    let limited = get(&proxy.url("/v1/echo"), Some(&key));
    assert_eq!(limited.status, 429, "24 tokens used of 20 per minute");
    assert!(
        limited.body.contains("tokens-per-minute"),
        "{}",
        limited.body
    );
    assert!(limited.header("retry-after").is_some());
    let metrics = proxy.metrics();
    assert!(
        metrics.contains("keywrap_proxy_tokens_total{client=\"tok\",kind=\"prompt\"} 9"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keywrap_proxy_tokens_total{client=\"tok\",kind=\"completion\"} 15"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keywrap_proxy_tokens_total{client=\"other\",kind=\"completion\"} 5"),
        "{metrics}"
    );
}

#[test]
fn a_spent_budget_stays_spent_across_a_restart() {
    let mut proxy = Proxy::start(&[]);
    let key = proxy.create_key("thrifty", &["--budget", "10"]);
    for _ in 0..2 {
        assert_eq!(get(&proxy.url("/v1/echo"), Some(&key)).status, 200);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(&proxy.url("/v1/echo"), Some(&key)).status, 429);
    proxy.restart(&[]);
    let stored = proxy
        .bao
        .ok("GET", "secret/data/keywrap/proxy-keys/spent/thrifty", None);
    assert_eq!(stored["data"]["data"]["tokens"], 16, "{stored}");
    let after = get(&proxy.url("/v1/echo"), Some(&key));
    assert_eq!(
        after.status, 429,
        "16 tokens of 10 were spent before the restart"
    );
    assert!(after.body.contains("budget"), "{}", after.body);
    let list = proxy.bao.keywrap().args(["proxy", "keys", "list"]).run();
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("thrifty"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().nth(6),
        Some("16"),
        "SPENT column: {line}"
    );
    proxy
        .bao
        .keywrap()
        .args(["proxy", "keys", "revoke", "thrifty"])
        .run()
        .assert_success();
    let (status, _) = proxy
        .bao
        .api("GET", "secret/data/keywrap/proxy-keys/spent/thrifty", None);
    assert_eq!(status, 404, "revoking forgets the spend");
}

#[test]
fn the_usage_endpoint_answers_a_client_about_its_own_key() {
    let proxy = Proxy::start(&["--allow-anonymous"]);
    let key = proxy.create_key("thrifty", &["--budget", "50"]);
    assert_eq!(get(&proxy.url("/v1/echo"), Some(&key)).status, 200);
    let usage = get(&proxy.url("/v1/keywrap/usage"), Some(&key));
    assert_eq!(usage.status, 200, "{}", usage.body);
    let body: serde_json::Value = serde_json::from_str(&usage.body).unwrap();
    assert_eq!(
        (
            body["name"].as_str(),
            body["spent"].as_u64(),
            body["remaining"].as_u64()
        ),
        (Some("thrifty"), Some(8), Some(42))
    );
    assert_eq!(
        get(&proxy.url("/v1/keywrap/usage"), None).status,
        401,
        "no usage without a key, even with anonymous access on"
    );
    assert!(
        proxy
            .upstream
            .seen()
            .iter()
            .all(|s| !s.path.contains("keywrap")),
        "never forwarded"
    );
}

#[test]
fn metrics_name_clients_never_keys() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("alice", &[]);
    get(&proxy.url("/v1/echo"), Some(&key));
    get(&proxy.url("/v1/nothing"), Some(&key));
    get(&proxy.url("/v1/echo"), None);
    std::thread::sleep(Duration::from_millis(100));
    let metrics = proxy.metrics();
    for expected in [
        "keywrap_proxy_requests_total{client=\"alice\",route=\"/\",status=\"200\"} 1",
        "keywrap_proxy_requests_total{client=\"alice\",route=\"/\",status=\"404\"} 1",
        "keywrap_proxy_requests_total{client=\"unauthenticated\",route=\"/\",status=\"401\"} 1",
        "keywrap_proxy_request_duration_seconds_count{route=\"/\"} 3",
        "keywrap_proxy_upstream_duration_seconds_bucket{route=\"/\",le=\"+Inf\"} 2",
        "keywrap_proxy_first_byte_seconds_count{route=\"/\"} 2",
        "# TYPE keywrap_proxy_upstream_errors_total counter",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
    assert!(!metrics.contains(&key) && !metrics.contains(&fake_key("one")));
    let root = get(&format!("http://127.0.0.1:{}/", proxy.metrics_port), None);
    assert!(
        root.body
            .contains("# TYPE keywrap_proxy_requests_total counter"),
        "the metrics address answers at / too: {}",
        root.body
    );
}

#[test]
fn switches_to_a_new_key_version_with_no_failed_request() {
    let proxy = Proxy::start(&["--watch-interval", "0.2"]);
    let key = proxy.create_key("alice", &[]);
    let (one, two) = (
        format!("Bearer {}", fake_key("one")),
        format!("Bearer {}", fake_key("two")),
    );
    proxy.upstream.accept_only(&[one.clone(), two.clone()]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && statuses.len() < 5000 {
                statuses.push(get(&proxy.url("/v1/echo"), Some(&key)).status);
            }
            statuses
        });
        std::thread::sleep(Duration::from_millis(300));
        proxy
            .bao
            .kv_put("secret/openai", &[("api_key", &fake_key("two"))]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !proxy
            .upstream
            .seen()
            .iter()
            .any(|s| s.headers["authorization"] == two)
        {
            assert!(Instant::now() < deadline, "no switch to the new version");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.join().unwrap()
    });
    assert!(statuses.len() > 10, "{}", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let seen = proxy.upstream.seen();
    let last = &seen.last().unwrap().headers["authorization"];
    assert_eq!(last, &two, "new requests use the new key");
    proxy.log_with("switched to secret/openai (version 2)");
    assert!(proxy
        .metrics()
        .contains("keywrap_proxy_key_switches_total 1"));
}

#[test]
fn overlap_retries_once_with_the_previous_key_on_401() {
    let proxy = Proxy::start(&["--watch-interval", "0.2", "--overlap"]);
    let key = proxy.create_key("alice", &[]);
    proxy
        .upstream
        .accept_only(&[format!("Bearer {}", fake_key("one"))]);
    proxy
        .bao
        .kv_put("secret/openai", &[("api_key", &fake_key("bad"))]);
    proxy.log_with("switched to");
    let answer = get(&proxy.url("/v1/echo"), Some(&key));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let seen = proxy.upstream.seen();
    let tried: Vec<&str> = seen[seen.len() - 2..]
        .iter()
        .map(|s| s.headers["authorization"].as_str())
        .collect();
    assert_eq!(
        tried,
        [
            format!("Bearer {}", fake_key("bad")),
            format!("Bearer {}", fake_key("one"))
        ]
    );
    proxy.log_with("previous-key");
}

#[test]
fn an_overlap_in_the_env_entry_holds_across_a_restart() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    // Rotated before the proxy starts: the new key is not active upstream yet.
    bao.kv_put("secret/openai", &[("api_key", &fake_key("two"))]);
    let upstream = Upstream::start();
    upstream.accept_only(&[format!("Bearer {}", fake_key("one"))]);
    let port = free_port();
    let (process, _keywrap) = proxy_from_config(
        &bao,
        port,
        &format!(
            "[env]\nOPENAI = {{ ref = \"secret/openai#api_key\", previous = \"OPENAI_PREVIOUS\", overlap = \"1h\" }}\n\n\
             [proxy]\nlisten = \"localhost:{port}\"\nallow_anonymous = true\nwatch_interval = 0.2\nupstream_timeout = \"30s\"\n\n\
             [[proxy.routes]]\nprefix = \"/openai\"\nupstream = \"{}\"\nheaders = {{ Authorization = \"Bearer {{OPENAI}}\" }}\n",
            upstream.url()
        ),
    );
    let answer = get(&format!("http://127.0.0.1:{port}/openai/v1/echo"), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        !answer.body.contains(&fake_key("one")),
        "the previous key is masked too"
    );
    process.wait_for_stderr("previous-key", 5);
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish() {
    let mut proxy = Proxy::start(&[]);
    let key = proxy.create_key("alice", &[]);
    let response = agent()
        .get(&proxy.url("/v1/sse"))
        .header("Authorization", &format!("Bearer {key}"))
        .call()
        .unwrap();
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let port = proxy.port;
    let pid = proxy.process.child.id();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.upstream.release();
    proxy.upstream.release();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    let status = proxy.process.signal_and_wait("TERM");
    assert!(status.success(), "{status}");
}

#[test]
fn browsers_on_allowed_origins_get_cors_answers() {
    let proxy = Proxy::start(&["--cors-origin", "https://app.example"]);
    let key = proxy.create_key("webapp", &[]);
    let preflight = agent()
        .options(&proxy.url("/v1/echo"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .call()
        .unwrap();
    assert_eq!(
        preflight.status().as_u16(),
        204,
        "answered without a client key"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert!(
        proxy.upstream.seen().is_empty(),
        "preflights stay in the proxy"
    );
    let answer = get_with(
        &proxy.url("/v1/echo"),
        Some(&key),
        &[("Origin", "https://app.example")],
    );
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let refused = get_with(
        &proxy.url("/v1/echo"),
        None,
        &[("Origin", "https://app.example")],
    );
    assert_eq!(refused.status, 401);
    assert!(
        refused.header("access-control-allow-origin").is_some(),
        "errors are readable too"
    );
    let other = get_with(
        &proxy.url("/v1/echo"),
        Some(&key),
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn the_proxy_keeps_a_short_lived_token_alive() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    let created = bao.ok(
        "POST",
        "auth/token/create",
        Some(serde_json::json!({ "ttl": "3s" })),
    );
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let upstream = Upstream::start();
    let port = free_port();
    let mut process = bao
        .keywrap()
        .env("VAULT_TOKEN", &token)
        .args([
            "proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &upstream.url(),
        ])
        .args(["--keys-reload", "0.5"])
        .spawn();
    process.wait_for_port(port);
    std::thread::sleep(Duration::from_secs(5));
    let run = bao
        .keywrap()
        .args(["proxy", "keys", "create", "late"])
        .run();
    run.assert_success();
    let answer = get(
        &format!("http://127.0.0.1:{port}/v1/echo"),
        Some(run.stdout.trim()),
    );
    assert_eq!(
        answer.status,
        200,
        "keys still load after the first TTL: {}",
        process.stderr()
    );
}

#[test]
fn https_upstreams_are_verified_with_the_given_ca() {
    // OpenBao's TLS dev server stands in for an HTTPS upstream.
    let bao = Bao::start_with(support::BaoOptions { tls: true });
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    let ca = bao.ca_cert.clone().unwrap();
    let start = |extra: &[&str]| {
        let port = free_port();
        let mut process = bao
            .keywrap()
            .args([
                "proxy",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--allow-anonymous",
            ])
            .args(["--upstream", &bao.addr, "--retries", "0"])
            .args(extra)
            .spawn();
        process.wait_for_port(port);
        (process, format!("http://127.0.0.1:{port}/v1/sys/health"))
    };
    let (_verified, url) = start(&["--upstream-ca", ca.to_str().unwrap()]);
    let health = get(&url, None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(
        health.body.contains("\"initialized\":true"),
        "{}",
        health.body
    );
    let (untrusted, url) = start(&[]);
    assert_eq!(
        get(&url, None).status,
        502,
        "the system roots do not know the dev CA"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !untrusted.stderr().contains("upstream of route /") {
        assert!(Instant::now() < deadline, "{}", untrusted.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The 8 attacks of issue 13 on "a leaked client key costs at most its limits".
fn post_json(url: &str, key: &str, body: &str) -> Answer {
    let response = agent()
        .post(url)
        .header("Authorization", &format!("Bearer {key}"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response.into_body().read_to_string().unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

#[test]
fn attack_1_streams_are_charged_with_usage_asked_for_or_the_estimate() {
    let proxy = Proxy::start(&["--default-max-tokens", "40"]);
    let key = proxy.create_key("streamer", &["--tpm", "200"]);
    let url = proxy.url("/v1/chat/completions");
    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    let first = post_json(&url, &key, body);
    assert_eq!(first.status, 200, "{}", first.body);
    let seen = proxy.upstream.seen();
    assert!(
        seen[0].body.contains(r#""include_usage":true"#),
        "the proxy asks for usage: {}",
        seen[0].body
    );
    proxy.log_with("tokens=20+30");
    // Streams without a usage chunk (an upstream that ignores the ask) cost the estimate:
    // the key runs out within its limit, not after 30 free streams.
    let mut answered = 1;
    for _ in 0..30 {
        if post_json(&proxy.url("/v1/sse"), &key, body).status != 200 {
            break;
        }
        answered += 1;
    }
    assert!(
        answered < 10,
        "{answered} streams answered on 200 tokens a minute"
    );
}

#[test]
fn attack_2_concurrent_requests_cannot_overspend_a_budget() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("racer", &["--budget", "40"]);
    let url = proxy.url("/v1/echo");
    // Each reserves 28/4 + 20 = 27 tokens and uses 8.
    let body = r#"{"max_tokens":20,"n":1234}"#;
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| post_json(&url, &key, body).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(ok >= 1, "{statuses:?}");
    assert!(
        8 * ok <= 40 + 27,
        "{ok} answered: spend over the budget by more than one reservation"
    );
    let capped = proxy.create_key("capped", &["--concurrency", "2"]);
    let slow = proxy.url("/v1/slow");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5)
            .map(|_| scope.spawn(|| get(&slow, Some(&capped)).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert!(proxy
        .metrics()
        .contains("keywrap_proxy_rate_limited_total{client=\"capped\",limit=\"concurrency\"} 3"));
}

#[test]
fn attack_3_a_malformed_record_does_not_keep_revoked_keys_working() {
    let proxy = Proxy::start(&[]);
    let alice = proxy.create_key("alice", &[]);
    let bob = proxy.create_key("bob", &[]);
    assert_eq!(get(&proxy.url("/v1/echo"), Some(&alice)).status, 200);
    proxy.bao.kv_put(
        "secret/keywrap/proxy-keys/broken",
        &[("hash", "not-a-hash"), ("rpm", "many")],
    );
    proxy
        .bao
        .keywrap()
        .args(["proxy", "keys", "revoke", "alice"])
        .run()
        .assert_success();
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&proxy.url("/v1/echo"), Some(&alice)).status != 401 {
        assert!(Instant::now() < deadline, "the revoked key still works");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&proxy.url("/v1/echo"), Some(&bob)).status, 200);
    proxy.log_with("client key record broken at secret/keywrap/proxy-keys/broken is malformed");
    let list = proxy.bao.keywrap().args(["proxy", "keys", "list"]).run();
    list.assert_success();
    assert!(
        list.stdout.contains("broken") && list.stdout.contains("BAD"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("bob"), "{}", list.stdout);
}

#[test]
fn attack_4_dot_segments_do_not_leave_a_route() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", &fake_key("one"))]);
    let upstream = Upstream::start();
    let port = free_port();
    let (_process, _keywrap) = proxy_from_config(
        &bao,
        port,
        &format!(
            "[env]\nOPENAI = \"secret/openai#api_key\"\n\n[proxy]\nlisten = \"127.0.0.1:{port}\"\nallow_anonymous = true\n\n\
             [[proxy.routes]]\nprefix = \"/a\"\nupstream = \"{0}/v1\"\nheaders = {{ Authorization = \"Bearer {{OPENAI}}\" }}\n\n\
             [[proxy.routes]]\nprefix = \"/tenant-b\"\nupstream = \"{0}/v1\"\n",
            upstream.url()
        ),
    );
    let status = |path: &str| get(&format!("http://127.0.0.1:{port}{path}"), None).status;
    for escape in [
        "/a/../tenant-b/echo",
        "/a/%2e%2e/tenant-b/echo",
        "/a/%2E%2E/tenant-b/echo",
        "/a/..%2ftenant-b/echo",
        "/a/..%2Ftenant-b/echo",
        "/a/../../echo",
    ] {
        assert_eq!(status(escape), 400, "{escape}");
    }
    assert_eq!(
        status("/a/x/../echo"),
        200,
        "a dot segment inside the route"
    );
    assert_eq!(upstream.seen().len(), 1);
    assert_eq!(upstream.seen()[0].path, "/v1/echo");
}

#[test]
fn attack_5_encoded_and_compressed_keys_do_not_pass() {
    let proxy = Proxy::start(&[]);
    let key = proxy.create_key("alice", &[]);
    let real = fake_key("one");
    let mangled = get(&proxy.url("/v1/mangled"), Some(&key));
    assert_eq!(mangled.status, 200);
    let body = mangled.body.to_lowercase();
    use base64::Engine;
    for form in [
        real.to_lowercase(),
        base64::engine::general_purpose::STANDARD
            .encode(&real)
            .to_lowercase(),
        "sk\\u002dfake".to_string(),
    ] {
        assert!(!body.contains(&form), "{form} in {}", mangled.body);
    }
    let gzip = get(&proxy.url("/v1/gzip"), Some(&key));
    assert_eq!(gzip.status, 502, "{}", gzip.body);
    assert!(!gzip.body.contains(&real));
}

#[test]
fn attack_6_idle_connections_are_capped_and_closed() {
    let proxy = Proxy::start(&[
        "--allow-anonymous",
        "--max-connections-per-address",
        "50",
        "--first-byte-timeout",
        "1",
    ]);
    let port = proxy.port;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let idle = runtime.block_on(async {
        let mut idle = Vec::new();
        for _ in 0..200 {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            if let Ok(stream) = socket.connect(([127, 0, 0, 1], port).into()).await {
                idle.push(stream);
            }
        }
        idle
    });
    assert_eq!(
        get(&proxy.url("/v1/echo"), None).status,
        200,
        "another address still gets in"
    );
    // Every idle connection is closed: at once beyond the cap, after 1 s within it.
    runtime.block_on(async {
        for mut stream in idle {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read(&mut stream, &mut byte),
            )
            .await;
            assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        }
    });
    let log = proxy.log_with("max_connections_per_address");
    assert_eq!(
        log.matches("max_connections_per_address").count(),
        1,
        "the warning is rate-limited: {log}"
    );
}

#[test]
fn attack_7_unknown_keys_do_not_reload_every_record() {
    let proxy = Proxy::start(&["--keys-reload", "60"]);
    let key = proxy.create_key("alice", &[]);
    assert_eq!(get(&proxy.url("/v1/echo"), Some(&key)).status, 200);
    let before = proxy
        .bao
        .audit_reads_of("secret/data/keywrap/proxy-keys/alice")
        .len();
    for n in 0..3 {
        let random = format!("kwp_{}", format!("{n:x}").repeat(43).get(..43).unwrap());
        assert_eq!(get(&proxy.url("/v1/echo"), Some(&random)).status, 401);
    }
    let reads = proxy
        .bao
        .audit_reads_of("secret/data/keywrap/proxy-keys/alice")
        .len();
    assert_eq!(reads, before, "known records are not read again on a miss");
}

#[test]
fn attack_8_billing_headers_and_foreign_hosts_are_refused() {
    let proxy = Proxy::start(&["--allow-anonymous"]);
    let key = proxy.create_key("alice", &[]);
    let answer = get_with(
        &proxy.url("/v1/echo"),
        Some(&key),
        &[
            ("OpenAI-Organization", "org-evil"),
            ("OpenAI-Project", "proj-evil"),
        ],
    );
    assert_eq!(answer.status, 200);
    let seen = &proxy.upstream.seen()[0];
    assert!(
        !seen.headers.contains_key("openai-organization"),
        "{:?}",
        seen.headers
    );
    assert!(!seen.headers.contains_key("openai-project"));
    let rebound = get_with(
        &proxy.url("/v1/echo"),
        None,
        &[("Host", &format!("evil.example:{}", proxy.port))],
    );
    assert_eq!(rebound.status, 421, "{}", rebound.body);
    let localhost = get_with(
        &proxy.url("/v1/echo"),
        None,
        &[("Host", &format!("localhost:{}", proxy.port))],
    );
    assert_eq!(localhost.status, 200);
    let csrf = get_with(
        &proxy.url("/v1/echo"),
        None,
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(csrf.status, 403, "{}", csrf.body);
    assert_eq!(proxy.upstream.seen().len(), 2);
}
