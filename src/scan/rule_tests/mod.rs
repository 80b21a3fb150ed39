//! Positives and near-miss negatives for every built-in rule.
//!
//! Keys are generated at test time from the documented shapes (prefix, alphabet, length),
//! so this file holds nothing a scanner would flag.

mod infrastructure;
mod payments_messaging;
mod saas;

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

/// A name in the case of its context: `["cloudflare", "api", "key"]` as
/// CLOUDFLARE_API_KEY, cloudflare_api_key or cloudflareApiKey.
struct Name {
    upper: String,
    snake: String,
    camel: String,
}

fn name(words: &[&str]) -> Name {
    let snake = words.join("_");
    let camel = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_string()
            } else {
                w[..1].to_ascii_uppercase() + &w[1..]
            }
        })
        .collect();
    Name {
        upper: snake.to_ascii_uppercase(),
        snake,
        camel,
    }
}

/// `value` assigned to `name` in each of the contexts a rule for a key without a prefix
/// must find it in (env files, shells, YAML, JSON, Go, Python, JavaScript, PHP, Makefiles,
/// Java properties set in code, XML elements, also with the value on the next line).
fn named_contexts(name: &Name, value: &str) -> Vec<String> {
    let Name {
        upper,
        snake,
        camel,
    } = name;
    vec![
        format!("{upper}={value}\n"),
        format!("export {upper}=\"{value}\"\n"),
        format!("  {snake}: {value}\n"),
        format!("{{\"{snake}\": \"{value}\"}}"),
        format!("var {camel} string = \"{value}\""),
        format!("{camel} := `{value}`"),
        format!("{snake} = '{value}'"),
        format!("const {camel} = \"{value}\";"),
        format!("${camel} .= \"{value}\";"),
        format!("{upper} ?= {value}"),
        format!("{upper} := {value}"),
        format!("{upper} ::= {value}"),
        format!("{upper} :::= {value}"),
        format!("System.setProperty(\"{upper}\", \"{value}\");"),
        format!("<{camel}>{value}</{camel}>"),
        // The engine brings the line after one ending in `>` into the region.
        format!("<config>\n  <{camel}>\n    {value}\n  </{camel}>\n</config>"),
    ]
}

/// [`named_contexts`] for the name made of `words`.
fn contexts(words: &[&str], value: &str) -> Vec<String> {
    named_contexts(&name(words), value)
}

/// `rule`, and no other rule, finds `text`.
#[track_caller]
fn only(rule: &str, text: &str) {
    assert_eq!(rules_in(text), [rule], "in {text:?}");
}

/// `rule` alone finds `value` under the name `words` in every context.
#[track_caller]
fn found_in_contexts(rule: &str, words: &[&str], value: &str) {
    for text in contexts(words, value) {
        only(rule, &text);
    }
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
    // In another version the length and the final "AA" may change: its prefix says enough.
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
    // A current version's key is 93 characters and "AA"; other endings or lengths are not
    // its keys. Another version's may be any 80 to 120.
    for kind in ["api03", "admin01"] {
        not_found(
            "anthropic-api-key",
            &format!("sk-ant-{kind}-{}BB", random(6, 93, URLSAFE)),
        );
        not_found(
            "anthropic-api-key",
            &format!("sk-ant-{kind}-{}AA", random(7, 90, URLSAFE)),
        );
    }
    found(
        "anthropic-api-key",
        &format!("sk-ant-admin02-{}", random(8, 100, URLSAFE)),
    );
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
            found[0].1.contains("paired with (hidden)")
                && found[1].1.contains("paired with AKIA… (20 chars)"),
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
    // Indented in a YAML block scalar.
    let indented: String = format!(
        "-----BEGIN {k}-----\n{body}-----END {k}-----\n",
        k = "EC PRIVATE KEY"
    )
    .lines()
    .map(|line| format!("    {line}\n"))
    .collect();
    found("private-key", &format!("tls:\n  key: |\n{indented}"));
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
    // The user name as the password is an image's documented default.
    not_found("database-url", "postgres://postgres:postgres@localhost/app");
    not_found("database-url", "postgresql://user:user@no_connection/db");
    found(
        "database-url",
        &format!("postgres://postgres:{password}@localhost/app"),
    );
}

#[test]
fn jdbc_urls_and_connection_strings() {
    let password = format!("{}!", random(91, 14, ALNUM));
    found(
        "database-url",
        &format!("CONNECTION_URI=\"postgis://gis:{password}@db:5432/maps\""),
    );
    found(
        "jdbc-password",
        &format!("url=jdbc:postgresql://db.internal:5432/app?user=app&password={password}"),
    );
    found(
        "jdbc-password",
        &format!("jdbc:sqlserver://sql.internal:1433;databaseName=inv;user=sa;password={password}"),
    );
    for placeholder in [
        "${DB_PASSWORD}",
        "changeme",
        "secret",
        "<password>",
        "%s",
        "…",
    ] {
        not_found(
            "jdbc-password",
            &format!("jdbc:mysql://db/app?user=app&password={placeholder}"),
        );
    }
    not_found(
        "jdbc-password",
        "jdbc:postgresql://db.internal:5432/app?user=app",
    );
    found(
        "connection-string-password",
        &format!("new SqlConnection(\"Server=prod;Database=app;User Id=sa;Password={password}\")"),
    );
    found(
        "connection-string-password",
        &format!("'Server=db;Uid=root;Pwd={password};Database=mydb'"),
    );
    for placeholder in ["{0}", "$(DB_PASSWORD)", "myPassword", "xxx", "%s", "…"] {
        not_found(
            "connection-string-password",
            &format!("\"Server=db;User Id=sa;Password={placeholder};\""),
        );
    }
    // A password alone, with no other part of a connection string, is not one.
    not_found(
        "connection-string-password",
        &format!("password={password}"),
    );
    not_found(
        "connection-string-password",
        "\"Server=db;User Id=sa;Password=\" + password",
    );
}

#[test]
fn android_build_config_fields() {
    let key = random(92, 32, b"0123456789abcdef");
    found(
        "generic-secret-call",
        &format!("buildConfigField \"String\", \"API_KEY\", \"\\\"{key}\\\"\""),
    );
    found(
        "generic-secret-call",
        &format!("buildConfigField(\"String\", \"MAPS_API_KEY\", \"\\\"{key}\\\"\")"),
    );
    found(
        "generic-secret-call",
        &format!("buildConfigField 'String' , 'API_KEY' , '\"{key}\"'"),
    );
    // Not a secret's name, or not a string.
    not_found(
        "generic-secret-call",
        &format!("buildConfigField \"String\", \"BASE_URL\", \"\\\"{key}\\\"\""),
    );
    not_found(
        "generic-secret-call",
        "buildConfigField \"boolean\", \"USE_KEY\", \"true\"",
    );
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
    // A header that is no JSON object naming its algorithm is no issued token's: cut
    // before its `}`, or without `alg`.
    let payload = token.split('.').nth(1).unwrap();
    let signature = token.rsplit('.').next().unwrap();
    for header in [
        r#"{"alg":"HS256","typ":"JWT""#,
        r#"{"typ":"JWT","kid":"k1"}"#,
    ] {
        not_found(
            "jwt",
            &format!("Bearer {}.{payload}.{signature}", encode(header)),
        );
    }
    // One character changed inside a header (documentation defacing a real token) leaves
    // its shape, and it is still reported.
    let defaced = encode(r#"{"alg":"HS256",\u0012typ":"JWT"}"#);
    found("jwt", &format!("Bearer {defaced}.{payload}.{signature}"));
}

/// The rule ids found in `text` as the contents of a file named `path`.
fn rules_in_file(path: &str, text: &str) -> Vec<String> {
    scanner()
        .scan(path, text.as_bytes(), None)
        .into_iter()
        .map(|f| f.rule)
        .collect()
}

/// A password as people type them: letters, digits and symbols no name or path holds.
fn typed_password(seed: u64) -> String {
    format!(
        "{};{},{}#",
        random(seed, 5, ALNUM),
        random(seed + 1, 4, ALNUM),
        random(seed + 2, 3, DIGITS)
    )
}

#[test]
fn secrets_with_symbols() {
    let password = typed_password(40);
    for text in [
        format!("DB_PASSWORD = \"{password}\""),
        format!("db_passwordToken := `{password}`"),
        format!("$db_password .= '{password}'"),
        format!("apikey \"{password}\";"),
        format!("fooapikeyfoo\"{password}\";"),
        format!("some_dict[\"secret\"] = \"{password}\""),
        format!("apikey = @\"{password}\""),
        format!("apikey[]= \"{password}\""),
        format!("System.setProperty(\"DB_PASSWORD\", \"{password}\")"),
    ] {
        found("secret-with-symbols", &text);
        assert_eq!(
            rules_in_file("src/app.py", &text),
            rules_in(&text),
            "{text}"
        );
    }
    found(
        "secret-with-symbols",
        &format!("<db_password>  {password} </db_password>"),
    );
    found(
        "secret-with-symbols",
        &format!("{{\"config.ini\": \"DB_PASSWORD={password}\\nDEBUG=1\"}}"),
    );
    // Unquoted: a literal in a configuration file, an expression in source code.
    let bare = format!("my_password = {password}\n");
    found("secret-with-symbols", &bare);
    assert!(rules_in_file("deploy/app.env", &bare).contains(&"secret-with-symbols".into()));
    assert!(rules_in_file("src/app.py", &bare).is_empty());
    assert!(rules_in_file("cmd/main.go", &bare).is_empty());
    // In YAML `{{` opens a template, whatever follows it.
    let braced = format!("password: \"{{{{{}}}}}\"", typed_password(43));
    found("secret-with-symbols", &braced);
    assert!(rules_in_file("chart/values.yaml", &braced).is_empty());
    assert!(!rules_in_file("app.conf", &braced).is_empty());
    // A value generic-secret takes is reported once, by it.
    let generic = format!(
        "DB_PASSWORD = \"{}!{}$^\"",
        random(44, 10, ALNUM),
        random(45, 8, ALNUM)
    );
    assert_eq!(rules_in(&generic), ["generic-secret"]);
    for text in [
        "password = \"${DB_PASSWORD}\"".to_owned(),
        "DB_PASSWORD: ${DB_PASSWORD:-secret}".to_owned(),
        "password = \"{{ .Values.db.password }}\"".to_owned(),
        "password=ENC(G6N718UuyPE5bHyWKyuLQSm02auQPUtm)".to_owned(),
        "PASSWORD_PATTERN = \"^(?=.*[A-Z])(?=.*\\d).{8,}$\"".to_owned(),
        "\"password\": \"pass%5B%7F%20word\"".to_owned(),
        "password = \"********\"".to_owned(),
        "password: <your-password>".to_owned(),
        "\"passwordRequired\": \"Required!\"".to_owned(),
        "secret_url = \"https://vault.test/v1/kv?x=1&y=2\"".to_owned(),
        "private_key: rsa.RSAPrivateKey,".to_owned(),
        "fn::secret: ops_eyJzaWduSW5B..[Redacted]".to_owned(),
        "private_key '\"no spaces';".to_owned(),
        format!("private_key \"{password}';"),
        format!("public_key = \"{password}\""),
        "Verifier=TXlWZXJpZmllcg,Salt=TXlTYWx0".to_owned(),
        "password.policy=minLength:8,upper:1".to_owned(),
        "password: required|min:8|confirmed".to_owned(),
        "password_hash: $$2y$$10$$Zq7;vR,p0u4Xb".to_owned(),
    ] {
        not_found("secret-with-symbols", &text);
    }
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
            ..Default::default()
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

const HEX: &[u8] = b"0123456789abcdef";
const LOWER_DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A prefix built at run time, so that this file holds no literal token start a scanner
/// would pair with the random parts below.
fn p(parts: &[&str]) -> String {
    parts.concat()
}

#[test]
fn npm_pypi_clojars() {
    let npm = format!("{}{}", p(&["npm", "_"]), random(1, 36, ALNUM));
    found(
        "npm-token",
        &format!("//registry.npmjs.org/:_authToken={npm}"),
    );
    found(
        "npm-token",
        &format!("NPM_TOKEN={}", npm.to_ascii_lowercase()),
    );
    not_found(
        "npm-token",
        &format!("{}{}", p(&["npm", "_"]), random(2, 20, ALNUM)),
    );
    not_found(
        "npm-token",
        &format!("{}{}", p(&["npm", "_"]), "x".repeat(36)),
    );

    let pypi = format!(
        "{}{}",
        p(&["pypi-", "AgEIcHlwaS5vcmc"]),
        random(3, 160, URLSAFE)
    );
    found("pypi-token", &format!("password = {pypi}"));
    not_found(
        "pypi-token",
        &format!("{}{}", p(&["pypi-", "AgEI"]), random(4, 20, URLSAFE)),
    );
    not_found("pypi-token", "pip install pypi-AgEnt-helper");

    let clojars = format!("{}{}", p(&["CLOJARS", "_"]), random(5, 60, LOWER_DIGITS));
    found("clojars-token", &format!(":password \"{clojars}\""));
    not_found(
        "clojars-token",
        &format!("{}{}", p(&["CLOJARS", "_"]), random(6, 30, LOWER_DIGITS)),
    );
}

#[test]
fn twilio_and_sendgrid() {
    let sid = format!("{}{}", p(&["S", "K"]), random(1, 32, HEX));
    found("twilio-api-key", &format!("TWILIO_API_KEY={sid}"));
    not_found(
        "twilio-api-key",
        &format!("{}{}", p(&["S", "K"]), random(2, 32, b"ABCDEF0123456789")),
    );
    not_found("twilio-api-key", &format!("DISK{}", random(3, 32, HEX)));
    found(
        "twilio-auth-token",
        &format!("TWILIO_AUTH_TOKEN = \"{}\"", random(4, 32, HEX)),
    );
    not_found(
        "twilio-auth-token",
        &format!("TWILIO_ACCOUNT_NAME = \"{}\"", random(5, 32, HEX)),
    );

    let sendgrid = format!(
        "{}.{}.{}",
        p(&["S", "G"]),
        random(6, 22, URLSAFE),
        random(7, 43, URLSAFE)
    );
    found(
        "sendgrid-api-key",
        &format!("SENDGRID_API_KEY='{sendgrid}'"),
    );
    not_found(
        "sendgrid-api-key",
        &format!("SG.{}.{}", "x".repeat(22), "x".repeat(43)),
    );
    not_found("sendgrid-api-key", "see SG.Config.Load() in the docs");
}

#[test]
fn azure() {
    let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-";
    let secret = format!(
        "{}7{}{}",
        random(1, 3, ALNUM),
        p(&["Q", "~"]),
        random(2, 34, chars)
    );
    found(
        "azure-ad-client-secret",
        &format!("AZURE_CLIENT_SECRET={secret}"),
    );
    found(
        "azure-ad-client-secret",
        &format!("<add key=\"ClientSecret\" value=\"{secret}\" />"),
    );
    not_found("azure-ad-client-secret", &"~".repeat(40));
    // Without a name, through the digit and Q~ that every such secret holds.
    let bare = format!("{}3Q~{}", random(20, 3, ALNUM), random(21, 34, ALNUM));
    found(
        "azure-ad-client-secret",
        &format!("Authorization: Bearer {bare}"),
    );
    not_found(
        "azure-ad-client-secret",
        &format!("{}3Q~{}", random(20, 3, ALNUM), random(21, 12, ALNUM)),
    );

    let session = format!("{}{}", p(&["_gitlab", "_session="]), random(22, 32, HEX));
    found(
        "gitlab-session-cookie",
        &format!("curl -H 'Cookie: {session}' https://gitlab.example.org/api/v4/user"),
    );
    not_found(
        "gitlab-session-cookie",
        "_gitlab_session=ffffffffffffffffffffffffffffffff",
    );
    not_found(
        "azure-ad-client-secret",
        &format!("client_secret=abc7{}{}", p(&["Q", "~"]), "x".repeat(34)),
    );
    not_found(
        "azure-ad-client-secret",
        ".ui.visible.right.sidebar~.ui.visible.left.sidebar~.pusher{transform:none}",
    );

    let account = format!("{}==", random(3, 86, BASE64));
    found(
        "azure-storage-key",
        &format!("DefaultEndpointsProtocol=https;AccountName=acme;{}={account};EndpointSuffix=core.windows.net", p(&["Account", "Key"])),
    );
    let shared = format!("{}=", random(4, 43, BASE64));
    found(
        "azure-storage-key",
        &format!(
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;{}={shared}",
            p(&["SharedAccess", "Key"])
        ),
    );
    not_found("azure-storage-key", "AccountKey=<your-account-key>");
    not_found(
        "azure-storage-key",
        &format!("AccountKey={}==", "A".repeat(86)),
    );
}

#[test]
fn bedrock_and_hugging_face_org() {
    let long = format!(
        "{}{}",
        p(&["ABSK", "QmVkcm9ja0FQSUtleS"]),
        random(1, 110, BASE64)
    );
    found(
        "aws-bedrock-api-key",
        &format!("AWS_BEARER_TOKEN_BEDROCK={long}"),
    );
    let short = format!(
        "{}{}",
        p(&["bedrock-api-key-", "YmVkcm9jay5hbWF6b25hd3MuY29t"]),
        random(2, 600, BASE64)
    );
    // Short-term keys live 12 hours at most, long enough to be used from a leaked log.
    found(
        "aws-bedrock-api-key",
        &format!("export AWS_BEARER_TOKEN_BEDROCK={short}"),
    );
    // ABSK and random base64, long enough to be a key and not a word.
    found(
        "aws-bedrock-api-key",
        &format!(
            "{} {}",
            "Bearer",
            p(&["AB", "SK"]) + &random(3, 110, BASE64)
        ),
    );
    not_found(
        "aws-bedrock-api-key",
        &format!("ABSK{}", random(3, 60, BASE64)),
    );
    not_found(
        "aws-bedrock-api-key",
        "the bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t prefix names short-term keys",
    );

    let org = format!("{}{}", p(&["api", "_org_"]), random(4, 34, ALNUM));
    found("huggingface-token", &format!("HF_TOKEN={org}"));
    not_found(
        "huggingface-token",
        &format!("api_org_{}", random(5, 12, ALNUM)),
    );
}

#[test]
fn slack_more_shapes() {
    let app = format!(
        "{}-1-A{}-{}-{}",
        p(&["xa", "pp"]),
        random(1, 10, UPPER_DIGITS),
        random(2, 13, DIGITS),
        random(3, 64, HEX)
    );
    found("slack-token", &format!("SLACK_APP_TOKEN={app}"));
    let config = format!(
        "{}1-{}",
        p(&["xoxe", ".xoxp-"]),
        random(4, 163, UPPER_DIGITS)
    );
    found("slack-token", &format!("token: {config}"));
    let refresh = format!("{}1-{}", p(&["xoxe", "-"]), random(5, 146, UPPER_DIGITS));
    found("slack-token", &refresh);
    let legacy = format!(
        "{}{}-{}-{}-{}",
        p(&["xo", "xs-"]),
        random(6, 10, DIGITS),
        random(7, 11, DIGITS),
        random(8, 12, DIGITS),
        random(9, 64, HEX)
    );
    found("slack-token", &legacy);
    not_found(
        "slack-token",
        &p(&["xoxe", ".xoxp-1-SlackAppConfigurationAccessTokenHere"]),
    );
    not_found(
        "slack-token",
        &p(&["xoxe", "-1-SlackAppConfigurationRefreshTokenHere"]),
    );
    // Rotated user tokens with numeric parts.
    found(
        "slack-token",
        &format!(
            "{}{}-{}-{}-{}",
            p(&["xoxe", "-"]),
            random(15, 13, DIGITS),
            random(16, 11, DIGITS),
            random(17, 10, DIGITS),
            random(18, 32, ALNUM)
        ),
    );
    // Refresh tokens are base64 text, in mixed case.
    found(
        "slack-token",
        &format!("{}{}", p(&["xoxe", "-1-"]), random(14, 140, ALNUM)),
    );
    // Without the scheme, and with one run of base64 after the kind.
    let bare_hook = format!(
        "hooks.slack.com/services/{}/{}",
        random(19, 12, ALNUM),
        random(20, 40, BASE64)
    );
    found("slack-webhook", &format!("webhook: {bare_hook}"));
    not_found(
        "slack-webhook",
        "see hooks.slack.com/services/ for the format",
    );
    for kind in ["workflows", "triggers"] {
        let hook = format!(
            "https://hooks.slack.com/{kind}/T{}/A{}/{}/{}",
            random(10, 9, UPPER_DIGITS),
            random(11, 10, UPPER_DIGITS),
            random(12, 18, DIGITS),
            random(13, 32, ALNUM)
        );
        found("slack-webhook", &hook);
    }
}

#[test]
fn gitlab_more_prefixes_and_placeholders() {
    for (seed, prefix, n) in [
        (1, "glagent-", 50),
        (2, "glimt-", 25),
        (3, "glffct-", 20),
        (4, "glsoat-", 20),
    ] {
        found(
            "gitlab-token",
            &format!("token = \"{}{}\"", p(&[prefix]), random(seed, n, ALNUM)),
        );
    }
    not_found("gitlab-token", &format!("glpat-{}", "X".repeat(20)));
    not_found("gitlab-token", "glpat-XXXXXXXXXXX-XXXXXXXX");
    not_found("github-token", &format!("ghp_{}", "x".repeat(36)));
    not_found("aws-access-key-id", &format!("AKIA{}", "X".repeat(16)));
    not_found("google-api-key", &format!("AIza{}", "a".repeat(35)));
    not_found(
        "google-api-key",
        &p(&["AIzaSy", "DOCAbC123dEf456GhI789jKl01-MnO"]),
    );
    found(
        "google-api-key",
        &format!("apiKey: \"AIzaSy{}\"", random(14, 33, URLSAFE)),
    );
}

#[test]
fn ai_providers() {
    let cases: Vec<(&str, String)> = vec![
        (
            "groq-api-key",
            format!("GROQ_API_KEY={}{}", p(&["gs", "k_"]), random(1, 52, ALNUM)),
        ),
        (
            "replicate-api-token",
            format!(
                "REPLICATE_API_TOKEN={}{}",
                p(&["r", "8_"]),
                random(2, 37, ALNUM)
            ),
        ),
        (
            "perplexity-api-key",
            format!("PPLX_KEY={}{}", p(&["pp", "lx-"]), random(3, 48, ALNUM)),
        ),
        (
            "xai-api-key",
            format!("XAI_API_KEY={}{}", p(&["xa", "i-"]), random(4, 80, ALNUM)),
        ),
        (
            "openrouter-api-key",
            format!(
                "OPENROUTER_API_KEY={}{}",
                p(&["sk-or", "-v1-"]),
                random(5, 64, HEX)
            ),
        ),
        (
            "deepseek-api-key",
            format!(
                "DEEPSEEK_API_KEY=\"{}{}\"",
                p(&["s", "k-"]),
                random(6, 32, HEX)
            ),
        ),
        (
            "together-api-key",
            format!(
                "TOGETHER_API_KEY={}{}",
                p(&["tgp", "_v1_"]),
                random(7, 43, URLSAFE)
            ),
        ),
        (
            "together-api-key",
            format!("TOGETHER_API_KEY={}", random(8, 64, HEX)),
        ),
        (
            "fireworks-api-key",
            format!(
                "FIREWORKS_API_KEY={}{}",
                p(&["f", "w_"]),
                random(9, 24, ALNUM)
            ),
        ),
        (
            "elevenlabs-api-key",
            format!("ELEVEN_API_KEY={}{}", p(&["s", "k_"]), random(10, 48, HEX)),
        ),
        (
            "elevenlabs-api-key",
            format!("headers = {{\"xi-api-key\": \"{}\"}}", random(11, 32, HEX)),
        ),
        (
            "pinecone-api-key",
            format!(
                "PINECONE_API_KEY={}{}_{}",
                p(&["pc", "sk_"]),
                random(12, 5, ALNUM),
                random(13, 64, ALNUM)
            ),
        ),
        (
            "pinecone-api-key",
            format!(
                "PINECONE_API_KEY=\"{}-{}-4{}-a{}-{}\"",
                random(14, 8, HEX),
                random(15, 4, HEX),
                random(16, 3, HEX),
                random(17, 3, HEX),
                random(18, 12, HEX)
            ),
        ),
        (
            "langsmith-api-key",
            format!(
                "LANGSMITH_API_KEY={}{}_{}",
                p(&["lsv", "2_pt_"]),
                random(19, 32, HEX),
                random(20, 10, HEX)
            ),
        ),
        (
            "cohere-api-key",
            format!("co = cohere.Client(\"{}\")", random(21, 40, ALNUM)),
        ),
        (
            "cohere-api-key",
            format!("COHERE_API_KEY={}", random(22, 40, ALNUM)),
        ),
        (
            "mistral-api-key",
            format!("MISTRAL_API_KEY=\"{}\"", random(23, 32, ALNUM)),
        ),
        (
            "wandb-api-key",
            format!("WANDB_API_KEY={}", random(24, 40, HEX)),
        ),
        (
            "wandb-api-key",
            format!("wandb.login(key=\"{}\")", random(25, 40, HEX)),
        ),
    ];
    for (rule, text) in &cases {
        found(rule, text);
    }
    // Near misses: wrong length, placeholder, no provider name for a prefix-less shape.
    not_found("groq-api-key", &format!("gsk_{}", random(26, 20, ALNUM)));
    not_found("xai-api-key", &format!("xai-{}", "x".repeat(80)));
    // DeepSeek's shape is found without its name (no other sk- key has it), but not
    // with other letters or another length.
    found(
        "deepseek-api-key",
        &format!("OTHER_KEY=sk-{}", random(27, 32, HEX)),
    );
    not_found(
        "deepseek-api-key",
        &format!("OTHER_KEY=sk-{}", random(27, 32, ALNUM)),
    );
    not_found(
        "deepseek-api-key",
        &format!("OTHER_KEY=sk-{}", random(27, 40, HEX)),
    );
    not_found(
        "together-api-key",
        &format!("SHA256={}", random(28, 64, HEX)),
    );
    not_found(
        "cohere-api-key",
        &format!("OTHER_API_KEY={}", random(29, 40, ALNUM)),
    );
    not_found(
        "mistral-api-key",
        "MISTRAL_API_KEY=\"your-mistral-api-key-here\"",
    );
    not_found(
        "wandb-api-key",
        &format!("commit = \"{}\"", random(30, 40, HEX)),
    );
    not_found("fireworks-api-key", "fw_update_firmware_now_please");
    not_found("elevenlabs-api-key", &format!("sk_{}", random(31, 20, HEX)));
    not_found(
        "langsmith-api-key",
        &format!("lsv2_pt_{}", random(32, 20, HEX)),
    );
}

#[test]
fn generic_assignment_contexts() {
    let value = random(40, 32, ALNUM);
    for text in [
        format!("var apiKey string = \"{value}\""),
        format!("$db_password .= \"{value}\";"),
        format!("API_TOKEN ?= {value}"),
        format!("API_TOKEN ::= {value}"),
        format!("API_TOKEN :::= {value}"),
        format!("creds = \"{value}\""),
        format!("<password>{value}</password>"),
        format!("<config>\n  <apiToken>\n    {value}\n  </apiToken>\n</config>"),
    ] {
        found("generic-secret", &text);
    }
    found(
        "generic-secret-call",
        &format!("System.setProperty(\"aws.secretKey\", \"{value}\");"),
    );
    not_found(
        "generic-secret-call",
        &format!("System.setProperty(\"http.proxyHost\", \"{value}\");"),
    );
    found(
        "generic-secret-xml",
        &format!(
            "<property>\n  <name>fs.s3a.secret.key</name>\n  <value>{value}</value>\n</property>"
        ),
    );
    not_found(
        "generic-secret-xml",
        &format!(
            "<property>\n  <name>fs.s3a.endpoint</name>\n  <value>{value}</value>\n</property>"
        ),
    );
    // A subscripted name, and a short key judged by what its length allows.
    found(
        "generic-secret",
        &format!("config['dict_key'] = \"{value}\""),
    );
    found(
        "generic-secret",
        &format!("APP_KEY = \"{}\"", ["q7xv2lp", "r9skd4tz"].concat()),
    );
    not_found("generic-secret", "APP_KEY = \"aaaabbbb1111\"");
    // Pagination cursors and ids are not credentials.
    not_found("generic-secret", &format!("\"NextToken\": \"{value}\""));
    not_found(
        "generic-secret",
        &format!("\"CurrentKeyMaterialId\": \"{}\"", random(44, 64, HEX)),
    );
    not_found("generic-secret", &format!("api_key_id = \"{value}\""));
    // A file path under a key's name is where the key is, not the key.
    not_found(
        "generic-secret",
        "key_file = /etc/ssl/private/server-2024.key",
    );
    not_found("generic-secret", "tls_key: ./certs/app-server.pem");
    let slashed = format!("/{}/{}", random(42, 12, ALNUM), random(43, 20, ALNUM));
    found("generic-secret", &format!("secret_key = \"{slashed}\""));
    // Only the line after an opening tag joins it, not any later line.
    not_found(
        "generic-secret",
        &format!("<apiToken>\n  <empty/>\n  {value}\n</apiToken>"),
    );
    // Public keys, UUID-shaped ids and calls that take a name and a value in tests.
    not_found("generic-secret", &format!("public_key = \"{value}\""));
    not_found("generic-secret", &format!("PUBLISHABLE_KEY={value}"));
    not_found(
        "generic-secret",
        "credential_id = \"3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c\"",
    );
    not_found(
        "generic-secret",
        &format!("check(\"some-key\", \"{value}\")"),
    );
}

#[test]
fn base64_encoded_jwt_and_env_line() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!(
        "{}.{}.{}",
        url(r#"{"alg":"HS256","typ":"JWT"}"#),
        url(r#"{"sub":"42","name":"Test","iat":1716239022}"#),
        random(1, 43, URLSAFE)
    );
    let findings = scanner().scan("t", format!("  token: {}\n", b64(&jwt)).as_bytes(), None);
    assert!(
        findings
            .iter()
            .any(|f| f.rule == "jwt" && f.description.ends_with("(base64-encoded)")),
        "{findings:?}"
    );
    // The decoding rule itself is never a finding: the rule that matched inside is.
    assert!(findings.iter().all(|f| f.rule != "encoded-secret"));
    let line = format!("API_KEY={}\n", random(2, 32, ALNUM));
    found("generic-secret", &format!("data:\n  env: {}\n", b64(&line)));
    let github = format!("GH_API_KEY={}{}", p(&["gh", "p_"]), random(3, 36, ALNUM));
    found("github-token", &format!("blob = \"{}\"", b64(&github)));
    // Base64 of harmless text is not reported.
    not_found(
        "generic-secret",
        &format!("x = \"{}\"", b64("KEY=value of no interest at all")),
    );
    not_found(
        "jwt",
        &format!(
            "x = \"{}\"",
            b64("eyJ is how a JSON object starts in base64")
        ),
    );
}

#[test]
fn private_key_in_concatenated_literals() {
    let lines: Vec<String> = (0..6).map(|i| random(50 + i, 64, BASE64)).collect();
    let k = "PRIVATE KEY";
    let java = format!(
        "String key = \"-----BEGIN {k}-----\\n\" +\n{}    \"-----END {k}-----\";",
        lines
            .iter()
            .map(|l| format!("    \"{l}\\n\" +\n"))
            .collect::<String>()
    );
    found("private-key", &java);
    let go = format!(
        "const key = \"-----BEGIN {k}-----\\n\"\n{}\"-----END {k}-----\"",
        lines
            .iter()
            .map(|l| format!("\t\"{l}\"\n"))
            .collect::<String>()
    );
    found("private-key", &go);
    let php = format!(
        "$key = '-----BEGIN {k}-----' .\n{}'-----END {k}-----';",
        lines
            .iter()
            .map(|l| format!("  '{l}' .\n"))
            .collect::<String>()
    );
    found("private-key", &php);
    not_found(
        "private-key",
        &format!("s = \"-----BEGIN {k}-----\" + \"-----END {k}-----\""),
    );
}

#[test]
fn previews_show_only_a_public_prefix() {
    let password = random(60, 20, ALNUM);
    let text = format!(
        "DB_PASSWORD = \"{password}\"\nt = \"{}{}{}\"\n",
        p(&["sk-proj-"]),
        random(61, 74, URLSAFE),
        [marker(), random(62, 74, URLSAFE)].concat()
    );
    let findings = scanner().scan("t", text.as_bytes(), None);
    let previews: Vec<&str> = findings.iter().map(|f| f.preview.as_str()).collect();
    assert_eq!(
        previews,
        ["(hidden)", "sk-proj-… (164 chars)"],
        "{findings:?}"
    );
    let json = serde_json::to_string(&findings).unwrap();
    assert!(!json.contains(&password[..4]));
}

#[test]
fn file_names_with_control_characters_are_escaped() {
    let key = format!("{}{}", p(&["gh", "p_"]), random(63, 36, ALNUM));
    let findings = scanner().scan("evil\x1b[2J\u{9b}\u{202e}.txt", key.as_bytes(), None);
    assert_eq!(findings[0].file, "evil\\u{1b}[2J\\u{9b}\\u{202e}.txt");
    let json = serde_json::to_string(&findings).unwrap();
    assert!(!json.contains('\x1b') && !json.contains('\u{9b}'), "{json}");
}

#[test]
fn every_builtin_regex_compiles() {
    // Built-in regexes are compiled on first use: a bad one would fail only mid-scan.
    scanner().matcher.compile_all().unwrap();
}

#[test]
fn a_users_bad_regex_fails_before_the_scan() {
    let mut rules = builtin();
    rules.push(super::rules::Rule {
        id: "mine".into(),
        description: "mine".into(),
        regex: "(unclosed".into(),
        keywords: vec!["mine_".into()],
        ..Default::default()
    });
    let err = Matcher::new(&rules).unwrap_err();
    assert!(
        format!("{err:#}").contains("rule mine: invalid regex"),
        "{err:#}"
    );
}

#[test]
fn every_rule_has_a_test_and_the_prefilter_stays_small() {
    let source = [
        include_str!("mod.rs"),
        include_str!("infrastructure.rs"),
        include_str!("saas.rs"),
        include_str!("payments_messaging.rs"),
    ]
    .concat();
    for rule in builtin() {
        assert!(
            source.contains(&format!("\"{}\"", rule.id)),
            "rule {} has no test",
            rule.id
        );
    }
    // The keyword DFA steps at the same speed for 64 literals as for 311: what slows it is
    // a table that outgrows the CPU's caches (311 keywords: about 320 KiB, the rows a walk
    // is in most within a 48 KiB L1).
    let table = scanner().matcher.keyword_table_bytes();
    assert!(table <= 384 << 10, "the keyword table is {table} bytes");
    // A keyword of one or two characters would hit on nearly every line.
    for rule in builtin() {
        for keyword in &rule.keywords {
            assert!(
                keyword.len() >= 3,
                "rule {}: keyword {keyword:?} is too short",
                rule.id
            );
        }
    }
}

#[test]
fn aws_bearer_and_context_key_ids() {
    for prefix in ["ABIA", "ACCA"] {
        found(
            "aws-access-key-id",
            &format!("AWS_TOKEN = \"{prefix}{}\"", random(40, 16, BASE32)),
        );
        not_found(
            "aws-access-key-id",
            &format!("{prefix}{}", random(41, 15, BASE32)),
        );
    }
    not_found("aws-access-key-id", "ACCAACCAACCAACCAACCA");
}

/// A random UUID-shaped (8-4-4-4-12 hex) value.
fn uuid(seed: u64) -> String {
    let hex = b"0123456789abcdef";
    [8, 4, 4, 4, 12]
        .iter()
        .enumerate()
        .map(|(i, &n)| random(seed + i as u64, n, hex))
        .collect::<Vec<_>>()
        .join("-")
}

#[test]
fn npm_legacy_tokens() {
    found(
        "npm-legacy-token",
        &format!("//registry.npmjs.org/:_authToken={}\n", uuid(50)),
    );
    found(
        "npm-legacy-token",
        &format!("export NPM_TOKEN=\"{}\"", uuid(51)),
    );
    found(
        "npm-legacy-token",
        &format!("{{\"_authToken\": \"{}\"}}", uuid(52)),
    );
    // A variable, not a value; a UUID under another name; a UUID glued to more hex.
    not_found(
        "npm-legacy-token",
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
    );
    not_found(
        "npm-legacy-token",
        &format!("request_id = \"{}\"", uuid(53)),
    );
    not_found("npm-legacy-token", &format!("NPM_TOKEN={}abcd", uuid(54)));
}

#[test]
fn generic_names_that_are_not_credentials() {
    let value = format!("{}7", random(60, 29, ALNUM));
    for name in [
        "primaryKey",
        "foreignKey",
        "key_down_event",
        "issuerKeyHash",
        "csrf-token",
        "credentialId",
        // Words that only contain "key", and names that say the value is made up.
        "keyPressed",
        "monkeys-audio",
        "master-keying",
        "fakeToken",
        "invalid_api_key",
        "nonMatchingToken",
        "dummySecret",
    ] {
        not_found("generic-secret", &format!("{name}={value}"));
    }
    // The same value under a credential's name is still found.
    found("generic-secret", &format!("signing_key={value}"));
    found("generic-secret", &format!("credentials = \"{value}\""));
}

#[test]
fn slack_webhook_ids_in_any_case() {
    let url = format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        random(70, 8, ALNUM),
        random(71, 9, ALNUM),
        random(72, 24, ALNUM)
    );
    found("slack-webhook", &format!("SLACK_WEBHOOK={url}"));
    // Not a webhook path, and an id too short to be one.
    not_found(
        "slack-webhook",
        &format!(
            "https://hooks.slack.com/docs/T{}/B{}/{}",
            random(73, 8, ALNUM),
            random(74, 9, ALNUM),
            random(75, 24, ALNUM)
        ),
    );
    not_found(
        "slack-webhook",
        &format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            random(76, 4, ALNUM),
            random(77, 9, ALNUM),
            random(78, 24, ALNUM)
        ),
    );
}

#[test]
fn public_values_are_known_by_their_digest() {
    let public = format!("{}{}", p(&["AI", "za"]), random(70, 35, URLSAFE));
    let other = format!("{}{}", p(&["AI", "za"]), random(71, 35, URLSAFE));
    let digest = ring::digest::digest(&ring::digest::SHA256, public.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut rules = builtin();
    let google = rules.iter_mut().find(|r| r.id == "google-api-key").unwrap();
    google.public_sha256.push(hex);
    let scanner = Scanner {
        matcher: Matcher::new(&rules).unwrap(),
        vault: None,
    };
    let found_in = |text: &str| scanner.scan("t", text.as_bytes(), None).len();
    assert_eq!(found_in(&format!("apiKey: \"{public}\"")), 0);
    assert_eq!(found_in(&format!("apiKey: \"{other}\"")), 1);
    // The built-in list holds digests, not keys, and a malformed one fails at start.
    let mut rules = builtin();
    rules[0].public_sha256.push("not hex".into());
    let err = Matcher::new(&rules).unwrap_err();
    assert!(format!("{err:#}").contains("public_sha256"), "{err:#}");
}

#[test]
fn generic_values_that_name_or_point_at_something() {
    let value = random(72, 20, ALNUM);
    // A pointer member, a key's name, a constant naming itself, a relative key-store
    // path, a value cut short for display: none is a secret.
    for text in [
        "if (pEntryKey->cached_len==0) { return; }".to_string(),
        format!("\"key_name\": \"stage7{}-kms\"", &value[..8].to_lowercase()),
        "\t\"key_vault_name\": \"ops42vault9xq7\",".to_string(),
        "const ID_AES256_KeyWrapping = \"id-aes256-wrap-KeyWrapping\"".to_string(),
        "ssl.keystore.path=conf/server.p12".to_string(),
        format!("export API_TOKEN={}...", &value[..14]),
    ] {
        not_found("generic-secret", &text);
    }
    found("generic-secret", &format!("signing_key={value}7"));
}

#[test]
fn groq_langsmith_and_slack_placeholders() {
    let lower: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    found(
        "groq-api-key",
        &format!(
            "groq_token: \"{}{}\"",
            p(&["gs", "k_"]),
            random(73, 48, lower)
        ),
    );
    found(
        "langsmith-api-key",
        &format!(
            "LANGCHAIN_API_KEY={}{}_{}",
            p(&["lsv2", "_pt_"]),
            random(74, 32, lower),
            random(75, 10, lower)
        ),
    );
    // Slack's ids are nine digits or more.
    not_found(
        "slack-token",
        &format!(
            "\"token\": \"{}1234-1234-1234-{}\"",
            p(&["xo", "xp-"]),
            random(76, 32, HEX)
        ),
    );
}

#[test]
fn claude_oauth_slack_browser_tokens_and_hex_generic_values() {
    // Claude Code's OAuth access and refresh tokens.
    for kind in ["oat", "ort"] {
        found(
            "anthropic-api-key",
            &format!(
                "{}{kind}01-{}",
                p(&["sk-", "ant-"]),
                random(77, 60, URLSAFE)
            ),
        );
    }
    // Slack's browser session: the xoxc- token and the xoxd- cookie.
    found(
        "slack-token",
        &format!(
            "{}2541715624-2536568458595-2560197464944-{}",
            p(&["xo", "xc-"]),
            random(78, 64, HEX)
        ),
    );
    found(
        "slack-token",
        &format!(
            "XOXD_TOKEN = \"{}{}\"",
            p(&["xo", "xd-"]),
            random(79, 200, BASE64)
        ),
    );
    // 32 and 40 hex digits under a secret's name: a hex key's entropy is below base62's.
    found(
        "generic-secret",
        &format!("API_KEY = \"{}\"", random(80, 32, HEX)),
    );
    found(
        "generic-secret",
        &format!(
            "private static String CLIENT_SECRET = \"{}\";",
            random(81, 40, HEX)
        ),
    );
    not_found(
        "generic-secret",
        &format!("API_KEY = \"{}\"", "ab".repeat(16)),
    );
}

#[test]
fn a_user_rules_prefix_shows_only_a_literal() {
    let key = format!("{}{}", p(&["gh", "p_"]), random(82, 36, ALNUM));
    let scan_with = |prefix: &str| -> Vec<String> {
        // A keywrap.toml replacing the built-in rule, as a cloned repository's could.
        let mut rules = builtin();
        let github = rules.iter_mut().find(|r| r.id == "github-token").unwrap();
        github.prefix = Some(prefix.into());
        let scanner = Scanner {
            matcher: Matcher::new(&rules).unwrap(),
            vault: None,
        };
        scanner
            .scan("t", format!("TOKEN = \"{key}\"").as_bytes(), None)
            .into_iter()
            .map(|f| f.preview)
            .collect()
    };
    for hostile in [".*", "ghp_[A-Za-z0-9]+", "(?s).{30}"] {
        assert_eq!(scan_with(hostile), ["(hidden)"], "prefix {hostile:?}");
    }
    assert_eq!(scan_with("ghp_"), ["ghp_… (40 chars)"]);
    // The fields that change where a rule runs do not change what its preview shows.
    let mut rules = builtin();
    let github = rules.iter_mut().find(|r| r.id == "github-token").unwrap();
    github.prefix = Some(".*".into());
    github.starts_with_keyword = true;
    let scanner = Scanner {
        matcher: Matcher::new(&rules).unwrap(),
        vault: None,
    };
    let previews: Vec<String> = scanner
        .scan("t", format!("TOKEN = \"{key}\"").as_bytes(), None)
        .into_iter()
        .map(|f| f.preview)
        .collect();
    assert_eq!(previews, ["(hidden)"]);
    // The same for the password rule replaced with a prefix matching all of the value,
    // found through the file-kind check (a quoted value in source code).
    let password = typed_password(83);
    let mut rules = builtin();
    let symbols = rules
        .iter_mut()
        .find(|r| r.id == "secret-with-symbols")
        .unwrap();
    symbols.prefix = Some(".*".into());
    let scanner = Scanner {
        matcher: Matcher::new(&rules).unwrap(),
        vault: None,
    };
    let findings = scanner.scan(
        "src/db.py",
        format!("DB_PASSWORD = \"{password}\"").as_bytes(),
        None,
    );
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].preview, "(hidden)");
    assert!(!format!("{:?}", findings[0]).contains(&password));
    // A literal that runs into the secret is cut at half of it.
    assert_eq!(scan_with(&key), [format!("{}… (40 chars)", &key[..20])]);
}

#[test]
fn a_rule_id_with_control_characters_is_refused() {
    let mut rules = builtin();
    rules.push(super::rules::Rule {
        id: "evil\u{1b}[2J".into(),
        description: "evil".into(),
        regex: "(evil_[a-z]{12})".into(),
        keywords: vec!["evil_".into()],
        ..Default::default()
    });
    let err = format!("{:#}", Matcher::new(&rules).unwrap_err());
    assert!(
        err.contains("an id may hold only") && !err.contains('\u{1b}'),
        "{err}"
    );
}

#[test]
fn other_scanners_allow_markers_are_honoured() {
    let key = format!("ghp_{}", random(41, 36, ALNUM));
    found("github-token", &format!("token = '{key}'  # reviewed\n"));
    for marker in [
        "keywrap:allow",
        "gitleaks:allow",
        "kingfisher:ignore",
        "pragma: allowlist secret",
    ] {
        assert!(
            rules_in(&format!("token = '{key}'  # {marker}\n")).is_empty(),
            "{marker}"
        );
    }
    // detect-secrets' next-line marker covers the line after it, and only that one.
    let next_line = format!("// pragma: allowlist nextline secret\n\"token\": \"{key}\"\n");
    assert!(rules_in(&next_line).is_empty());
    let two_lines_on = format!("// pragma: allowlist nextline secret\n\n\"token\": \"{key}\"\n");
    found("github-token", &two_lines_on);
    // A next-line marker on the key's own line is not a same-line one.
    found(
        "github-token",
        &format!("\"token\": \"{key}\" // pragma: allowlist nextline secret\n"),
    );
}

#[test]
fn a_rule_that_starts_with_its_keyword_runs_from_each_keyword() {
    let rule = |anchored: bool| super::rules::Rule {
        id: "acme".into(),
        description: "Acme key".into(),
        regex: r"acme[a-z_]*\s*=\s*([a-z0-9]{12})\b".into(),
        keywords: vec!["acme".into()],
        starts_with_keyword: anchored,
        ..Default::default()
    };
    let values: Vec<String> = (0..2).map(|i| random(90 + i, 12, DIGITS)).collect();
    let text = format!(
        "x = 1; acme_id = {}; acme_key = {}\nno acme here\n",
        values[0], values[1]
    );
    for anchored in [false, true] {
        let matcher = Matcher::new(&[rule(anchored)]).unwrap();
        let found: Vec<&[u8]> = matcher
            .find(text.as_bytes())
            .iter()
            .map(|m| &text.as_bytes()[m.secret.clone()])
            .collect();
        // Both values of the line, each once, whether the regex runs over the line or from
        // each keyword.
        assert_eq!(
            found,
            [values[0].as_bytes(), values[1].as_bytes()],
            "anchored {anchored}"
        );
    }
    // Anchored, a match must begin at a keyword: text before it is not searched.
    let early = super::rules::Rule {
        regex: r"[a-z]+ = acme([0-9]{12})".into(),
        ..rule(true)
    };
    let matcher = Matcher::new(&[early]).unwrap();
    assert!(matcher
        .find(format!("name = acme{}", values[0]).as_bytes())
        .is_empty());
    // The name's stopwords still see the line before the keyword.
    let public = super::rules::Rule {
        name_stopwords: vec!["public".into()],
        ..rule(true)
    };
    let matcher = Matcher::new(&[public]).unwrap();
    assert!(matcher
        .find(format!("public_acme_key = {}", values[0]).as_bytes())
        .is_empty());
}
