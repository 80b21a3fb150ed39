//! Positives and near-miss negatives for every built-in rule.
//!
//! Keys are generated at test time from the documented shapes (prefix, alphabet, length),
//! so this file holds nothing a scanner would flag.

use super::matcher::Matcher;
use super::rules::builtin;
use super::Scanner;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const DIGITS: &[u8] = b"0123456789";

/// `n` characters from `alphabet`, the same on every run for a given `seed`.
fn random(seed: u64, n: usize, alphabet: &[u8]) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|_| alphabet[rng.usize(..alphabet.len())] as char)
        .collect()
}

/// The built-in rules, compiled once for all tests.
fn scanner() -> &'static Scanner {
    static SCANNER: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
    SCANNER.get_or_init(|| Scanner {
        matcher: Matcher::new(&builtin()).unwrap(),
        vault: None,
    })
}

/// The rule ids found in `text`.
fn rules_in(text: &str) -> Vec<String> {
    scanner()
        .scan("t", text.as_bytes(), None)
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

#[track_caller]
fn found(rule: &str, text: &str) {
    let rules = rules_in(text);
    assert!(
        rules.iter().any(|r| r == rule),
        "{rule} not found in {text:?}: {rules:?}"
    );
}

#[track_caller]
fn not_found(rule: &str, text: &str) {
    let rules = rules_in(text);
    assert!(
        !rules.iter().any(|r| r == rule),
        "{rule} wrongly found in {text:?}"
    );
}

/// The OpenAI marker, base64 of "OpenAI", split so that it is built at run time.
fn marker() -> String {
    ["T3Bl", "bkFJ"].concat()
}

#[test]
fn openai() {
    let m = marker();
    let legacy = format!("sk-{}{m}{}", random(1, 20, ALNUM), random(2, 20, ALNUM));
    found("openai-api-key", &format!("OPENAI_API_KEY={legacy}\n"));
    for (seed, kind, side) in [(3, "proj", 74), (4, "svcacct", 74), (5, "admin", 58)] {
        let key = format!(
            "sk-{kind}-{}{m}{}",
            random(seed, side, URLSAFE),
            random(seed + 10, side, URLSAFE)
        );
        found(
            "openai-api-key",
            &format!("client = OpenAI(api_key=\"{key}\")"),
        );
    }
    // No marker: some other sk- string.
    not_found(
        "openai-api-key",
        &format!("x = \"sk-{}\"", random(6, 48, ALNUM)),
    );
    // The marker, but runs too short to be a key.
    not_found("openai-api-key", &format!("sk-abc{m}def"));
    // A key cut in the middle of a longer word is not this rule's.
    not_found(
        "openai-api-key",
        &format!("task-{}{m}{}", random(7, 20, ALNUM), "short"),
    );
}

#[test]
fn anthropic() {
    for (seed, kind) in [(1, "api03"), (2, "admin01")] {
        let key = format!("sk-ant-{kind}-{}AA", random(seed, 93, URLSAFE));
        found("anthropic-api-key", &format!("ANTHROPIC_API_KEY='{key}'"));
    }
    // The length and the final "AA" may change; the versioned prefix says enough.
    found(
        "anthropic-api-key",
        &format!("key: sk-ant-api04-{}", random(4, 95, URLSAFE)),
    );
    not_found(
        "anthropic-api-key",
        &format!("sk-ant-api03-{}AA", random(3, 40, URLSAFE)),
    );
    not_found(
        "anthropic-api-key",
        &format!("sk-ant-{}", random(5, 95, URLSAFE)),
    );
    not_found("anthropic-api-key", "ANTHROPIC_API_KEY=sk-ant-api03-...");
}

#[test]
fn aws_pair() {
    let id = format!("AKIA{}", random(1, 16, BASE32));
    let secret = random(2, 40, BASE64);
    let text = format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n");
    let rules = rules_in(&text);
    assert_eq!(
        rules,
        ["aws-access-key-id", "aws-secret-access-key"],
        "{text}"
    );
    found(
        "aws-access-key-id",
        &format!("\"ASIA{}\"", random(3, 16, BASE32)),
    );
    // Written with the wrong alphabet (0, 1, 8, 9 are not base32): still a key id.
    found(
        "aws-access-key-id",
        &format!("AWS_ACCESS_KEY_ID=AKIA{}0", random(9, 15, UPPER_DIGITS)),
    );
    // AWS's own documentation example, and ids of the wrong length or alphabet.
    not_found(
        "aws-access-key-id",
        &format!("AKIA{}", ["IOSFODNN7", "EXAMPLE"].concat()),
    );
    not_found(
        "aws-access-key-id",
        &format!("AKIA{}", random(4, 15, BASE32)),
    );
    not_found(
        "aws-access-key-id",
        &format!("AKIA{}", random(5, 16, b"abcdefgh")),
    );
    // 40 characters of low entropy, or under another name.
    not_found(
        "aws-secret-access-key",
        &format!("aws_secret_access_key = {}", "a".repeat(40)),
    );
    not_found("aws-secret-access-key", &format!("checksum = {secret}"));
}

#[test]
fn aws_pair_is_linked_and_found_without_a_name_next_to_its_key_id() {
    let id = format!("AKIA{}", random(6, 16, BASE32));
    let secret = random(7, 40, BASE64);
    let descriptions = |text: &str| -> Vec<(String, String)> {
        scanner()
            .scan("t", text.as_bytes(), None)
            .into_iter()
            .map(|f| (f.rule, f.description))
            .collect()
    };
    // A downloaded credentials CSV and a client constructor: no name on the secret.
    for text in [
        format!("User name,Access key ID,Secret access key\nbob,{id},{secret}\n"),
        format!("client = boto3.client(\n    \"s3\",\n    \"{id}\",\n    \"{secret}\",\n)\n"),
        format!("[default]\naws_secret_access_key = {secret}\naws_access_key_id = {id}\n"),
    ] {
        let mut found = descriptions(&text);
        found.sort();
        assert_eq!(found.len(), 2, "{text}: {found:?}");
        assert_eq!(found[0].0, "aws-access-key-id", "{text}");
        assert_eq!(found[1].0, "aws-secret-access-key", "{text}");
        assert!(
            found[0]
                .1
                .contains(&format!("paired with {}…", &secret[..4]))
                && found[1].1.contains("paired with AKIA…"),
            "{found:?}"
        );
    }
    // A lone key id is still found; a hex digest or a low-entropy run next to it is no secret.
    let lone = descriptions(&format!("id = \"{id}\"\n"));
    assert_eq!(
        lone,
        [("aws-access-key-id".into(), "AWS access key ID".into())]
    );
    let digest = random(8, 40, b"0123456789abcdef");
    let near_misses = format!(
        "id = \"{id}\"\nsha = \"{digest}\"\npad = \"{}\"\n",
        "ab".repeat(20)
    );
    assert_eq!(rules_in(&near_misses), ["aws-access-key-id"]);
    // Far from any key id, an unnamed 40-character token is not one.
    let far = format!("id = \"{id}\"\n{}x = \"{secret}\"\n", "\n".repeat(5));
    assert_eq!(rules_in(&far), ["aws-access-key-id"]);
}

#[test]
fn github() {
    for (seed, prefix) in [
        (1, "ghp_"),
        (2, "gho_"),
        (3, "ghu_"),
        (4, "ghs_"),
        (5, "ghr_"),
    ] {
        found(
            "github-token",
            &format!("token: {prefix}{}", random(seed, 36, ALNUM)),
        );
    }
    let fine = format!(
        "github_pat_{}_{}",
        random(6, 22, ALNUM),
        random(7, 59, ALNUM)
    );
    found("github-fine-grained-token", &format!("GH_TOKEN={fine}"));
    found(
        "github-fine-grained-token",
        &format!("GH_TOKEN=github_pat_{}", random(11, 82, ALNUM)),
    );
    not_found("github-token", &format!("ghp_{}", random(8, 20, ALNUM)));
    not_found("github-token", &format!("ghx_{}", random(9, 36, ALNUM)));
    not_found(
        "github-fine-grained-token",
        &format!("github_pat_{}", random(10, 30, ALNUM)),
    );
}

#[test]
fn gitlab() {
    found(
        "gitlab-token",
        &format!("GITLAB_TOKEN=glpat-{}", random(1, 20, URLSAFE)),
    );
    found("gitlab-token", &format!("gldt-{}", random(2, 20, ALNUM)));
    not_found("gitlab-token", &format!("glpat-{}", random(3, 10, ALNUM)));
    not_found(
        "gitlab-token",
        "see https://docs.gitlab.com/ee/user/profile/personal_access_tokens.html (glpat-)",
    );
}

#[test]
fn slack() {
    let bot = format!(
        "xoxb-{}-{}-{}",
        random(1, 12, DIGITS),
        random(2, 13, DIGITS),
        random(3, 24, ALNUM)
    );
    found("slack-token", &format!("SLACK_BOT_TOKEN={bot}"));
    let user = format!(
        "xoxp-{}-{}-{}-{}",
        random(4, 11, DIGITS),
        random(5, 11, DIGITS),
        random(6, 12, DIGITS),
        random(7, 32, b"0123456789abcdef")
    );
    found("slack-token", &user);
    let hook = format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        random(8, 8, UPPER_DIGITS),
        random(9, 10, UPPER_DIGITS),
        random(10, 24, ALNUM)
    );
    found("slack-webhook", &format!("url = \"{hook}\""));
    not_found("slack-token", "SLACK_BOT_TOKEN=xoxb-your-bot-token-here");
    not_found(
        "slack-webhook",
        "https://hooks.slack.com/services/T000/B000/XXXX",
    );
}

#[test]
fn stripe() {
    found(
        "stripe-secret-key",
        &format!("Stripe.api_key = 'sk_live_{}'", random(1, 24, ALNUM)),
    );
    found(
        "stripe-secret-key",
        &format!("rk_live_{}", random(2, 99, ALNUM)),
    );
    // A test-mode secret key opens the account's test data and settings: still a secret.
    found(
        "stripe-secret-key",
        &format!("sk_test_{}", random(3, 24, ALNUM)),
    );
    // Publishable keys are meant for browsers.
    not_found(
        "stripe-secret-key",
        &format!("pk_live_{}", random(5, 24, ALNUM)),
    );
    not_found(
        "stripe-secret-key",
        &format!("sk_live_{}", random(4, 10, ALNUM)),
    );
}

#[test]
fn google() {
    found(
        "google-api-key",
        &format!("key=AIza{}&q=x", random(1, 35, URLSAFE)),
    );
    not_found("google-api-key", &format!("AIza{}", random(2, 20, URLSAFE)));
    not_found("google-api-key", &format!("AIza{}", random(3, 40, ALNUM)));
}

#[test]
fn hugging_face() {
    found(
        "huggingface-token",
        &format!("HF_TOKEN=hf_{}", random(1, 34, ALNUM)),
    );
    not_found(
        "huggingface-token",
        "from huggingface_hub import hf_hub_download",
    );
    found(
        "huggingface-token",
        &format!("token = \"hf_{}\"", random(2, 37, ALNUM)),
    );
    not_found("huggingface-token", &format!("hf_{}", "a".repeat(34)));
    not_found("huggingface-token", &format!("hf_{}", random(3, 30, ALNUM)));
}

#[test]
fn private_keys() {
    let body: String = (0..6)
        .map(|i| format!("{}\n", random(i, 64, BASE64)))
        .collect();
    for kind in [
        "RSA PRIVATE KEY",
        "PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "EC PRIVATE KEY",
    ] {
        let block = format!("-----BEGIN {kind}-----\n{body}-----END {kind}-----\n");
        found("private-key", &format!("key = \"\"\"\n{block}\"\"\""));
    }
    let encrypted = format!(
        "-----BEGIN RSA {k}-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{}\n\n{body}-----END RSA {k}-----\n",
        random(7, 32, b"0123456789ABCDEF"),
        k = "PRIVATE KEY"
    );
    found("private-key", &encrypted);
    // Escaped line breaks in a JSON string: a Google service account key file.
    let json = format!(
        "{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN {k}-----\\n{}-----END {k}-----\\n\"}}",
        body.replace('\n', "\\n"),
        k = "PRIVATE KEY"
    );
    found("private-key", &json);
    let armour_only = format!(
        "\"-----BEGIN {k}-----\\n-----END {k}-----\\n\"",
        k = "PRIVATE KEY"
    );
    not_found("private-key", &armour_only);
    // The armour alone, as parsers and docs write it.
    not_found(
        "private-key",
        &format!("if line == \"-----BEGIN {}-----\" {{", "PRIVATE KEY"),
    );
    let public = format!("-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n");
    not_found("private-key", &public);
}

#[test]
fn database_urls() {
    let password = random(1, 20, ALNUM);
    found(
        "database-url",
        &format!("DATABASE_URL=postgres://app:{password}@db.internal:5432/app"),
    );
    found(
        "database-url",
        &format!("mongodb+srv://admin:{password}@cluster0.example.net/test"),
    );
    found(
        "database-url",
        &format!("redis://default:{password}@cache:6379/0"),
    );
    // A word inside a real password does not make it a placeholder.
    for password in ["supersecret42", "s3cret", "hunter22"] {
        found(
            "database-url",
            &format!("postgresql://admin:{password}@db.internal:5432/prod"),
        );
    }
    not_found("database-url", "postgres://user:password@localhost/app");
    not_found("database-url", "postgres://user:PASSWORD@localhost/app");
    not_found("database-url", "mysql://root:changeme@db/app");
    not_found("database-url", "mysql://root:secret@db/app");
    not_found("database-url", "postgres://app:$POSTGRES_PASSWORD@db/app");
    not_found("database-url", "postgres://user:%(password)s@db/app");
    not_found("database-url", "postgres://app:${DB_PASSWORD}@db/app");
    not_found("database-url", "postgres://localhost:5432/app");
    not_found("database-url", "mysql://root:<password>@127.0.0.1/db");
}

#[test]
fn jwt() {
    use base64::Engine;
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = format!(
        "{}.{}.{}",
        encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        encode(r#"{"sub":"1234567890","name":"Jane","iat":1716239022}"#),
        random(1, 43, URLSAFE)
    );
    found("jwt", &format!("Authorization: Bearer {token}"));
    not_found(
        "jwt",
        &format!("prefix = \"{}\"", encode(r#"{"alg":"HS256"}"#)),
    );
    let unsigned = token.rsplit_once('.').unwrap().0;
    not_found("jwt", &format!("\"{unsigned}\""));
}

#[test]
fn generic_assignments() {
    let value = random(1, 32, ALNUM);
    found("generic-secret", &format!("API_KEY = \"{value}\""));
    found("generic-secret", &format!("  db_password: {value}\n"));
    found("generic-secret", &format!("const authToken = '{value}';"));
    found(
        "generic-secret",
        &format!("{{\"client_secret\": \"{value}\"}}"),
    );
    // Passwords and Django secret keys hold symbols.
    found(
        "generic-secret",
        &format!(
            "DB_PASSWORD = \"{}!{}$^\"",
            random(21, 10, ALNUM),
            random(22, 8, ALNUM)
        ),
    );
    found(
        "generic-secret",
        &format!(
            "SECRET_KEY = 'django-insecure-{}*@{}'",
            random(23, 20, ALNUM),
            random(24, 20, ALNUM)
        ),
    );
    not_found(
        "generic-secret",
        "// https://user:pass@domain.com:9742/path?key=val&key2=val2#fragment",
    );
    // A notebook's source lines are JSON strings: their quotes are escaped.
    found(
        "generic-secret",
        &format!("    \"client_secret = \\\"{value}\\\"\\n\","),
    );
    found(
        "generic-secret",
        &format!("\"env\": \"PASSWORD={value}\\nDEBUG=1\""),
    );
    not_found(
        "generic-secret",
        "    \"api_key = \\\"get_api_key_from_environment\\\"\\n\",",
    );
    not_found("generic-secret", "api_key = get_api_key_from_environment()");
    not_found("generic-secret", "token = \"your_token_here_12345\"");
    not_found("generic-secret", "password = \"aaaaaaaaaaaaaaaaaaaaaaaa1\"");
    not_found(
        "generic-secret",
        "secret_name = \"production-database-credentials\"",
    );
    not_found("generic-secret", &format!("checksum = \"{value}\""));
    // Rust constants and fields: a name, a colon, and a type or constant name.
    not_found(
        "generic-secret",
        "pub const NL80211_KEY_MAX: nl80211_key_attributes = 1;",
    );
    not_found(
        "generic-secret",
        "pub const CredKey: MSV1_0_CREDENTIAL_KEY_TYPE = 2i32;",
    );
    not_found(
        "generic-secret",
        "pub const PrivateKeyFlag: X509CertificateTemplateFlag = 1;",
    );
    not_found(
        "generic-secret",
        "let token: SecretString = created.auth.client_token.0;",
    );
    // Random text with underscores is still a secret.
    found(
        "generic-secret",
        &format!("token: {}_{}", random(2, 12, ALNUM), random(3, 12, ALNUM)),
    );
}

#[test]
fn positions_previews_and_inline_allow() {
    let key = format!("ghp_{}", random(1, 36, ALNUM));
    let text = format!("first line\n  x = \"{key}\"\ny = \"{key}\"  # keywrap:allow\n");
    let findings = scanner().scan("src/app.py", text.as_bytes(), None);
    assert_eq!(findings.len(), 1, "the allowed line is left out");
    let finding = &findings[0];
    assert_eq!((finding.line, finding.column), (2, 8));
    assert_eq!(finding.preview, "ghp_… (40 chars)");
    assert_eq!(finding.file, "src/app.py");
    assert_eq!(finding.fingerprint.len(), 64);
    assert!(!serde_json::to_string(finding).unwrap().contains(&key[4..]));
}

#[test]
fn user_rules_need_no_keywords() {
    let mut rules = builtin();
    super::rules::merge(
        &mut rules,
        vec![super::rules::Rule {
            id: "acme".into(),
            description: "Acme key".into(),
            regex: "acme_[0-9]{8}".into(),
            keywords: Vec::new(),
            group: None,
            entropy: None,
            multiline: false,
            stopwords: Vec::new(),
            placeholders: Vec::new(),
            require_digit: false,
            fallback: false,
            reject_identifiers: false,
            near: None,
            near_regex: None,
        }],
    )
    .unwrap();
    let scanner = Scanner {
        matcher: Matcher::new(&rules).unwrap(),
        vault: None,
    };
    let findings = scanner.scan("t", format!("k={}", "acme_12345678").as_bytes(), None);
    assert_eq!(findings[0].rule, "acme");
}
