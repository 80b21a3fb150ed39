//! Logging in the way CI runners and workstations do, against a real OpenBao server:
//! AppRole (wrapped secret IDs too), JWT with keys the test generates, GitHub Actions and
//! GitLab CI flows, token revocation and renewal, per-run tokens, `policy` and `check`.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::jwt::{now, JwtIssuer};
use support::stub::Stub;
use support::{Bao, Keywrap, Run, ROOT_TOKEN};

const READ_OPENAI: &str = "path \"secret/data/openai\" { capabilities = [\"read\"] }";

/// A server with secret/openai and a policy that reads it.
fn seeded() -> Bao {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-openai-login-test")]);
    bao.write_policy("read-openai", READ_OPENAI);
    bao
}

/// keywrap without a token, reaching `bao`.
fn without_token(bao: &Bao) -> Keywrap {
    let mut keywrap = Keywrap::new();
    keywrap.env("VAULT_ADDR", &bao.addr);
    keywrap
}

/// Runs exec printing OPENAI_API_KEY and the listed variables (or "NAME unset").
fn exec_printing(keywrap: &mut Keywrap, others: &[&str]) -> Run {
    let mut script = String::from("printf 'key=%s\\n' \"$K\";");
    for name in others {
        script.push_str(&format!(
            " if [ -n \"${{{name}+x}}\" ]; then echo '{name} set'; else echo '{name} unset'; fi;"
        ));
    }
    keywrap
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--no-mask",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .run()
}

/// Audit responses for `path` made with an AppRole login token (the dev server's own
/// start-up requests are made with the root token).
fn responses_by_approle(bao: &Bao, path: &str) -> Vec<serde_json::Value> {
    bao.audit_entries()
        .into_iter()
        .filter(|e| {
            e["type"] == "response"
                && e["request"]["path"] == path
                && e["auth"]["display_name"] == "approle"
        })
        .collect()
}

fn enable_approle(bao: &Bao, ttl: &str) -> (String, String) {
    bao.approle(
        "ci",
        json!({ "token_policies": ["read-openai"], "token_ttl": ttl, "token_max_ttl": "10m" }),
    )
}

#[test]
fn approle_from_variables_logs_in_strips_the_material_and_revokes_the_token() {
    let bao = seeded();
    let (role_id, secret_id) = enable_approle(&bao, "5m");
    let before = bao.accessors();
    let run = exec_printing(
        without_token(&bao)
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID", &secret_id)
            .arg("-v"),
        &["VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_TOKEN"],
    );
    run.assert_success().assert_stderr_contains("auth: approle");
    assert_eq!(
        run.stdout,
        "key=fake-openai-login-test\nVAULT_ROLE_ID unset\nVAULT_SECRET_ID unset\nVAULT_TOKEN unset\n"
    );
    let created: BTreeSet<String> = bao.accessors().difference(&before).cloned().collect();
    assert!(
        created.is_empty(),
        "the login token outlived the run: {created:?}"
    );
    let logins = bao
        .audit_entries()
        .into_iter()
        .filter(|e| e["type"] == "response" && e["request"]["path"] == "auth/approle/login")
        .count();
    assert_eq!(logins, 1);
    let revokes = responses_by_approle(&bao, "auth/token/revoke-self");
    assert_eq!(revokes.len(), 1, "{revokes:#?}");
    assert!(!std::fs::read_dir(without_token(&bao).home.path())
        .unwrap()
        .any(|_| true));
}

#[test]
fn approle_from_files_and_a_wrapped_secret_id() {
    let bao = seeded();
    let (role_id, _) = enable_approle(&bao, "5m");
    let wrapped = {
        let (status, answer) = {
            let agent_answer = std::process::Command::new(support::bao_binary())
                .args([
                    "write",
                    "-wrap-ttl=60s",
                    "-f",
                    "-format=json",
                    "auth/approle/role/ci/secret-id",
                ])
                .env("VAULT_ADDR", &bao.addr)
                .env("VAULT_TOKEN", ROOT_TOKEN)
                .env("HOME", bao.dir.path())
                .output()
                .unwrap();
            (agent_answer.status, agent_answer.stdout)
        };
        assert!(status.success());
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        answer["wrap_info"]["token"].as_str().unwrap().to_string()
    };
    let mut keywrap = without_token(&bao);
    let role_file = keywrap.write_file("role-id", &role_id);
    let secret_file = keywrap.write_file("secret-id", &wrapped);
    let run = exec_printing(
        keywrap
            .args(["--role-id-file"])
            .arg(&role_file)
            .args(["--secret-id-file"])
            .arg(&secret_file),
        &[],
    );
    run.assert_success();
    assert_eq!(run.stdout, "key=fake-openai-login-test\n");

    // A wrapping token works once: a second use is refused with a clear reason.
    let mut keywrap = without_token(&bao);
    let run = keywrap
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &wrapped)
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("could not be unwrapped");
    assert!(!run.stderr.contains(&wrapped));
}

#[test]
fn approle_bad_input_is_one_clear_line() {
    let bao = seeded();
    let (role_id, _) = enable_approle(&bao, "5m");
    let run = without_token(&bao)
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", "00000000-0000-0000-0000-000000000000")
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("approle login at auth/approle failed")
        .assert_stderr_contains("invalid role or secret ID");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    let run = without_token(&bao)
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", "00000000-0000-0000-0000-000000000000")
        .args([
            "--auth-mount",
            "no-such-mount",
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--no-mask",
            "--",
            "true",
        ])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("auth/no-such-mount")
        .assert_stderr_contains("no approle auth method is mounted at auth/no-such-mount");

    let run = without_token(&bao)
        .args([
            "--auth-method",
            "approle",
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--no-mask",
            "--",
            "true",
        ])
        .run();
    run.assert_code(125).assert_stderr_contains("no role ID");
}

/// Enables jwt auth trusting `issuer`'s key, with a role bound to an audience and a claim.
fn enable_jwt(bao: &Bao, issuer: &JwtIssuer, mount: &str) {
    bao.ok(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({ "type": "jwt" })),
    );
    bao.ok(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({ "jwt_validation_pubkeys": [issuer.public_key_pem()] })),
    );
    bao.ok(
        "POST",
        &format!("auth/{mount}/role/ci"),
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["https://vault.example.test"],
            "bound_claims": { "repository": "acme/app" },
            "token_policies": ["read-openai"],
            "token_ttl": "5m",
        })),
    );
}

fn claims(audience: &str, repository: &str, expires_in: i64) -> serde_json::Value {
    let now = now() as i64;
    json!({
        "iss": "https://ci.example.test",
        "sub": "repo:acme/app:ref:refs/heads/main",
        "aud": audience,
        "repository": repository,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + expires_in,
    })
}

#[test]
fn jwt_from_a_file_with_claims_audience_and_expiry() {
    let bao = seeded();
    let issuer = JwtIssuer::new();
    enable_jwt(&bao, &issuer, "jwt");
    let mut keywrap = without_token(&bao);
    keywrap.write_file("keywrap.toml", "[auth]\nmethod = \"jwt\"\nrole = \"ci\"\n");
    let good = keywrap.write_file(
        "good.jwt",
        &issuer.sign(&claims("https://vault.example.test", "acme/app", 300)),
    );
    let run = exec_printing(keywrap.args(["--jwt-file"]).arg(&good), &[]);
    run.assert_success();
    assert_eq!(run.stdout, "key=fake-openai-login-test\n");

    let cases = [
        (claims("https://other.example.test", "acme/app", 300), "aud"),
        (
            claims("https://vault.example.test", "evil/app", 300),
            "repository",
        ),
        (
            claims("https://vault.example.test", "acme/app", -120),
            "expired",
        ),
    ];
    for (claims, reason) in cases {
        let mut keywrap = without_token(&bao);
        keywrap.write_file("keywrap.toml", "[auth]\nmethod = \"jwt\"\nrole = \"ci\"\n");
        let file = keywrap.write_file("bad.jwt", &issuer.sign(&claims));
        let run = keywrap
            .args(["--jwt-file"])
            .arg(&file)
            .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
            .run();
        run.assert_code(125)
            .assert_stderr_contains("jwt login at auth/jwt failed")
            .assert_stderr_contains(reason);
    }

    let run = without_token(&bao)
        .args([
            "--auth-method",
            "jwt",
            "--auth-role",
            "ci",
            "--jwt-file",
            "/nonexistent/token.jwt",
        ])
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("jwt login: cannot read the JWT file /nonexistent/token.jwt");
}

#[test]
fn github_actions_oidc_flow() {
    let bao = seeded();
    let issuer = std::sync::Arc::new(JwtIssuer::new());
    enable_jwt(&bao, &issuer, "github");
    let minting = issuer.clone();
    let service = Stub::start(move |request| {
        if request.header("authorization") != Some("Bearer fake-request-token") {
            return (401, "{}".into());
        }
        let audience = request
            .target
            .split("audience=")
            .nth(1)
            .map(|a| a.replace("%3A", ":").replace("%2F", "/"))
            .unwrap_or_else(|| "https://github.com/acme".into());
        let jwt = minting.sign(&claims(&audience, "acme/app", 300));
        (200, json!({ "count": 1, "value": jwt }).to_string())
    });
    let mut keywrap = without_token(&bao);
    keywrap.write_file(
        "keywrap.toml",
        "[auth]\nrole = \"ci\"\nmount = \"github\"\naudience = \"https://vault.example.test\"\n",
    );
    let run = exec_printing(
        keywrap
            .env("GITHUB_ACTIONS", "true")
            .env(
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/token?api-version=2.0", service.url),
            )
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "fake-request-token")
            .arg("-v"),
        &[
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "ACTIONS_ID_TOKEN_REQUEST_URL",
        ],
    );
    run.assert_success()
        .assert_stderr_contains("GitHub Actions");
    assert_eq!(
        run.stdout,
        "key=fake-openai-login-test\nACTIONS_ID_TOKEN_REQUEST_TOKEN unset\nACTIONS_ID_TOKEN_REQUEST_URL unset\n"
    );
    let requests = service.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0]
            .target
            .contains("audience=https%3A%2F%2Fvault.example.test"),
        "{:?}",
        requests[0]
    );

    // The job lacks `permissions: id-token: write`: the runner sets no request variables.
    let mut keywrap = without_token(&bao);
    keywrap.write_file(
        "keywrap.toml",
        "[auth]\nmethod = \"jwt\"\nrole = \"ci\"\nmount = \"github\"\n",
    );
    let run = keywrap
        .env("GITHUB_ACTIONS", "true")
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("id-token: write");
}

#[test]
fn gitlab_ci_id_token() {
    let bao = seeded();
    let issuer = JwtIssuer::new();
    enable_jwt(&bao, &issuer, "gitlab");
    let jwt = issuer.sign(&claims("https://vault.example.test", "acme/app", 300));
    let mut keywrap = without_token(&bao);
    keywrap.write_file(
        "keywrap.toml",
        "[auth]\nrole = \"ci\"\nmount = \"gitlab\"\n",
    );
    let run = exec_printing(
        keywrap.env("GITLAB_CI", "true").env("VAULT_ID_TOKEN", &jwt),
        &["VAULT_ID_TOKEN"],
    );
    run.assert_success();
    assert_eq!(
        run.stdout,
        "key=fake-openai-login-test\nVAULT_ID_TOKEN unset\n"
    );

    let mut keywrap = without_token(&bao);
    keywrap.write_file(
        "keywrap.toml",
        "[auth]\nmethod = \"jwt\"\nrole = \"ci\"\nmount = \"gitlab\"\njwt_env = \"MY_ID_TOKEN\"\n",
    );
    keywrap.trust(keywrap.workdir.path().join("keywrap.toml"));
    let run = keywrap
        .env("GITLAB_CI", "true")
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("MY_ID_TOKEN")
        .assert_stderr_contains("id_tokens");
}

#[test]
fn jwt_without_a_role_uses_the_mounts_default_role() {
    let bao = seeded();
    let issuer = JwtIssuer::new();
    enable_jwt(&bao, &issuer, "jwt");
    let jwt = issuer.sign(&claims("https://vault.example.test", "acme/app", 300));
    let run = without_token(&bao)
        .env("VAULT_ID_TOKEN", &jwt)
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--",
            "echo",
            "started",
        ])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("jwt login at auth/jwt failed")
        .assert_stderr_contains("missing role")
        .assert_stderr_contains("--auth-role");
    assert_eq!(run.stdout, "");

    bao.ok(
        "POST",
        "auth/jwt/config",
        Some(json!({ "jwt_validation_pubkeys": [issuer.public_key_pem()], "default_role": "ci" })),
    );
    let run = exec_printing(
        without_token(&bao).env("VAULT_ID_TOKEN", &jwt).arg("-v"),
        &["VAULT_ID_TOKEN"],
    );
    run.assert_success()
        .assert_stderr_contains("auth: jwt (GitLab CI id token VAULT_ID_TOKEN)");
    assert_eq!(
        run.stdout,
        "key=fake-openai-login-test\nVAULT_ID_TOKEN unset\n"
    );
}

#[test]
fn a_missing_ci_variable_is_named_even_with_no_method_configured() {
    let bao = seeded();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("GITHUB_ACTIONS", "true")],
            "jwt login: GitHub Actions offers no OIDC token: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set",
        ),
        (
            &[("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:9/token")],
            "jwt login: GitHub Actions variable ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set",
        ),
        (
            &[("GITLAB_CI", "true")],
            "jwt login: GitLab CI id token VAULT_ID_TOKEN is not set",
        ),
    ];
    for (variables, error) in cases {
        let mut keywrap = without_token(&bao);
        keywrap.write_file("keywrap.toml", "[auth]\nrole = \"ci\"\n");
        for (name, value) in variables {
            keywrap.env(name, value);
        }
        login_fails_before_the_child_starts(keywrap, error);
    }
}

/// Runs `exec` with `keywrap`'s login settings and checks the failure: status 125, one
/// line on stderr containing `error`, the child not started, nothing written to HOME.
fn login_fails_before_the_child_starts(mut keywrap: Keywrap, error: &str) {
    let run = keywrap
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--",
            "echo",
            "started",
        ])
        .run();
    run.assert_code(125).assert_stderr_contains(error);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(run.stdout, "", "the child must not start");
    assert!(std::fs::read_dir(keywrap.home.path())
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn every_vault_credential_and_the_configured_jwt_variable_are_kept_from_the_child() {
    let bao = seeded();
    let token = bao.token_with(&["read-openai", "default"]);
    let mut keywrap = without_token(&bao);
    keywrap.write_file("keywrap.toml", "[auth]\njwt_env = \"MY_CI_JWT\"\n");
    let run = exec_printing(
        keywrap
            .env("VAULT_TOKEN", &token)
            .env("VAULT_ID_TOKEN", "fake-id-token")
            .env("BAO_WRAPPED_SECRET_ID", "fake-wrapped")
            .env("BAO_JWT", "fake-jwt")
            .env("MY_CI_JWT", "fake-ci-jwt")
            .arg("--auth-method=token"),
        &[
            "VAULT_ID_TOKEN",
            "BAO_WRAPPED_SECRET_ID",
            "BAO_JWT",
            "MY_CI_JWT",
            "VAULT_ADDR",
        ],
    );
    run.assert_success();
    assert_eq!(
        run.stdout,
        "key=fake-openai-login-test\nVAULT_ID_TOKEN unset\nBAO_WRAPPED_SECRET_ID unset\nBAO_JWT unset\nMY_CI_JWT unset\nVAULT_ADDR set\n"
    );
}

#[test]
fn says_when_the_login_token_cannot_be_renewed() {
    let bao = seeded();
    // A batch token is never renewable; a service token stops at its max TTL.
    for (role, settings, warning) in [
        (
            "batch",
            json!({ "token_policies": ["read-openai"], "token_type": "batch", "token_ttl": "2s" }),
            "cannot renew the Vault token keywrap logged in with: it is not renewable",
        ),
        (
            "capped",
            json!({ "token_policies": ["read-openai"], "token_ttl": "3s", "token_max_ttl": "3s" }),
            "reaches its max TTL",
        ),
    ] {
        let (role_id, secret_id) = bao.approle(role, settings);
        let run = without_token(&bao)
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID", &secret_id)
            .args([
                "exec",
                "-s",
                "K=secret/openai#api_key",
                "--",
                "sleep",
                "2.5",
            ])
            .run();
        run.assert_success().assert_stderr_contains(warning);
        assert!(
            !run.stderr.contains("could not revoke"),
            "an expired token needs no revoking: {}",
            run.stderr
        );
    }
}

#[test]
fn renews_the_login_token_while_a_long_child_runs() {
    let bao = seeded();
    // A 1 s TTL, the shortest Vault grants: renewed well before each expiry.
    let (role_id, secret_id) = enable_approle(&bao, "1s");
    let run = without_token(&bao)
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &secret_id)
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "sleep", "3"])
        .run();
    run.assert_success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let renewals = responses_by_approle(&bao, "auth/token/renew-self");
    assert!(renewals.len() >= 2, "renewals: {}", renewals.len());
    assert!(
        renewals.iter().all(|r| r["error"].is_null()),
        "{renewals:#?}"
    );
    // The token outlived its first 1 s TTL, so revoking it at the end still succeeded.
    let revokes = responses_by_approle(&bao, "auth/token/revoke-self");
    assert_eq!(revokes.len(), 1);
    assert!(revokes[0]["error"].is_null(), "{:#?}", revokes[0]);
}

#[test]
fn a_supplied_token_is_never_revoked() {
    let bao = seeded();
    let token = bao.token_with(&["read-openai", "default"]);
    without_token(&bao)
        .env("VAULT_TOKEN", &token)
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run()
        .assert_success();
    assert!(bao.token_valid(&token));
}

#[test]
fn the_token_file_is_read_never_written_nor_revoked() {
    let bao = seeded();
    let token = bao.token_with(&["read-openai", "default"]);
    let mut keywrap = without_token(&bao);
    let file = keywrap.home.path().join(".vault-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let run = exec_printing(keywrap.arg("-v"), &[]);
    run.assert_success()
        .assert_stderr_contains("auth: token (~/.vault-token)");
    assert_eq!(run.stdout, "key=fake-openai-login-test\n");
    assert!(bao.token_valid(&token));

    // Logging in with AppRole (before the token file in the order) leaves the file alone.
    let (role_id, secret_id) = enable_approle(&bao, "5m");
    let mut keywrap = without_token(&bao);
    let file = keywrap.home.path().join(".vault-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let run = exec_printing(
        keywrap
            .env("VAULT_ROLE_ID", &role_id)
            .env("VAULT_SECRET_ID", &secret_id)
            .arg("-v"),
        &[],
    );
    run.assert_success().assert_stderr_contains("auth: approle");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{token}\n")
    );
    assert!(bao.token_valid(&token));
}

#[test]
fn missing_login_files_name_the_method_and_the_file() {
    let bao = seeded();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--auth-method", "token"],
            "token login: no token: VAULT_TOKEN and BAO_TOKEN are not set and the token file",
        ),
        (
            &[
                "--role-id-file",
                "/nonexistent/role-id",
                "--secret-id-file",
                "/nonexistent/secret-id",
            ],
            "approle login: cannot read the role ID file /nonexistent/role-id",
        ),
        (
            &["--auth-method", "jwt", "--jwt-file", "/nonexistent/ci.jwt"],
            "jwt login: cannot read the JWT file /nonexistent/ci.jwt",
        ),
    ];
    for (flags, error) in cases {
        let mut keywrap = without_token(&bao);
        keywrap.args(flags);
        login_fails_before_the_child_starts(keywrap, error);
    }
}

#[test]
fn per_run_tokens_carry_metadata_and_are_revoked() {
    let bao = seeded();
    let before = bao.accessors();
    let run = bao
        .keywrap()
        .env("GITLAB_CI", "true")
        .env("CI_JOB_ID", "31337")
        .args([
            "exec",
            "--per-run-token",
            "-s",
            "K=secret/openai#api_key",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "printf %s \"$K\"",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-openai-login-test");
    let reads = bao.audit_reads_of("secret/data/openai");
    assert_eq!(reads.len(), 1);
    let auth = &reads[0]["auth"];
    assert_eq!(auth["metadata"]["keywrap_command"], "sh", "{auth:#}");
    assert_eq!(auth["metadata"]["keywrap_ci"], "gitlab-ci job=31337");
    assert!(auth["metadata"]["keywrap_host"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    assert!(auth["metadata"]["keywrap_user"]
        .as_str()
        .is_some_and(|u| !u.is_empty()));
    assert_eq!(auth["display_name"], "token-keywrap-sh");
    assert!(auth["policies"].as_array().is_some());
    let left: BTreeSet<String> = bao.accessors().difference(&before).cloned().collect();
    assert!(left.is_empty(), "the per-run token outlived the run");

    // Without the capability to create tokens, the error says which one is missing.
    let token = bao.token_with(&["read-openai"]);
    let run = without_token(&bao)
        .env("VAULT_TOKEN", &token)
        .args([
            "exec",
            "--per-run-token",
            "-s",
            "K=secret/openai#api_key",
            "--no-mask",
            "--",
            "true",
        ])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("auth/token/create");
}

#[test]
fn policy_output_grants_exactly_the_referenced_reads() {
    let bao = Bao::start();
    bao.kv_put("secret/openai", &[("api_key", "fake-openai-policy")]);
    bao.kv_put("secret/other", &[("api_key", "fake-other-policy")]);
    bao.enable_kv("kv1", 1);
    bao.kv1_put("kv1/db", &[("password", "fake-db-policy")]);
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nOPENAI = \"secret/openai#api_key\"\nDB = \"kv1/db#password\"\n",
    );
    let run = keywrap.args(["policy"]).run();
    run.assert_success();
    assert!(
        run.stdout.contains("path \"secret/data/openai\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("path \"kv1/db\""), "{}", run.stdout);
    let paths: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("path "))
        .collect();
    assert_eq!(
        paths,
        ["path \"kv1/db\" {", "path \"secret/data/openai\" {"],
        "exactly the referenced paths:\n{}",
        run.stdout
    );
    bao.write_policy("generated", &run.stdout);
    let token = bao.token_with(&["generated"]);

    let mut allowed = without_token(&bao);
    allowed.write_file(
        "keywrap.toml",
        "[env]\nOPENAI = \"secret/openai#api_key\"\nDB = \"kv1/db#password\"\n",
    );
    let run = allowed
        .env("VAULT_TOKEN", &token)
        .args([
            "exec",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "printf '%s %s' \"$OPENAI\" \"$DB\"",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-openai-policy fake-db-policy");

    let run = without_token(&bao)
        .env("VAULT_TOKEN", &token)
        .args(["exec", "-s", "X=secret/other#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("permission denied");

    // The CI set-up: a role whose tokens get the generated policy (and Vault's default one,
    // through which keywrap renews and revokes its login token).
    let (role_id, secret_id) = bao.approle("ci", json!({ "token_policies": ["generated"] }));
    let mut ci = without_token(&bao);
    ci.write_file(
        "keywrap.toml",
        "[env]\nOPENAI = \"secret/openai#api_key\"\n",
    );
    let run = ci
        .env("VAULT_ROLE_ID", &role_id)
        .env("VAULT_SECRET_ID", &secret_id)
        .args([
            "exec",
            "--no-mask",
            "--",
            "sh",
            "-c",
            "printf %s \"$OPENAI\"",
        ])
        .run();
    run.assert_success();
    assert_eq!(run.stdout, "fake-openai-policy");
    assert!(!run.stderr.contains("could not revoke"), "{}", run.stderr);
}

#[test]
fn check_verifies_every_reference_without_printing_values() {
    let bao = seeded();
    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nOPENAI = \"secret/openai#api_key\"\n",
    );
    let run = keywrap.args(["check"]).run();
    run.assert_success();
    assert!(
        run.stdout
            .contains("ok    OPENAI (secret/openai#api_key) version 1"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("fake-openai-login-test"));

    let mut keywrap = bao.keywrap();
    keywrap.write_file(
        "keywrap.toml",
        "[env]\nOPENAI = \"secret/openai#api_key\"\nGONE = \"secret/gone#x\"\nTYPO = \"secret/openai#apikey\"\n",
    );
    let run = keywrap.args(["check"]).run();
    run.assert_code(1);
    assert!(
        run.stdout.contains("FAIL  GONE (secret/gone#x)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("FAIL  TYPO (secret/openai#apikey)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("ok    OPENAI"));
    assert!(!run.stdout.contains("fake-openai-login-test"));
    run.assert_stderr_contains(
        "2 of 3 references cannot be read: GONE (secret/gone#x), TYPO (secret/openai#apikey)",
    );
}

#[test]
fn kubernetes_service_account_login() {
    let bao = seeded();
    let issuer = JwtIssuer::new();
    // A projected service-account token as the kubelet mounts it.
    let sa_token = issuer.sign(&json!({
        "iss": "https://kubernetes.default.svc",
        "sub": "system:serviceaccount:apps:web",
        "aud": ["https://kubernetes.default.svc"],
        "exp": now() + 300,
        "iat": now() - 10,
        "kubernetes.io": {
            "namespace": "apps",
            "serviceaccount": { "name": "web", "uid": "0b7a1c2e-0000-4000-8000-00000000a11c" }
        }
    }));
    // The Kubernetes API's TokenReview endpoint, which Vault calls to validate the token.
    let reviewed = sa_token.clone();
    let api = Stub::start(move |request| {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let authenticated = body["spec"]["token"] == reviewed.as_str();
        (
            201,
            json!({
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "status": {
                    "authenticated": authenticated,
                    "audiences": body["spec"]["audiences"],
                    "user": {
                        "username": "system:serviceaccount:apps:web",
                        "uid": "0b7a1c2e-0000-4000-8000-00000000a11c",
                        "groups": ["system:serviceaccounts"]
                    }
                }
            })
            .to_string(),
        )
    });
    bao.ok(
        "POST",
        "sys/auth/kubernetes",
        Some(json!({ "type": "kubernetes" })),
    );
    bao.ok(
        "POST",
        "auth/kubernetes/config",
        Some(json!({
            "kubernetes_host": api.url,
            "disable_local_ca_jwt": true,
            // Required by OpenBao; unused for the stand-in's plain-HTTP address.
            "kubernetes_ca_cert": any_ca_certificate(),
        })),
    );
    bao.ok(
        "POST",
        "auth/kubernetes/role/web",
        Some(json!({
            "bound_service_account_names": ["web"],
            "bound_service_account_namespaces": ["apps"],
            "token_policies": ["read-openai"],
            "token_ttl": "5m",
        })),
    );
    let mut keywrap = without_token(&bao);
    let token_file = keywrap.write_file("serviceaccount/token", &sa_token);
    keywrap.write_file(
        "keywrap.toml",
        &format!(
            "[auth]\nrole = \"web\"\ntoken_file = \"{}\"\n",
            token_file.display()
        ),
    );
    keywrap.trust(keywrap.workdir.path().join("keywrap.toml"));
    let run = exec_printing(keywrap.arg("-v"), &[]);
    run.assert_success()
        .assert_stderr_contains("auth: kubernetes");
    assert_eq!(run.stdout, "key=fake-openai-login-test\n");
    assert_eq!(api.requests().len(), 1, "Vault reviewed the token once");
    let sent: serde_json::Value = serde_json::from_slice(&api.requests()[0].body).unwrap();
    assert_eq!(
        sent["spec"]["token"],
        sa_token.as_str(),
        "keywrap sent the file's token"
    );

    // A token the Kubernetes API does not confirm: refused at a mount that exists, which the
    // error says (unlike a mount that does not exist, below).
    let other = issuer.sign(&json!({
        "iss": "https://kubernetes.default.svc",
        "sub": "system:serviceaccount:apps:web",
        "aud": ["https://kubernetes.default.svc"],
        "exp": now() + 300,
        "iat": now() - 5,
        "kubernetes.io": { "namespace": "apps", "serviceaccount": { "name": "web", "uid": "0b7a1c2e-0000-4000-8000-00000000a11c" } }
    }));
    let mut keywrap = without_token(&bao);
    let other_file = keywrap.write_file("other/token", &other);
    let run = keywrap
        .args(["--auth-role", "web", "--kubernetes-token-file"])
        .arg(&other_file)
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--",
            "echo",
            "started",
        ])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("kubernetes login at auth/kubernetes failed: permission denied")
        .assert_stderr_contains("did not confirm the service-account token");
    assert_eq!(run.stdout, "");
    let mut keywrap = without_token(&bao);
    let run = keywrap
        .args([
            "--auth-role",
            "web",
            "--auth-mount",
            "k8s",
            "--kubernetes-token-file",
        ])
        .arg(&token_file)
        .args([
            "exec",
            "-s",
            "K=secret/openai#api_key",
            "--",
            "echo",
            "started",
        ])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("no kubernetes auth method is mounted at auth/k8s");

    let run = without_token(&bao)
        .args([
            "--auth-method",
            "kubernetes",
            "--auth-role",
            "web",
            "--kubernetes-token-file",
            "/nonexistent/token",
        ])
        .args(["exec", "-s", "K=secret/openai#api_key", "--", "true"])
        .run();
    run.assert_code(125)
        .assert_stderr_contains("no service-account token at /nonexistent/token");
}

/// A CA certificate in PEM (the first of the system bundle).
fn any_ca_certificate() -> String {
    let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        .expect("the system CA bundle (package ca-certificates)");
    let end = "-----END CERTIFICATE-----";
    let stop = bundle.find(end).expect("a certificate in the bundle") + end.len();
    let start = bundle.find("-----BEGIN CERTIFICATE-----").unwrap();
    bundle[start..stop].to_string()
}
