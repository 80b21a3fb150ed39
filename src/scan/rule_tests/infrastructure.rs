//! Tests for the rules in rules/infrastructure.toml.

use super::*;

const BECH32: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";

/// `rule` finds `value` under the name `words` in every context.
#[track_caller]
fn found_named(rule: &str, words: &[&str], value: &str) {
    for text in contexts(words, value) {
        found(rule, &text);
    }
}

/// [`found_named`] in the contexts that write the name in snake or upper case only (a
/// keyword like `dd_ap` is not in `ddApiKey`).
#[track_caller]
fn found_named_snake(rule: &str, words: &[&str], value: &str) {
    let camel = name(words).camel;
    for text in contexts(words, value) {
        if !text.contains(&camel) {
            found(rule, &text);
        }
    }
}

/// A random UUID (8-4-4-4-12 lowercase hex).
fn uuid(seed: u64) -> String {
    [8, 4, 4, 4, 12]
        .iter()
        .enumerate()
        .map(|(i, &n)| random(seed * 10 + i as u64, n, HEX))
        .collect::<Vec<_>>()
        .join("-")
}

#[test]
fn onepassword() {
    let json = r#"{"signInAddress":"my.1password.com","userAuth":{"method":"SRPg-4096","alg":"PBES2g-HS256","iterations":650000,"salt":"#;
    use base64::Engine;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{json}\"{}\"}},\"email\":\"{}@1passwordserviceaccounts.com\",\"srpX\":\"{}\"}}",
        random(1, 22, URLSAFE),
        random(2, 13, LOWER_DIGITS),
        random(3, 64, HEX)
    ));
    assert!(body.starts_with("eyJ"));
    let token = format!("{}{body}", p(&["op", "s_"]));
    found(
        "1password-service-account-token",
        &format!("export OP_SERVICE_ACCOUNT_TOKEN={token}"),
    );
    // Not the jwt rule's: no dots.
    not_found("jwt", &format!("export OP_SERVICE_ACCOUNT_TOKEN={token}"));
    not_found(
        "1password-service-account-token",
        &format!("{}{}", p(&["op", "s_eyJ"]), "A".repeat(200)),
    );
    not_found(
        "1password-service-account-token",
        &format!("{}{}", p(&["op", "s_eyJ"]), random(4, 40, URLSAFE)),
    );

    let alphabet = b"23456789ABCDEFGHJKLMNPQRSTVWXYZ";
    let groups: Vec<String> = [6, 6, 5, 5, 5, 5]
        .iter()
        .enumerate()
        .map(|(i, &n)| random(10 + i as u64, n, alphabet))
        .collect();
    let key = format!("{}{}", p(&["A", "3-"]), groups.join("-"));
    found(
        "1password-secret-key",
        &format!("Secret Key: {key}\nEmail: ops@example.com"),
    );
    found(
        "1password-secret-key",
        &format!(
            "\"{}{}-{}\"",
            p(&["A", "3-"]),
            groups[0],
            groups[1..].concat()
        ),
    );
    found(
        "1password-secret-key",
        &format!(
            "key: {}{}-{}{}-{}",
            p(&["A", "3-"]),
            groups[0],
            groups[1],
            groups[2],
            groups[3..].join("-")
        ),
    );
    // A placeholder, a lower-case run, a group too short.
    not_found(
        "1password-secret-key",
        &format!("{}XXXXXX-XXXXXX-XXXXX-XXXXX-XXXXX-XXXXX", p(&["A", "3-"])),
    );
    not_found(
        "1password-secret-key",
        &format!(
            "{}{}",
            p(&["a", "3-"]),
            groups.join("-").to_ascii_lowercase()
        ),
    );
    not_found(
        "1password-secret-key",
        &format!(
            "{}{}-{}",
            p(&["A", "3-"]),
            groups[0],
            groups[1..4].join("-")
        ),
    );
}

#[test]
fn age() {
    let key = format!("{}{}", p(&["AGE-SECRET-", "KEY-1"]), random(1, 58, BECH32));
    found(
        "age-secret-key",
        &format!(
            "# created: 2024-01-01T00:00:00Z\n# public key: age1{}\n{key}\n",
            random(2, 58, b"qpzry9x8gf2tvdw0s3jn54khce6mua7l")
        ),
    );
    found("age-secret-key", &format!("SOPS_AGE_KEY=\"{key}\""));
    // "B", "I", "O" and "1" are not bech32; a placeholder; too short.
    not_found(
        "age-secret-key",
        &format!(
            "{}{}",
            p(&["AGE-SECRET-", "KEY-1"]),
            random(3, 58, b"ABIO1")
        ),
    );
    not_found(
        "age-secret-key",
        &format!("{}{}", p(&["AGE-SECRET-", "KEY-1"]), "Q".repeat(58)),
    );
    not_found(
        "age-secret-key",
        &format!("{}{}", p(&["AGE-SECRET-", "KEY-1"]), random(4, 40, BECH32)),
    );
}

#[test]
fn alibaba() {
    let id = format!("{}{}", p(&["LT", "AI"]), random(1, 20, ALNUM));
    found("alibaba-access-key-id", &format!("accessKeyId: '{id}'"));
    found(
        "alibaba-access-key-id",
        &format!("{}{}", p(&["LT", "AI"]), random(2, 12, ALNUM)),
    );
    not_found(
        "alibaba-access-key-id",
        &format!("{}{}", p(&["LT", "AI"]), random(3, 8, ALNUM)),
    );
    not_found(
        "alibaba-access-key-id",
        &format!("{}{}", p(&["lt", "ai"]), random(4, 20, ALNUM)),
    );
    not_found("alibaba-access-key-id", "LTAIXXXXXXXXXXXXXXXXXXXX");

    let secret = random(5, 30, ALNUM);
    found_named(
        "alibaba-access-key-secret",
        &["alibaba", "cloud", "access", "key", "secret"],
        &secret,
    );
    found_named(
        "alibaba-access-key-secret",
        &["alicloud", "secret", "key"],
        &secret,
    );
    found(
        "alibaba-access-key-secret",
        &format!("aliyun.accessKeySecret={secret}"),
    );
    // Without a name, next to an AccessKey ID (the CSV a console download holds).
    let csv = format!("AccessKey ID,AccessKey Secret\n{id},{secret}\n");
    assert_eq!(
        rules_in(&csv),
        ["alibaba-access-key-id", "alibaba-access-key-secret"],
        "{csv}"
    );
    not_found(
        "alibaba-access-key-secret",
        &format!("OTHER_SECRET={secret}"),
    );
    not_found(
        "alibaba-access-key-secret",
        &format!("ALIBABA_CLOUD_ACCESS_KEY_SECRET={}", random(6, 24, ALNUM)),
    );
    not_found(
        "alibaba-access-key-secret",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET=your_access_key_secret",
    );
}

#[test]
fn jfrog() {
    let key = format!("{}{}", p(&["AK", "Cp"]), random(1, 69, ALNUM));
    found(
        "jfrog-api-key",
        &format!("curl -H 'X-JFrog-Art-Api: {key}' https://acme.jfrog.io"),
    );
    not_found(
        "jfrog-api-key",
        &format!("{}{}", p(&["AK", "Cp"]), random(2, 40, ALNUM)),
    );
    not_found(
        "jfrog-api-key",
        &format!("{}{}", p(&["AK", "Cp"]), "x".repeat(69)),
    );
    let reference = format!("{}{}", p(&["cmVmdGtu", "OjAxOj"]), random(3, 50, ALNUM));
    // Another version of the token format.
    found(
        "jfrog-reference-token",
        &format!(
            "token: {}{}",
            p(&["cmVmdGtu", "OjAyOj"]),
            random(5, 50, ALNUM)
        ),
    );
    found(
        "jfrog-reference-token",
        &format!("JFROG_ACCESS_TOKEN={reference}"),
    );
    found(
        "jfrog-reference-token",
        &format!("<password>{reference}</password>"),
    );
    not_found(
        "jfrog-reference-token",
        &format!("{}{}", p(&["cmVmdGtu", "OjAxOj"]), "A".repeat(50)),
    );
    not_found(
        "jfrog-reference-token",
        &format!("{}{}", p(&["cmVmdGtu", "OjAxOj"]), random(4, 20, ALNUM)),
    );
}

#[test]
fn jfrog_identity_tokens() {
    let token = random(1, 64, ALNUM);
    found_named(
        "jfrog-identity-token",
        &["jfrog", "access", "token"],
        &token,
    );
    found_named(
        "jfrog-identity-token",
        &["artifactory", "identity", "token"],
        &token,
    );
    found_named("jfrog-identity-token", &["artifactory", "password"], &token);
    // A checksum under an Artifactory name, a token under another name, a reference token
    // (the other rule's).
    not_found(
        "jfrog-identity-token",
        &format!("artifactory_sha256: {}", random(2, 64, HEX)),
    );
    not_found("jfrog-identity-token", &format!("OTHER_TOKEN={token}"));
    let reference = format!("{}{}", p(&["cmVmdGtu", "OjAxOj"]), random(3, 50, ALNUM));
    assert_eq!(
        rules_in(&format!("JFROG_ACCESS_TOKEN={reference}")),
        ["jfrog-reference-token"]
    );
}

#[test]
fn atlassian() {
    let token = format!(
        "{}{}={}",
        p(&["ATA", "TT3"]),
        random(1, 177, URLSAFE),
        random(2, 8, b"0123456789ABCDEF")
    );
    found("atlassian-api-token", &format!("JIRA_API_TOKEN={token}"));
    found(
        "atlassian-api-token",
        &format!("curl -u me@acme.com:{token} https://acme.atlassian.net/rest/api/3/myself"),
    );
    not_found(
        "atlassian-api-token",
        &format!("{}{}", p(&["ATA", "TT3"]), random(3, 60, URLSAFE)),
    );
    not_found(
        "atlassian-api-token",
        &format!("{}{}", p(&["ATA", "TT3"]), "x".repeat(186)),
    );

    let legacy = random(4, 24, ALNUM);
    found_named(
        "atlassian-legacy-api-token",
        &["jira", "api", "token"],
        &legacy,
    );
    found_named(
        "atlassian-legacy-api-token",
        &["confluence", "password"],
        &legacy,
    );
    found_named(
        "atlassian-legacy-api-token",
        &["atlassian", "token"],
        &legacy,
    );
    // A Jira account id (24 hex digits) is no credential; nor a 24-character token under
    // another name, or a value of another length.
    not_found(
        "atlassian-legacy-api-token",
        &format!("jira_account_id: {}", random(5, 24, HEX)),
    );
    not_found(
        "atlassian-legacy-api-token",
        &format!("GITHUB_TOKEN={legacy}"),
    );
    not_found(
        "atlassian-legacy-api-token",
        &format!("JIRA_API_TOKEN={}", random(6, 30, ALNUM)),
    );
}

#[test]
fn bitbucket() {
    let id = random(1, 18, ALNUM);
    let secret = random(2, 32, ALNUM);
    found_named("bitbucket-client-id", &["bitbucket", "client", "id"], &id);
    found_named("bitbucket-client-id", &["bitbucket", "oauth", "key"], &id);
    found_named(
        "bitbucket-client-secret",
        &["bitbucket", "client", "secret"],
        &secret,
    );
    not_found("bitbucket-client-id", &format!("CLIENT_ID={id}"));
    not_found("bitbucket-client-id", &format!("BITBUCKET_WORKSPACE={id}"));
    not_found(
        "bitbucket-client-secret",
        &format!("BITBUCKET_CLIENT_SECRET={}", random(3, 20, ALNUM)),
    );
    not_found(
        "bitbucket-client-secret",
        "BITBUCKET_CLIENT_SECRET=abcdefghijklmnopqrstuvwxyzabcdef",
    );
}

#[test]
fn clickhouse() {
    let secret = format!("{}{}", p(&["4b", "1d"]), random(1, 38, ALNUM));
    found(
        "clickhouse-cloud-api-secret",
        &format!("CLICKHOUSE_KEY_SECRET={secret}"),
    );
    // A hex digest that happens to start the same way, a short run.
    not_found(
        "clickhouse-cloud-api-secret",
        &format!("sha = \"{}{}\"", p(&["4b", "1d"]), random(2, 38, HEX)),
    );
    not_found(
        "clickhouse-cloud-api-secret",
        &format!("{}{}", p(&["4b", "1d"]), random(3, 20, ALNUM)),
    );
}

#[test]
fn cloudflare() {
    let global = random(1, 37, HEX);
    found_named(
        "cloudflare-global-api-key",
        &["cloudflare", "api", "key"],
        &global,
    );
    found(
        "cloudflare-global-api-key",
        &format!("provider \"cloudflare\" {{\n  cloudflare_api_key = \"{global}\"\n}}"),
    );
    not_found("cloudflare-global-api-key", &format!("API_KEY={global}1"));
    not_found(
        "cloudflare-global-api-key",
        &format!("CLOUDFLARE_ZONE_ID={}", random(2, 32, HEX)),
    );
    let token = random(3, 40, URLSAFE);
    found_named(
        "cloudflare-api-token",
        &["cloudflare", "api", "token"],
        &token,
    );
    not_found("cloudflare-api-token", &format!("GITLAB_TOKEN={token}"));
    not_found(
        "cloudflare-api-token",
        &format!("CLOUDFLARE_API_TOKEN={}", random(4, 30, URLSAFE)),
    );
    not_found(
        "cloudflare-api-token",
        "CLOUDFLARE_API_TOKEN=your-cloudflare-api-token-goes-here-ok",
    );

    let origin = format!(
        "{}{}-{}",
        p(&["v1", ".0-"]),
        random(5, 24, HEX),
        random(6, 146, HEX)
    );
    found(
        "cloudflare-origin-ca-key",
        &format!("CF_ORIGIN_CA_KEY=\"{origin}\""),
    );
    not_found("cloudflare-origin-ca-key", "version v1.0-beta released");
    not_found(
        "cloudflare-origin-ca-key",
        &format!(
            "{}{}-{}",
            p(&["v1", ".0-"]),
            "0".repeat(24),
            "0".repeat(146)
        ),
    );
}

#[test]
fn codecov_confluent() {
    let token = uuid(1);
    found_named("codecov-token", &["codecov", "token"], &token);
    not_found("codecov-token", &format!("request_id={token}"));
    not_found(
        "codecov-token",
        "CODECOV_TOKEN=00000000-0000-0000-0000-000000000000",
    );

    let key = random(2, 16, UPPER_DIGITS);
    found_named("confluent-api-key", &["confluent", "api", "key"], &key);
    found_named("confluent-api-key", &["confluent", "cloud", "key"], &key);
    not_found("confluent-api-key", &format!("API_KEY={key}"));
    not_found(
        "confluent-api-key",
        &format!("CONFLUENT_API_KEY={}", random(3, 16, LOWER_DIGITS)),
    );
    let secret = random(4, 64, BASE64);
    found_named(
        "confluent-api-secret",
        &["confluent", "api", "secret"],
        &secret,
    );
    not_found("confluent-api-secret", &format!("OTHER_SECRET={secret}"));
    not_found(
        "confluent-api-secret",
        &format!("CONFLUENT_API_SECRET={}", random(5, 40, BASE64)),
    );
}

#[test]
fn databricks() {
    let token = format!("{}{}", p(&["da", "pi"]), random(1, 32, HEX));
    found("databricks-token", &format!("DATABRICKS_TOKEN={token}"));
    found("databricks-token", &format!("token = \"{token}-2\""));
    not_found(
        "databricks-token",
        &format!("{}{}", p(&["da", "pi"]), "0".repeat(32)),
    );
    not_found(
        "databricks-token",
        &format!("{}{}", p(&["da", "pi"]), random(2, 20, HEX)),
    );
    not_found("databricks-token", "import dapi_client");
}

#[test]
fn datadog() {
    let api = random(1, 32, HEX);
    let app = random(2, 40, HEX);
    found_named_snake("datadog-api-key", &["dd", "api", "key"], &api);
    found_named("datadog-api-key", &["datadog", "api", "key"], &api);
    found_named_snake("datadog-app-key", &["dd", "app", "key"], &app);
    found_named("datadog-app-key", &["datadog", "application", "key"], &app);
    found("datadog-api-key", &format!("TF_VAR_DD_API_KEY={api}"));
    // The "dd_" of another word, another provider's name, a placeholder.
    not_found("datadog-api-key", &format!("add_api_key(\"{api}\")"));
    not_found("datadog-api-key", &format!("SEGMENT_API_KEY={api}"));
    not_found("datadog-api-key", &format!("DD_API_KEY={}", "0".repeat(32)));
    not_found("datadog-app-key", &format!("DD_APP_KEY={api}"));
    not_found("datadog-app-key", &format!("GIT_COMMIT={app}"));
    not_found("datadog-app-key", &format!("DATADOG_GIT_COMMIT_SHA={app}"));
    not_found("datadog-api-key", &format!("datadog_checksum: {api}"));
}

#[test]
fn defined_networking_digitalocean_doppler() {
    let base32_lower = b"abcdefghijklmnopqrstuvwxyz234567";
    let dn = format!(
        "{}{}-{}",
        p(&["dnk", "ey-"]),
        random(1, 26, base32_lower),
        random(2, 52, base32_lower)
    );
    found("defined-networking-api-key", &format!("DN_API_KEY={dn}"));
    not_found(
        "defined-networking-api-key",
        &format!(
            "{}{}-{}",
            p(&["dnk", "ey-"]),
            "a".repeat(26),
            "a".repeat(52)
        ),
    );
    not_found(
        "defined-networking-api-key",
        &format!("{}{}", p(&["dnk", "ey-"]), random(3, 40, base32_lower)),
    );

    for (seed, kind) in [(4, "dop"), (5, "doo"), (6, "dor")] {
        found(
            "digitalocean-token",
            &format!(
                "DIGITALOCEAN_TOKEN=\"{}{}\"",
                p(&[kind, "_v1_"]),
                random(seed, 64, HEX)
            ),
        );
    }
    not_found(
        "digitalocean-token",
        &format!("{}{}", p(&["dop", "_v1_"]), "0".repeat(64)),
    );
    not_found(
        "digitalocean-token",
        &format!("{}{}", p(&["dop", "_v1_"]), random(7, 40, HEX)),
    );
    not_found("digitalocean-token", "GET /api_v1_users/dop_v1_");

    for (seed, kind) in [
        (8, "pt"),
        (9, "ct"),
        (10, "sa"),
        (11, "scim"),
        (12, "audit"),
        (13, "st"),
    ] {
        found(
            "doppler-token",
            &format!(
                "DOPPLER_TOKEN={}{kind}.{}",
                p(&["d", "p."]),
                random(seed, 43, ALNUM)
            ),
        );
    }
    found(
        "doppler-token",
        &format!(
            "DOPPLER_TOKEN='{}prd.{}'",
            p(&["d", "p.st."]),
            random(14, 40, ALNUM)
        ),
    );
    not_found(
        "doppler-token",
        &format!("{}{}", p(&["d", "p.pt."]), "x".repeat(43)),
    );
    not_found(
        "doppler-token",
        &format!("{}{}", p(&["d", "p.xx."]), random(15, 43, ALNUM)),
    );
    not_found("doppler-token", "dp.pt.my_variable.length");
}

#[test]
fn drone_dynatrace_fastly() {
    let drone = random(1, 32, ALNUM);
    found_named("drone-ci-token", &["drone", "token"], &drone);
    found_named(
        "drone-ci-token",
        &["drone", "rpc", "secret"],
        &random(2, 32, HEX),
    );
    // A drone's serial number, another name, a short value.
    not_found("drone-ci-token", &format!("drone_serial: {drone}"));
    not_found("drone-ci-token", &format!("SOME_TOKEN={drone}"));
    not_found(
        "drone-ci-token",
        &format!("DRONE_TOKEN={}", random(3, 20, ALNUM)),
    );

    let dt = format!(
        "{}{}.{}",
        p(&["dt0", "c01."]),
        random(4, 24, UPPER_DIGITS),
        random(5, 64, UPPER_DIGITS)
    );
    found(
        "dynatrace-api-token",
        &format!("Authorization: Api-Token {dt}"),
    );
    not_found(
        "dynatrace-api-token",
        &format!(
            "{}{}.{}",
            p(&["dt0", "c01."]),
            "A".repeat(24),
            "A".repeat(64)
        ),
    );
    not_found(
        "dynatrace-api-token",
        &format!(
            "{}{}.{}",
            p(&["dt0", "c01."]),
            random(6, 24, UPPER_DIGITS),
            random(7, 30, UPPER_DIGITS)
        ),
    );

    // Lowercased by a tool, the token still works.
    found(
        "dynatrace-api-token",
        &format!("DT_API_TOKEN={}", dt.to_ascii_lowercase()),
    );

    let fastly = random(8, 32, URLSAFE);
    found_named("fastly-api-token", &["fastly", "api", "token"], &fastly);
    not_found("fastly-api-token", &format!("VERCEL_TOKEN={fastly}"));
    not_found(
        "fastly-api-token",
        &format!("FASTLY_SERVICE_ID={}", random(9, 22, ALNUM)),
    );
    not_found(
        "fastly-api-token",
        "FASTLY_API_TOKEN=replace-with-your-fastly-token",
    );
}

#[test]
fn flyio_gitter() {
    let user = format!("{}{}", p(&["fo", "1_"]), random(1, 43, URLSAFE));
    found("flyio-token", &format!("FLY_ACCESS_TOKEN={user}"));
    let macaroon = format!(
        "{}{},{}{}",
        p(&["Fly", "V1 fm2_"]),
        random(2, 200, BASE64),
        p(&["fm", "2_"]),
        random(3, 120, BASE64)
    );
    found("flyio-token", &format!("FLY_API_TOKEN=\"{macaroon}\""));
    found(
        "flyio-token",
        &format!("fly_token: {}{}", p(&["fm", "2_"]), random(4, 150, BASE64)),
    );
    not_found(
        "flyio-token",
        &format!("{}{}", p(&["fo", "1_"]), random(5, 20, URLSAFE)),
    );
    not_found(
        "flyio-token",
        &format!("{}{}", p(&["fm", "2_"]), "A".repeat(100)),
    );
    not_found("flyio-token", "see the FlyV1 header format");

    for kind in ["fm1a_", "fm1r_"] {
        found(
            "flyio-token",
            &format!("level=info token={}{}", p(&[kind]), random(9, 120, BASE64)),
        );
    }

    let gitter = random(6, 40, HEX);
    found_named("gitter-token", &["gitter", "token"], &gitter);
    not_found("gitter-token", &format!("GIT_SHA={gitter}"));
    not_found("gitter-token", &format!("gitter_commit_hash: {gitter}"));
    not_found(
        "gitter-token",
        &format!("GITTER_TOKEN={}", random(7, 32, HEX)),
    );
}

#[test]
fn grafana() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cloud = format!(
        "{}{}",
        p(&["gl", "c_"]),
        b64(&format!(
            "{{\"o\":\"{}\",\"n\":\"stack-{}-write\",\"k\":\"{}\",\"m\":{{\"r\":\"prod-us-east-0\"}}}}",
            random(1, 6, DIGITS),
            random(2, 6, DIGITS),
            random(3, 24, ALNUM)
        ))
    );
    found(
        "grafana-cloud-token",
        &format!("GRAFANA_CLOUD_TOKEN={cloud}"),
    );
    not_found("jwt", &format!("GRAFANA_CLOUD_TOKEN={cloud}"));
    not_found(
        "grafana-cloud-token",
        &format!("{}{}", p(&["gl", "c_"]), "A".repeat(60)),
    );
    not_found("grafana-cloud-token", "glc_config_loader");

    let sa = format!(
        "{}{}_{}",
        p(&["gl", "sa_"]),
        random(4, 32, ALNUM),
        random(5, 8, HEX)
    );
    found(
        "grafana-service-account-token",
        &format!("Authorization: Bearer {sa}"),
    );
    not_found(
        "grafana-service-account-token",
        &format!("{}{}", p(&["gl", "sa_"]), random(6, 32, ALNUM)),
    );

    let legacy = b64(&format!(
        "{{\"k\":\"{}\",\"n\":\"deploy\",\"id\":1}}",
        random(7, 32, ALNUM)
    ));
    assert!(legacy.starts_with(&p(&["eyJr", "Ijoi"])));
    found("grafana-api-key", &format!("grafana_api_key: \"{legacy}\""));
    not_found("jwt", &format!("grafana_api_key: \"{legacy}\""));
    not_found(
        "grafana-api-key",
        &format!("{}{}", p(&["eyJr", "Ijoi"]), "A".repeat(60)),
    );
    not_found(
        "grafana-api-key",
        &format!("{}{}", p(&["eyJr", "Ijoi"]), random(8, 20, ALNUM)),
    );
}

#[test]
fn harness_terraform() {
    for (seed, kind) in [(1, "pat."), (2, "sat.")] {
        let token = format!(
            "{}{}.{}.{}",
            p(&[kind]),
            random(seed, 22, URLSAFE),
            random(seed + 10, 24, ALNUM),
            random(seed + 20, 20, ALNUM)
        );
        found(
            "harness-token",
            &format!("HARNESS_PLATFORM_API_KEY={token}"),
        );
    }
    not_found(
        "harness-token",
        &format!(
            "{}{}.{}.{}",
            p(&["pat."]),
            "a".repeat(22),
            "0".repeat(24),
            "a".repeat(20)
        ),
    );
    not_found("harness-token", "see pat.name.length and sat.value");

    let tfc = format!(
        "{}.{}{}",
        random(3, 14, ALNUM),
        p(&["atlas", "v1."]),
        random(4, 67, URLSAFE)
    );
    found(
        "terraform-cloud-token",
        &format!("credentials \"app.terraform.io\" {{\n  token = \"{tfc}\"\n}}"),
    );
    found("terraform-cloud-token", &format!("TFE_TOKEN={tfc}"));
    not_found(
        "terraform-cloud-token",
        &format!(
            "{}.{}{}",
            random(5, 14, ALNUM),
            p(&["atlas", "v1."]),
            random(6, 30, URLSAFE)
        ),
    );
    not_found(
        "terraform-cloud-token",
        &format!(
            "{}.{}{}",
            "a".repeat(14),
            p(&["atlas", "v1."]),
            "a".repeat(67)
        ),
    );

    let password = format!("{}!{}", random(7, 8, ALNUM), random(8, 6, ALNUM));
    for arg in [
        "administrator_login_password",
        "admin_password",
        "master_password",
    ] {
        found(
            "terraform-password",
            &format!("resource \"x\" \"y\" {{\n  {arg} = \"{password}\"\n}}\n"),
        );
    }
    // Low entropy is no reason to skip a written-out password.
    found(
        "terraform-password",
        "  administrator_login_password = \"Winter2024!\"",
    );
    for value in [
        "var.admin_password",
        "${var.admin_password}",
        "random_password.db.result",
    ] {
        not_found("terraform-password", &format!("  admin_password = {value}"));
        not_found(
            "terraform-password",
            &format!("  admin_password = \"{value}\""),
        );
    }
    not_found("terraform-password", "  admin_password = \"ChangeMe123!\"");
    not_found("terraform-password", "  master_password = \"<password>\"");
    not_found("terraform-password", "  master_password = \"short\"");
}

#[test]
fn heroku_infracost() {
    let key = format!("{}{}", p(&["HR", "KU-AA"]), random(1, 58, URLSAFE));
    found("heroku-api-key", &format!("HEROKU_API_KEY={key}"));
    not_found(
        "heroku-api-key",
        &format!("{}{}", p(&["HR", "KU-AA"]), "x".repeat(58)),
    );
    not_found(
        "heroku-api-key",
        &format!("{}{}", p(&["HR", "KU-"]), random(2, 20, URLSAFE)),
    );

    let legacy = uuid(3);
    found_named("heroku-legacy-api-key", &["heroku", "api", "key"], &legacy);
    found_named(
        "heroku-legacy-api-key",
        &["heroku", "auth", "token"],
        &legacy,
    );
    not_found("heroku-legacy-api-key", &format!("HEROKU_APP_ID={legacy}"));
    not_found("heroku-legacy-api-key", &format!("SOME_API_KEY={legacy}"));

    let ico = format!("{}{}", p(&["ic", "o-"]), random(4, 32, ALNUM));
    found("infracost-api-key", &format!("INFRACOST_API_KEY={ico}"));
    not_found(
        "infracost-api-key",
        &format!("{}{}", p(&["ic", "o-"]), "a".repeat(32)),
    );
    not_found(
        "infracost-api-key",
        &format!("favicon.{}{}", p(&["ic", "o-"]), random(5, 32, ALNUM)),
    );
    not_found(
        "infracost-api-key",
        "<link rel=\"icon\" href=\"/favico-32.png\">",
    );
}

#[test]
fn kubernetes_secrets() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let password = b64(&random(1, 20, ALNUM));
    let by_hand = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\ntype: Opaque\ndata:\n  username: {}\n  password: {password}\n",
        b64("admin")
    );
    found("kubernetes-secret", &by_hand);
    // kubectl get secret -o yaml: data before kind.
    let kubectl = format!(
        "apiVersion: v1\ndata:\n  password: {password}\n  username: {}\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n",
        b64("admin")
    );
    found("kubernetes-secret", &kubectl);
    let string_data = format!(
        "kind: Secret\napiVersion: v1\nmetadata:\n  name: api\nstringData:\n  API_TOKEN: \"{}\"\n",
        random(2, 32, ALNUM)
    );
    found("kubernetes-secret", &string_data);
    // A ConfigMap's data, a Secret without data, a Secret followed by a ConfigMap.
    let config_map = format!(
        "apiVersion: v1\ndata:\n  settings: {password}\nkind: ConfigMap\nmetadata:\n  name: cfg\n"
    );
    not_found("kubernetes-secret", &config_map);
    not_found(
        "kubernetes-secret",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: empty\ntype: Opaque\n",
    );
    not_found(
        "kubernetes-secret",
        &format!(
            "kind: Secret\nmetadata:\n  name: empty\n---\nkind: ConfigMap\ndata:\n  settings: {password}\n"
        ),
    );
    not_found(
        "kubernetes-secret",
        "kind: Secret\ndata:\n  password: AAAAAAAAAAAAAAAA\n",
    );
}

#[test]
fn launchdarkly_netlify() {
    let sdk = format!("{}{}", p(&["sd", "k-"]), uuid(1));
    found("launchdarkly-key", &format!("LD_SDK_KEY={sdk}"));
    found(
        "launchdarkly-key",
        &format!("ldClient = LaunchDarkly.init(\"{sdk}\")"),
    );
    let api = format!("{}{}", p(&["ap", "i-"]), uuid(2));
    found_named("launchdarkly-key", &["launchdarkly", "api", "key"], &api);
    // An api- UUID under another name, a mobile key, a placeholder.
    not_found("launchdarkly-key", &format!("OTHER_TOKEN={api}"));
    not_found(
        "launchdarkly-key",
        &format!("LAUNCHDARKLY_MOBILE_KEY={}{}", p(&["mo", "b-"]), uuid(3)),
    );
    not_found(
        "launchdarkly-key",
        &format!("{}00000000-0000-0000-0000-000000000000", p(&["sd", "k-"])),
    );

    let nfp = format!("{}{}", p(&["nf", "p_"]), random(4, 36, ALNUM));
    found("netlify-token", &format!("NETLIFY_AUTH_TOKEN={nfp}"));
    let legacy = random(5, 43, URLSAFE);
    found_named("netlify-token", &["netlify", "auth", "token"], &legacy);
    not_found("netlify-token", &format!("OTHER_TOKEN={legacy}"));
    not_found(
        "netlify-token",
        &format!("{}{}", p(&["nf", "p_"]), "a".repeat(36)),
    );
    not_found("netlify-token", &format!("NETLIFY_SITE_ID={}", uuid(6)));
}

#[test]
fn newrelic() {
    let cases = [
        (
            "newrelic-user-api-key",
            format!("{}{}", p(&["NR", "AK-"]), random(1, 27, UPPER_DIGITS)),
        ),
        (
            "newrelic-insert-key",
            format!("{}{}", p(&["NR", "II-"]), random(2, 32, URLSAFE)),
        ),
        (
            "newrelic-browser-api-key",
            format!("{}{}", p(&["NR", "JS-"]), random(3, 19, HEX)),
        ),
        (
            "newrelic-license-key",
            format!("{}{}", random(4, 36, HEX), p(&["NR", "AL"])),
        ),
        (
            "newrelic-license-key",
            format!("eu01xx{}{}", random(5, 30, HEX), p(&["NR", "AL"])),
        ),
    ];
    for (rule, key) in &cases {
        found(rule, &format!("NEW_RELIC_KEY=\"{key}\""));
        // One character short.
        not_found(rule, &format!("NEW_RELIC_KEY=\"{}\"", &key[1..]));
    }
    not_found(
        "newrelic-user-api-key",
        &format!("{}{}", p(&["NR", "AK-"]), "X".repeat(27)),
    );
    not_found(
        "newrelic-license-key",
        &format!("{}{}", "0".repeat(36), p(&["NR", "AL"])),
    );
}

#[test]
fn octopus_okta_openshift() {
    let octopus = format!("{}{}", p(&["AP", "I-"]), random(1, 26, UPPER_DIGITS));
    found(
        "octopus-deploy-api-key",
        &format!("curl -H \"X-Octopus-ApiKey: {octopus}\" https://octopus.acme.com/api"),
    );
    not_found("octopus-deploy-api-key", "API-GATEWAYCONFIGURATIONNAMES");
    not_found(
        "octopus-deploy-api-key",
        &format!("X-{}{}", p(&["AP", "I-"]), random(2, 26, UPPER_DIGITS)),
    );
    not_found(
        "octopus-deploy-api-key",
        &format!("{}{}", p(&["ap", "i-"]), random(3, 26, LOWER_DIGITS)),
    );

    let okta = format!("00{}", random(4, 40, URLSAFE));
    found_named("okta-api-token", &["okta", "api", "token"], &okta);
    found(
        "okta-api-token",
        &format!("Authorization: {} {okta}", p(&["SS", "WS"])),
    );
    not_found("okta-api-token", &format!("OTHER_TOKEN={okta}"));
    not_found(
        "okta-api-token",
        &format!(
            "OKTA_API_TOKEN={}",
            random(5, 42, URLSAFE).replace('0', "1")
        ),
    );
    not_found(
        "okta-api-token",
        &format!("OKTA_API_TOKEN=00{}", "x".repeat(40)),
    );

    let oc = format!("{}{}", p(&["sha", "256~"]), random(6, 43, URLSAFE));
    found(
        "openshift-token",
        &format!("oc login --token={oc} --server=https://api.acme:6443"),
    );
    not_found(
        "openshift-token",
        &format!("{}{}", p(&["sha", "256~"]), "a".repeat(43)),
    );
    not_found(
        "openshift-token",
        &format!("{}{}", p(&["sha", "256~"]), random(7, 20, URLSAFE)),
    );
}

#[test]
fn prefixed_deploy_platform_tokens() {
    let cases = [
        (
            "planetscale-token",
            format!("{}{}", p(&["pscale", "_tkn_"]), random(1, 43, URLSAFE)),
        ),
        (
            "planetscale-token",
            format!("{}{}", p(&["pscale", "_oauth_"]), random(2, 43, URLSAFE)),
        ),
        (
            "planetscale-token",
            format!("{}{}", p(&["pscale", "_pw_"]), random(3, 43, URLSAFE)),
        ),
        (
            "prefect-api-key",
            format!("{}{}", p(&["pn", "u_"]), random(4, 36, ALNUM)),
        ),
        (
            "pulumi-access-token",
            format!("{}{}", p(&["pu", "l-"]), random(5, 40, HEX)),
        ),
        (
            "scalingo-api-token",
            format!("{}{}", p(&["tk-", "us-"]), random(6, 48, URLSAFE)),
        ),
        (
            "sentry-user-token",
            format!("{}{}", p(&["sntr", "yu_"]), random(7, 64, HEX)),
        ),
        (
            "sonar-token",
            format!("{}{}", p(&["sq", "u_"]), random(8, 40, HEX)),
        ),
        (
            "sonar-token",
            format!("{}{}", p(&["sq", "p_"]), random(9, 40, HEX)),
        ),
        (
            "sonar-token",
            format!("{}{}", p(&["sq", "a_"]), random(10, 40, HEX)),
        ),
        (
            "sourcegraph-access-token",
            format!("{}{}", p(&["sg", "p_"]), random(11, 40, HEX)),
        ),
        (
            "sourcegraph-access-token",
            format!(
                "{}{}_{}",
                p(&["sg", "p_"]),
                random(12, 16, HEX),
                random(13, 40, HEX)
            ),
        ),
    ];
    for (rule, token) in &cases {
        found(rule, &format!("TOKEN=\"{token}\""));
        found(rule, &format!("auth: {token}\n"));
        // Too short, or glued to more of the same alphabet.
        not_found(rule, &format!("TOKEN=\"{}\"", &token[..token.len() - 12]));
        not_found(rule, &format!("x{token}"));
    }
    // Placeholders: one repeated character after the prefix.
    for placeholder in [
        format!("{}{}", p(&["pscale", "_tkn_"]), "x".repeat(43)),
        format!("{}{}", p(&["pn", "u_"]), "x".repeat(36)),
        format!("{}{}", p(&["pu", "l-"]), "0".repeat(40)),
        format!("{}{}", p(&["sq", "p_"]), "0".repeat(40)),
        format!("{}{}", p(&["tk-", "us-"]), "x".repeat(48)),
        format!("{}{}", p(&["sg", "p_"]), "a".repeat(40)),
        format!("{}{}", p(&["sntr", "yu_"]), "0".repeat(64)),
    ] {
        assert!(rules_in(&placeholder).is_empty(), "{placeholder}");
    }
}

#[test]
fn sentry_snyk() {
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!(
        "{{\"iat\":{},\"url\":\"https://sentry.io\",\"region_url\":\"https://us.sentry.io\",\"org\":\"acme\"}}",
        random(1, 10, DIGITS)
    ));
    let org = format!("{}{payload}_{}", p(&["sntr", "ys_"]), random(2, 43, BASE64));
    found("sentry-org-token", &format!("SENTRY_AUTH_TOKEN={org}"));
    not_found("jwt", &format!("SENTRY_AUTH_TOKEN={org}"));
    not_found(
        "sentry-org-token",
        &format!("{}{payload}", p(&["sntr", "ys_"])),
    );

    let legacy = random(3, 64, HEX);
    found_named("sentry-legacy-token", &["sentry", "auth", "token"], &legacy);
    not_found(
        "sentry-legacy-token",
        &format!("SENTRY_RELEASE_SHA256={legacy}"),
    );
    not_found(
        "sentry-legacy-token",
        &format!("SENTRY_AUTH_TOKEN={}", random(4, 32, HEX)),
    );

    let sonar = random(9, 40, HEX);
    found_named("sonar-legacy-token", &["sonar", "token"], &sonar);
    found("sonar-legacy-token", &format!("sonar.login={sonar}"));
    found(
        "sonar-legacy-token",
        &format!("mvn sonar:sonar -Dsonar.login={sonar}"),
    );
    not_found("sonar-legacy-token", &format!("sonar.scm.revision={sonar}"));
    not_found(
        "sonar-legacy-token",
        &format!("SONAR_TOKEN={}", random(10, 32, HEX)),
    );
    // A prefixed token under a Sonar name is the sonar-token rule's alone.
    let prefixed = format!("{}{}", p(&["sq", "p_"]), random(11, 40, HEX));
    assert_eq!(
        rules_in(&format!("SONAR_TOKEN={prefixed}")),
        ["sonar-token"]
    );

    let snyk = uuid(5);
    found_named("snyk-token", &["snyk", "token"], &snyk);
    found_named("snyk-token", &["snyk", "api", "key"], &snyk);
    not_found("snyk-token", &format!("SNYK_ORG_ID={snyk}"));
    not_found("snyk-token", &format!("OTHER_TOKEN={snyk}"));
}

#[test]
fn sumologic_travis() {
    let id = format!("su{}", random(1, 12, ALNUM));
    let key = random(2, 64, ALNUM);
    found_named("sumologic-access-id", &["sumologic", "access", "id"], &id);
    found_named(
        "sumologic-access-key",
        &["sumologic", "access", "key"],
        &key,
    );
    found_named("sumologic-access-key", &["sumo", "key"], &key);
    not_found("sumologic-access-id", &format!("ACCESS_ID={id}"));
    not_found(
        "sumologic-access-id",
        &format!("SUMOLOGIC_ACCESSID={}", random(3, 14, ALNUM)),
    );
    not_found("sumologic-access-key", &format!("ACCESS_KEY={key}"));
    not_found(
        "sumologic-access-key",
        &format!("SUMOLOGIC_ACCESSKEY={}", random(4, 40, ALNUM)),
    );

    let travis = random(5, 22, URLSAFE);
    found_named("travis-ci-token", &["travis", "token"], &travis);
    found_named("travis-ci-token", &["travis", "api", "key"], &travis);
    not_found("travis-ci-token", &format!("TRAVIS_BUILD_ID={travis}"));
    not_found("travis-ci-token", &format!("CIRCLE_TOKEN={travis}"));
    not_found(
        "travis-ci-token",
        &format!("TRAVIS_TOKEN={}", random(6, 30, URLSAFE)),
    );
}

#[test]
fn vault() {
    let root = format!("{}{}", p(&["hv", "s."]), random(1, 24, ALNUM));
    found("vault-token", &format!("VAULT_TOKEN={root}"));
    let service = format!("{}CAESI{}", p(&["hv", "s."]), random(2, 86, URLSAFE));
    found("vault-token", &format!("token: {service}\n"));
    let batch = format!("{}AAAAAQ{}", p(&["hv", "b."]), random(3, 130, URLSAFE));
    found("vault-token", &format!("X-Vault-Token: {batch}"));
    found(
        "vault-token",
        &format!("{}{}", p(&["hv", "r."]), random(4, 24, ALNUM)),
    );
    not_found(
        "vault-token",
        &format!("{}{}", p(&["hv", "s."]), "x".repeat(24)),
    );
    not_found(
        "vault-token",
        &format!("{}{}", p(&["hv", "s."]), random(5, 16, ALNUM)),
    );
    not_found(
        "vault-token",
        &format!("{}{}", p(&["hv", "b."]), random(6, 40, ALNUM)),
    );
    not_found(
        "vault-token",
        "config.hvs.enabled_for_all_namespaces_in_the_cluster",
    );

    let legacy = format!("s.{}", random(7, 24, ALNUM));
    found_named("vault-legacy-token", &["vault", "token"], &legacy);
    not_found("vault-legacy-token", &format!("OTHER_TOKEN={legacy}"));
    not_found(
        "vault-legacy-token",
        &format!("VAULT_TOKEN=s.{}", random(8, 30, ALNUM)),
    );
    not_found("vault-legacy-token", "vault_addr: s.internal.example.com");
}

#[test]
fn yandex() {
    let api = format!("{}{}", p(&["AQ", "VN"]), random(1, 36, URLSAFE));
    found("yandex-api-key", &format!("YC_API_KEY={api}"));
    not_found(
        "yandex-api-key",
        &format!("{}{}", p(&["AQ", "VN"]), random(2, 20, URLSAFE)),
    );
    not_found(
        "yandex-api-key",
        &format!("{}{}", p(&["AQ", "VN"]), "A".repeat(36)),
    );

    let iam = format!(
        "{}{}.{}",
        p(&["t", "1."]),
        random(3, 120, URLSAFE),
        random(4, 86, URLSAFE)
    );
    found("yandex-iam-token", &format!("Authorization: Bearer {iam}"));
    not_found(
        "yandex-iam-token",
        &format!(
            "{}{}.{}",
            p(&["t", "1."]),
            random(5, 120, URLSAFE),
            random(6, 40, URLSAFE)
        ),
    );
    not_found("yandex-iam-token", "t1.start(); t2.start();");

    let secret = format!("YC{}", random(7, 38, URLSAFE));
    found_named(
        "yandex-static-access-key",
        &["yandex", "secret", "access", "key"],
        &secret,
    );
    not_found(
        "yandex-static-access-key",
        &format!("OTHER_SECRET={secret}"),
    );
    not_found(
        "yandex-static-access-key",
        &format!("YANDEX_SECRET_KEY=YC{}", random(8, 20, URLSAFE)),
    );
}

#[test]
fn nuget_sidekiq() {
    let password = random(1, 20, ALNUM);
    found(
        "nuget-config-password",
        &format!(
            "<packageSourceCredentials>\n  <Contoso>\n    <add key=\"Username\" value=\"me\" />\n    <add key=\"ClearTextPassword\" value=\"{password}\" />\n  </Contoso>\n</packageSourceCredentials>"
        ),
    );
    found(
        "nuget-config-password",
        &format!(
            "<add key='ClearTextPassword' value='{}' />",
            p(&["Hunter2", "Hunter2"])
        ),
    );
    not_found(
        "nuget-config-password",
        "<add key=\"ClearTextPassword\" value=\"%NUGET_PASSWORD%\" />",
    );
    not_found(
        "nuget-config-password",
        "<add key=\"ClearTextPassword\" value=\"$(FeedPassword)\" />",
    );
    not_found(
        "nuget-config-password",
        "<add key=\"ClearTextPassword\" value=\"password\" />",
    );
    not_found(
        "nuget-config-password",
        &format!("<add key=\"Password\" value=\"{password}\" />"),
    );

    let creds = format!("{}:{}", random(2, 8, HEX), random(3, 8, HEX));
    found(
        "sidekiq-credentials",
        &format!("BUNDLE_ENTERPRISE__CONTRIBSYS__COM={creds}"),
    );
    found(
        "sidekiq-credentials",
        &format!("export BUNDLE_GEMS__CONTRIBSYS__COM=\"{creds}\""),
    );
    found(
        "sidekiq-credentials",
        &format!("bundle config --local gems.contribsys.com {creds}"),
    );
    found(
        "sidekiq-credentials",
        &format!("source \"https://{creds}@enterprise.contribsys.com/\" do"),
    );
    not_found(
        "sidekiq-credentials",
        "BUNDLE_ENTERPRISE__CONTRIBSYS__COM=${SIDEKIQ_CREDENTIALS}",
    );
    not_found(
        "sidekiq-credentials",
        "bundle config gems.contribsys.com username:password",
    );
    not_found(
        "sidekiq-credentials",
        "source \"https://enterprise.contribsys.com/\" do",
    );
}

#[test]
fn curl_credentials() {
    let password = random(1, 16, ALNUM);
    for text in [
        format!("curl -u admin:{password} https://ci.acme.com/api/json"),
        format!("curl --user 'deploy:{password}' -X POST https://acme.com/hook"),
        format!(
            "curl -u 'admin:{}${}' https://acme.com",
            random(6, 8, ALNUM),
            random(7, 6, DIGITS)
        ),
        format!(
            "curl -s -H \"Authorization: Bearer {}\" https://api.acme.com",
            random(2, 40, URLSAFE)
        ),
        format!(
            "curl -H 'Authorization: Basic {}' https://acme.com",
            random(3, 28, BASE64)
        ),
        format!(
            "  curl --header \"Authorization: token {}\" $URL",
            random(4, 32, HEX)
        ),
    ] {
        found("curl-credentials", &text);
    }
    // Variables, placeholders and the command without credentials.
    for text in [
        "curl -u \"$USER:$PASSWORD\" https://acme.com",
        "curl -u admin:${ADMIN_PASSWORD} https://acme.com",
        "curl -u admin:$ADMIN_PASSWORD https://acme.com",
        "curl -u \"admin:$(cat /run/secrets/admin)\" https://acme.com",
        "curl -H \"Authorization: Bearer $TOKEN\" https://acme.com",
        "curl -H \"Authorization: Bearer <your-token>\" https://acme.com",
        "curl -u user:password https://acme.com",
        "curl -u user:pass https://acme.com",
        "curl https://acme.com/install.sh | sh",
    ] {
        not_found("curl-credentials", text);
    }
    // A token that another rule knows is that rule's finding.
    let github = format!("{}{}", p(&["gh", "p_"]), random(5, 36, ALNUM));
    assert_eq!(
        rules_in(&format!(
            "curl -H \"Authorization: Bearer {github}\" https://api.github.com"
        )),
        ["github-token"]
    );
}

#[test]
fn settlemint_azure_devops() {
    for (seed, kind) in [(1, "aat"), (2, "pat"), (3, "sat")] {
        found(
            "settlemint-token",
            &format!(
                "SETTLEMINT_ACCESS_TOKEN={}{kind}_{}",
                p(&["s", "m_"]),
                random(seed, 16, ALNUM)
            ),
        );
    }
    not_found(
        "settlemint-token",
        &format!("{}{}", p(&["s", "m_pat_"]), "a".repeat(16)),
    );
    not_found(
        "settlemint-token",
        &format!("{}{}", p(&["s", "m_pat_"]), random(4, 8, ALNUM)),
    );
    not_found("settlemint-token", "asm_pat_generic_handler_v2_impl");

    let base32_lower = b"abcdefghijklmnopqrstuvwxyz234567";
    let pat = random(5, 52, base32_lower);
    found_named("azure-devops-pat", &["azure", "devops", "pat"], &pat);
    found_named("azure-devops-pat", &["azure", "devops", "ext", "pat"], &pat);
    found_named_snake(
        "azure-devops-pat",
        &["azdo", "personal", "access", "token"],
        &pat,
    );
    found_named_snake("azure-devops-pat", &["ado", "pat"], &pat);
    not_found("azure-devops-pat", &format!("GITHUB_PAT={pat}"));
    not_found("azure-devops-pat", &format!("AZURE_DEVOPS_ORG_URL={pat}"));
    not_found(
        "azure-devops-pat",
        &format!("AZURE_DEVOPS_PAT={}", random(6, 40, base32_lower)),
    );
    not_found("azure-devops-pat", &format!("avocado_token={pat}"));
}

/// A provider's name and any credential word is enough where a rule asks for one: the
/// spelling (key, token, secret, password, auth, credentials) does not matter, a bare
/// org or project id still does not do.
#[test]
fn any_credential_word_under_the_provider_name() {
    let jfrog = random(101, 64, ALNUM);
    found_named("jfrog-identity-token", &["jfrog", "credentials"], &jfrog);
    let legacy = random(102, 24, ALNUM);
    found_named("atlassian-legacy-api-token", &["jira", "auth"], &legacy);
    found_named("atlassian-legacy-api-token", &["jira", "creds"], &legacy);

    let id = random(103, 18, ALNUM);
    let secret = random(104, 32, ALNUM);
    found_named("bitbucket-client-id", &["bitbucket", "token"], &id);
    found_named(
        "bitbucket-client-secret",
        &["bitbucket", "api", "key"],
        &secret,
    );
    found_named(
        "bitbucket-client-secret",
        &["bitbucket", "password"],
        &secret,
    );
    not_found(
        "bitbucket-client-secret",
        &format!("BITBUCKET_REPO_ID={secret}"),
    );

    let key = random(105, 16, UPPER_DIGITS);
    found_named("confluent-api-key", &["confluent", "token"], &key);
    found_named("confluent-api-key", &["confluent", "credentials"], &key);
    let csecret = random(106, 64, BASE64);
    found_named(
        "confluent-api-secret",
        &["confluent", "api", "key"],
        &csecret,
    );
    found_named("confluent-api-secret", &["confluent", "password"], &csecret);
    // One value, one finding: the key and the secret differ in length.
    assert_eq!(
        rules_in(&format!("CONFLUENT_API_KEY={key}")),
        ["confluent-api-key"]
    );
    not_found("confluent-api-key", &format!("CONFLUENT_CLUSTER={key}"));

    let drone = random(107, 32, ALNUM);
    found_named("drone-ci-token", &["drone", "auth"], &drone);
    found_named("drone-ci-token", &["drone", "password"], &drone);

    let sentry = random(108, 64, HEX);
    found_named("sentry-legacy-token", &["sentry", "api", "key"], &sentry);
    found_named("sentry-legacy-token", &["sentry", "password"], &sentry);
    not_found(
        "sentry-legacy-token",
        &format!("SENTRY_PROJECT_ID={sentry}"),
    );

    let snyk = uuid(109);
    found_named("snyk-token", &["snyk", "password"], &snyk);
    found_named("snyk-token", &["snyk", "creds"], &snyk);
    not_found("snyk-token", &format!("snyk_project_id: {snyk}"));

    let sonar = random(110, 40, HEX);
    found_named("sonar-legacy-token", &["sonar", "secret"], &sonar);
    found_named("sonar-legacy-token", &["sonar", "auth"], &sonar);

    let sumo_id = format!("su{}", random(111, 12, ALNUM));
    let sumo_key = random(112, 64, ALNUM);
    found_named("sumologic-access-id", &["sumologic", "token"], &sumo_id);
    found_named("sumologic-access-id", &["sumologic", "key"], &sumo_id);
    found_named("sumologic-access-id", &["sumo", "credentials"], &sumo_id);
    found_named("sumologic-access-key", &["sumologic", "token"], &sumo_key);
    found_named("sumologic-access-key", &["sumologic", "secret"], &sumo_key);
    assert_eq!(
        rules_in(&format!("SUMOLOGIC_KEY={sumo_id}")),
        ["sumologic-access-id"]
    );
    not_found(
        "sumologic-access-id",
        &format!("SUMOLOGIC_ENDPOINT={sumo_id}"),
    );

    let travis = random(113, 22, URLSAFE);
    found_named("travis-ci-token", &["travis", "auth"], &travis);
    found_named("travis-ci-token", &["travis", "password"], &travis);

    let heroku = uuid(114);
    found_named("heroku-legacy-api-key", &["heroku", "auth"], &heroku);
    found_named("heroku-legacy-api-key", &["heroku", "credentials"], &heroku);
    not_found(
        "heroku-legacy-api-key",
        &format!("heroku_pipeline_id: {heroku}"),
    );

    let pat = random(115, 52, b"abcdefghijklmnopqrstuvwxyz234567");
    found_named("azure-devops-pat", &["azure", "devops", "auth"], &pat);
    found_named("azure-devops-pat", &["azure", "devops", "creds"], &pat);
    not_found(
        "azure-devops-pat",
        &format!("AZURE_DEVOPS_PROJECT_ID={pat}"),
    );
}

#[test]
fn terraform_db_instance_password() {
    let password = format!("{}#{}", random(116, 6, ALNUM), random(117, 9, ALNUM));
    let block = |value: &str| {
        format!(
            "resource \"aws_db_instance\" \"db\" {{\n  engine   = \"postgres\"\n  tags     = {{ Name = \"db\" }}\n  username = \"admin\"\n  password = \"{value}\"\n}}\n"
        )
    };
    found("terraform-db-instance-password", &block(&password));
    found(
        "terraform-db-instance-password",
        &format!("resource \"aws_db_instance\" \"x\" {{\n  password = \"{password}\"\n}}\n"),
    );
    // A variable, a reference, a placeholder; a password outside the block; another resource.
    for value in ["${var.db_password}", "changeme-please", "<password>"] {
        not_found("terraform-db-instance-password", &block(value));
    }
    not_found(
        "terraform-db-instance-password",
        "resource \"aws_db_instance\" \"db\" {\n  password = var.db_password\n}\n",
    );
    not_found(
        "terraform-db-instance-password",
        &format!("resource \"aws_db_instance\" \"db\" {{\n  engine = \"mysql\"\n}}\n\nlocals {{\n  password = \"{password}\"\n}}\n"),
    );
    not_found(
        "terraform-db-instance-password",
        &format!("resource \"aws_instance\" \"web\" {{\n  password = \"{password}\"\n}}\n"),
    );
}

#[test]
fn age_post_quantum() {
    let key = format!(
        "{}{}",
        p(&["AGE-SECRET-", "KEY-PQ-1"]),
        random(11, 58, BECH32)
    );
    found(
        "age-secret-key",
        &format!("# public key: age1pq1...\n{key}\n"),
    );
    not_found(
        "age-secret-key",
        &format!("{}{}", p(&["AGE-SECRET-", "KEY-PQ-1"]), "Q".repeat(58)),
    );
    not_found(
        "age-secret-key",
        &format!(
            "{}{}",
            p(&["AGE-SECRET-", "KEY-XX-1"]),
            random(12, 58, BECH32)
        ),
    );
}

#[test]
fn atlassian_access_and_data_center_tokens() {
    let access = format!(
        "{}{}={}",
        p(&["ATC", "TT3"]),
        random(21, 177, URLSAFE),
        random(22, 8, b"0123456789ABCDEF")
    );
    found(
        "atlassian-api-token",
        &format!("BITBUCKET_REPO_TOKEN={access}"),
    );
    not_found(
        "atlassian-api-token",
        &format!("{}{}", p(&["ATC", "TT3"]), random(23, 40, URLSAFE)),
    );
    // Data Center personal access tokens: base64 of "<12 digits>:<random bytes>".
    use base64::Engine;
    let mut raw = random(24, 12, DIGITS).into_bytes();
    raw.push(b':');
    raw.extend(random(25, 20, ALNUM).bytes().map(|b| b ^ 0x5a));
    let pat = base64::engine::general_purpose::STANDARD.encode(&raw);
    assert_eq!(pat.len(), 44);
    found_named("atlassian-legacy-api-token", &["confluence", "pat"], &pat);
    found_named("atlassian-legacy-api-token", &["jira", "token"], &pat);
    not_found("atlassian-legacy-api-token", &format!("wiki_PAT={pat}"));
    // Base64 that does not start with a digit's encoding is not one.
    not_found(
        "atlassian-legacy-api-token",
        &format!("JIRA_TOKEN=Z{}", random(26, 43, BASE64)),
    );
}

#[test]
fn bitbucket_prefixed_tokens() {
    let app = format!(
        "{}{}{}",
        p(&["AT", "BB"]),
        random(31, 24, ALNUM),
        random(32, 8, b"0123456789ABCDEF")
    );
    found(
        "bitbucket-app-password",
        &format!("git clone https://me:{app}@bitbucket.org/acme/app.git"),
    );
    not_found(
        "bitbucket-app-password",
        &format!("{}{}", p(&["AT", "BB"]), random(33, 20, ALNUM)),
    );
    not_found(
        "bitbucket-app-password",
        "ATBBREVIATIONSANDOTHERWORDSINCAPS",
    );
    use base64::Engine;
    let mut raw = random(34, 12, DIGITS).into_bytes();
    raw.push(b':');
    raw.extend(random(35, 20, ALNUM).bytes().map(|b| b ^ 0x33));
    let dc = format!(
        "{}{}",
        p(&["BB", "DC-"]),
        base64::engine::general_purpose::STANDARD.encode(&raw)
    );
    found(
        "bitbucket-data-center-token",
        &format!("Authorization: Bearer {dc}"),
    );
    not_found(
        "bitbucket-data-center-token",
        &format!("{}{}", p(&["BB", "DC-"]), random(36, 20, BASE64)),
    );
}

#[test]
fn cloudflare_origin_ca_three_groups() {
    let origin = format!(
        "{}{}-{}-{}",
        p(&["v1", ".0-"]),
        random(41, 64, HEX),
        random(42, 128, HEX),
        random(43, 64, HEX)
    );
    found(
        "cloudflare-origin-ca-key",
        &format!("X-Auth-User-Service-Key = {origin}"),
    );
    not_found(
        "cloudflare-origin-ca-key",
        &format!(
            "{}{}-{}",
            p(&["v1", ".0-"]),
            random(44, 64, HEX),
            random(45, 20, HEX)
        ),
    );
}

#[test]
fn databricks_suffix_is_one_digit() {
    let token = format!("{}{}", p(&["da", "pi"]), random(51, 32, HEX));
    found("databricks-token", &format!("x = \"{token}-3\""));
    not_found("databricks-token", &format!("x = \"{token}-30\""));
}

#[test]
fn sourcegraph_hex_in_either_case() {
    let upper = random(61, 40, b"0123456789ABCDEFabcdef");
    let id = random(62, 16, b"0123456789ABCDEF");
    found(
        "sourcegraph-access-token",
        &format!("{}{id}_{upper}", p(&["sg", "p_"])),
    );
    found(
        "sourcegraph-access-token",
        &format!(
            "environment(\"SRC_ACCESS_TOKEN\", \"{}{upper}\")",
            p(&["sg", "p_"])
        ),
    );
    not_found(
        "sourcegraph-access-token",
        &format!("{}{}", p(&["sg", "p_"]), random(63, 40, ALNUM)),
    );
}

#[test]
fn grafana_cloud_any_base64_body() {
    let token = format!("{}{}", p(&["gl", "c_"]), random(71, 32, LOWER_DIGITS));
    found_named("grafana-cloud-token", &["grafana", "token"], &token);
    // An identifier, a word run without digits.
    not_found(
        "grafana-cloud-token",
        "glc_config_loader_for_the_stack_module",
    );
    not_found(
        "grafana-cloud-token",
        &format!(
            "{}{}",
            p(&["gl", "c_"]),
            random(72, 40, b"abcdefghijklmnopqrstuvwxyz")
        ),
    );
}

#[test]
fn kubernetes_quoted_and_block_scalars() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let value = b64(&random(81, 30, ALNUM));
    let quoted = format!(
        "apiVersion: 'v1'\ndata:\n\tpassword: '{value}'\nkind: 'Secret'\nmetadata:\n\tname: db\n"
    );
    found("kubernetes-secret", &quoted);
    found("kubernetes-secret", &quoted.replace('\'', "\""));
    for scalar in ["|", ">", "|-"] {
        // kubectl's order, with metadata and type between data and kind.
        found(
            "kubernetes-secret",
            &format!(
                "apiVersion: v1\ndata:\n  .dockercfg: {scalar}\n    {value}\nmetadata:\n  name: reg\ntype: kubernetes.io/dockercfg\nkind: Secret\n"
            ),
        );
        found(
            "kubernetes-secret",
            &format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: reg\ndata:\n  .dockercfg: {scalar}\n    {value}\n"
            ),
        );
    }
    // Data before a ConfigMap's kind, even with metadata between; another document.
    not_found(
        "kubernetes-secret",
        &format!("apiVersion: v1\ndata:\n  cfg: {value}\nmetadata:\n  name: c\nkind: ConfigMap\n"),
    );
    not_found(
        "kubernetes-secret",
        &format!("apiVersion: v1\ndata:\n  cfg: {value}\n---\nkind: Secret\n"),
    );
}

#[test]
fn nuget_references_and_doc_samples() {
    found(
        "nuget-config-password",
        &format!(
            "<add key=\"ClearTextPassword\" value=\"{}%{}\" />",
            random(91, 8, ALNUM),
            random(92, 8, ALNUM)
        ),
    );
    not_found(
        "nuget-config-password",
        "<add key=\"ClearTextPassword\" value=\"%FEED_PASSWORD%\" />",
    );
    for sample in ["33f!!lloppa", "hal+9ooo_da!sY"] {
        not_found(
            "nuget-config-password",
            &format!("<add key=\"ClearTextPassword\" value=\"{sample}\" />"),
        );
    }
}

#[test]
fn curl_more_forms() {
    let password = random(101, 16, ALNUM);
    let token = random(102, 40, URLSAFE);
    for text in [
        // Continuation lines, in a shell and in comments.
        format!("$ curl https://api.acme.com/oauth2/token \\\n  --user {}:{password} --data grant_type=x", random(103, 15, LOWER_DIGITS)),
        format!("curl -k -X POST https://acme:11222/rest \\\n  -H 'Content-type: text/plain' \\\n  -d 'world' \\\n  -u developer:{password}\n"),
        format!("#curl -X POST \\\n#  https://api.acme.com/v3/messages \\\n#  -H 'Authorization: Basic {}' \\\n#  -F to='a@b.c'", random(104, 40, BASE64)),
        format!("curl -X GET \"https://api.acme.com/verify\" \\\n     -H \"Authorization: Bearer {token}\" \\\n     -H \"Content-Type:application/json\""),
        // Mixed quoting, an empty user, a key as the user with no password.
        format!("curl --user kevin:'{password}' -X PATCH https://acme.com"),
        format!("curl -u \":{password}\" https://localhost:9200"),
        format!("curl -u {}: https://api.acme.com/v1/charges", random(105, 24, ALNUM)),
        // Authorization without a scheme or with another one; other credential headers.
        format!("curl --header 'Authorization: {}'", uuid(106)),
        format!("curl -H \"Authorization: Api-Token {}\" https://acme.com", random(107, 40, HEX)),
        format!("curl -H \"apikey: {}\" https://acme.com", uuid(108)),
        format!("curl -X POST --header \"Api-Token: {}\"", random(109, 11, ALNUM)),
        format!("curl https://acme.com -H \"X-Octopus-ApiKey: {}\"", uuid(110)),
        format!("curl -H \"Token: {}\" https://acme.com", random(111, 16, HEX)),
    ] {
        found("curl-credentials", &text);
    }
    for text in [
        "curl -H \"Authorization: Api-Token $TOKEN\" https://acme.com",
        "curl -H \"Authorization: Negotiate\" https://acme.com",
        "curl -H \"X-Api-Key: ${API_KEY}\" https://acme.com",
        "curl -u username: https://acme.com",
        "curl -H \"Content-Type: application/json\" https://acme.com",
    ] {
        not_found("curl-credentials", text);
    }
    // A continuation ends at a line without a backslash.
    not_found(
        "curl-credentials",
        &format!("curl https://acme.com\n-u admin:{password}"),
    );
    found(
        "curl-credentials",
        &format!("curl https://acme.com \\\n-u admin:{password}"),
    );
}

#[test]
fn new_prefixed_infrastructure_tokens() {
    let cases = [
        (
            "castai-api-key",
            format!(
                "CASTAI_API_TOKEN={}{}_{}",
                p(&["castai", "_v1_"]),
                random(121, 64, HEX),
                random(122, 8, HEX)
            ),
        ),
        (
            "buildkite-api-token",
            format!(
                "BUILDKITE_API_TOKEN={}{}",
                p(&["bk", "ua_"]),
                random(123, 40, HEX)
            ),
        ),
        (
            "circleci-token",
            format!(
                "CIRCLE_TOKEN={}{}_{}",
                p(&["CCIP", "AT_"]),
                random(124, 22, ALNUM),
                random(125, 40, HEX)
            ),
        ),
        (
            "circleci-token",
            format!(
                "token: {}{}_{}",
                p(&["CCIP", "RJ_"]),
                random(126, 22, ALNUM),
                random(127, 40, HEX)
            ),
        ),
        (
            "vercel-token",
            format!(
                "VERCEL_TOKEN={}{}",
                p(&["vc", "p_"]),
                random(128, 56, ALNUM)
            ),
        ),
        (
            "vercel-token",
            format!(
                "\"refresh\": \"{}{}\"",
                p(&["vc", "r_"]),
                random(129, 56, ALNUM)
            ),
        ),
        (
            "supabase-token",
            format!(
                "SUPABASE_ACCESS_TOKEN={}{}",
                p(&["sb", "p_"]),
                random(130, 40, HEX)
            ),
        ),
        (
            "supabase-token",
            format!(
                "SUPABASE_SECRET_KEY={}{}_{}",
                p(&["sb_", "secret_"]),
                random(131, 22, URLSAFE),
                random(132, 8, ALNUM)
            ),
        ),
        (
            "mongodb-atlas-service-account-secret",
            format!(
                "MDB_MCP_API_CLIENT_SECRET={}{}",
                p(&["mdb_sa", "_sk_"]),
                random(133, 40, URLSAFE)
            ),
        ),
        (
            "docker-swarm-token",
            format!(
                "docker swarm join --token {}{}-{} 10.0.0.1:2377",
                p(&["SWM", "TKN-1-"]),
                random(134, 50, LOWER_DIGITS),
                random(135, 25, LOWER_DIGITS)
            ),
        ),
        (
            "docker-swarm-token",
            format!(
                "docker swarm unlock-key: {}{}",
                p(&["SWM", "KEY-1-"]),
                random(136, 43, BASE64)
            ),
        ),
        (
            "azure-data-factory-ir-key",
            format!(
                "{}{}@adf-app-001@we@{}=",
                p(&["I", "R@"]),
                uuid(137),
                random(138, 43, BASE64)
            ),
        ),
        (
            "cursor-api-key",
            format!(
                "CURSOR_API_KEY={}{}",
                p(&["ke", "y_"]),
                random(139, 64, HEX)
            ),
        ),
    ];
    for (rule, text) in &cases {
        found(rule, text);
    }
    // Too short, a placeholder, or inside a longer name.
    let misses = [
        (
            "castai-api-key",
            format!("{}{}", p(&["castai", "_v1_"]), random(140, 64, HEX)),
        ),
        (
            "buildkite-api-token",
            format!("{}{}", p(&["bk", "ua_"]), "0".repeat(40)),
        ),
        (
            "circleci-token",
            format!("{}{}", p(&["CCIP", "AT_"]), random(141, 40, HEX)),
        ),
        (
            "vercel-token",
            format!("{}{}", p(&["vc", "p_"]), random(142, 20, ALNUM)),
        ),
        (
            "vercel-token",
            format!(
                "{}{}",
                p(&["vc", "p_"]),
                random(143, 56, b"abcdefghijklmnopqrstuvwxyz")
            ),
        ),
        (
            "supabase-token",
            format!(
                "{}{}",
                p(&["sb_", "publishable_"]),
                random(144, 31, URLSAFE)
            ),
        ),
        (
            "supabase-token",
            format!("{}{}", p(&["sb", "p_"]), random(145, 40, ALNUM)),
        ),
        (
            "mongodb-atlas-service-account-secret",
            format!("{}{}", p(&["mdb_sa", "_id_"]), random(146, 40, URLSAFE)),
        ),
        (
            "docker-swarm-token",
            format!("{}{}", p(&["SWM", "TKN-1-"]), random(147, 50, LOWER_DIGITS)),
        ),
        (
            "azure-data-factory-ir-key",
            format!("{}{}@adf@we@short=", p(&["I", "R@"]), uuid(148)),
        ),
        (
            "cursor-api-key",
            format!("cache_{}{}", p(&["ke", "y_"]), random(149, 64, HEX)),
        ),
        (
            "cursor-api-key",
            format!("{}{}", p(&["ke", "y_"]), random(150, 40, HEX)),
        ),
    ];
    for (rule, text) in &misses {
        not_found(rule, text);
    }
}

#[test]
fn registry_credentials_in_config_files() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let auth = b64(&format!("robot:{}", random(161, 24, ALNUM)));
    found(
        "docker-config-auth",
        &format!("{{\n  \"auths\": {{\n    \"registry.acme.com\": {{\n      \"auth\": \"{auth}\"\n    }}\n  }}\n}}"),
    );
    found(
        "docker-config-auth",
        &format!("{{\"auths\":{{\"index.docker.io/v1/\":{{\"auth\":\"{auth}\"}}}}}}"),
    );
    not_found("docker-config-auth", &format!("{{\"auth\": \"{auth}\"}}"));
    not_found(
        "docker-config-auth",
        "{\"auths\": {\"registry.acme.com\": {}}, \"credsStore\": \"desktop\"}",
    );

    found(
        "npmrc-auth",
        &format!("registry=https://npm.acme.com/\n//npm.acme.com/api/npm/:_auth={auth}\n"),
    );
    found("npmrc-auth", &format!("_auth = \"{auth}\"\n"));
    found(
        "npmrc-auth",
        &format!(
            "//npm.acme.com/:username=ci\n//npm.acme.com/:_password={}\n",
            b64(&random(162, 18, ALNUM))
        ),
    );
    not_found("npmrc-auth", "//npm.acme.com/:_auth=${NPM_AUTH}\n");
    not_found("npmrc-auth", &format!("self._password = \"{auth}\"\n"));

    let robot = random(163, 64, UPPER_DIGITS);
    found("quay-robot-token", &format!("QUAY_ROBOT_TOKEN={robot}"));
    found(
        "quay-robot-token",
        &format!("docker login -u=\"acme+deployer\" -p=\"{robot}\" quay.io"),
    );
    found(
        "quay-robot-token",
        &format!("docker login quay.io -u acme+ci --password {robot}"),
    );
    not_found("quay-robot-token", &format!("QUAY_ORGANIZATION={robot}"));
    not_found(
        "quay-robot-token",
        &format!("QUAY_TOKEN={}", random(164, 40, UPPER_DIGITS)),
    );
}

#[test]
fn vault_unseal_and_atlas_keys() {
    use base64::Engine;
    let share: Vec<u8> = random(171, 33, ALNUM).bytes().map(|b| b ^ 0x6c).collect();
    let key = base64::engine::general_purpose::STANDARD.encode(&share);
    found(
        "vault-unseal-key",
        &format!("Unseal Key 2: {key}\nUnseal Key 3: x"),
    );
    found(
        "vault-unseal-key",
        &format!("kubectl exec -ti vault-0 -- vault operator unseal {key}"),
    );
    found(
        "vault-unseal-key",
        &format!("vault operator unseal -address=https://v:8200 '{key}'"),
    );
    not_found("vault-unseal-key", "Unseal Key 1: <redacted>");
    not_found("vault-unseal-key", "vault operator unseal -migrate");

    found_named(
        "mongodb-atlas-api-private-key",
        &["mongodb", "atlas", "private", "key"],
        &uuid(172),
    );
    not_found(
        "mongodb-atlas-api-private-key",
        &format!("ATLAS_PROJECT_ID={}", uuid(173)),
    );
}

#[test]
fn circleci_legacy() {
    let token = random(181, 40, HEX);
    found_named(
        "circleci-legacy-token",
        &["circleci", "api", "token"],
        &token,
    );
    found_named("circleci-legacy-token", &["circle", "token"], &token);
    not_found("circleci-legacy-token", &format!("CIRCLE_SHA1={token}"));
    not_found(
        "circleci-legacy-token",
        &format!("CIRCLE_WORKFLOW_ID={token}"),
    );
    not_found(
        "circleci-legacy-token",
        &format!("CIRCLECI_TOKEN={}", random(182, 32, HEX)),
    );
}
