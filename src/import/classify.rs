//! Which env-file values look like secrets: a scan rule matches the value, or the name says
//! "credential" and the value is more than a flag, a number or a few characters.

use crate::scan::matcher::Matcher;

/// Name words that mark a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PWD",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
];

/// A last word that makes the variable describe a credential rather than hold one
/// (`PRIVATE_KEY_PATH`, `AUTH_URL`, `TOKEN_TTL`).
const DESCRIPTIVE_WORDS: &[&str] = &[
    "URL", "URI", "HOST", "PORT", "PATH", "FILE", "DIR", "ENDPOINT", "DOMAIN", "REGION", "NAME",
    "TYPE", "MODE", "METHOD", "ENABLED", "TTL", "TIMEOUT", "LENGTH", "SIZE", "EXPIRY",
];

/// Values shorter than this are not treated as secrets on the strength of the name alone.
const MIN_SECRET_LEN: usize = 6;

/// Why a value is moved to Vault; never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A scan rule (its id) or the env-file key check (its kind) matched the value.
    Rule(String),
    /// The name looks like a credential's.
    Name,
    /// A URL with a password in it (moved with `--move-leftovers`).
    PasswordInUrl,
    /// A key in a comment (moved with `--move-leftovers`).
    CommentedOut,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Rule(rule) => write!(f, "matches {rule}"),
            Reason::Name => f.write_str("credential-like name"),
            Reason::PasswordInUrl => f.write_str("password inside a URL"),
            Reason::CommentedOut => f.write_str("key in a comment"),
        }
    }
}

/// Whether `NAME=value` holds a secret, and why: the scan rules first (their ids are the
/// most precise reason), then the env-file key check, then the name.
pub fn classify(matcher: &Matcher, name: &str, value: &str) -> Option<Reason> {
    // The rules see the assignment, so the generic `name = value` rule applies too.
    let line = zeroize::Zeroizing::new(format!("{name}={value}"));
    let value_start = name.len() + 1;
    let rule = matcher
        .find(line.as_bytes())
        .into_iter()
        .find(|m| m.secret.start >= value_start && !m.secret.is_empty());
    if let Some(found) = rule {
        return Some(Reason::Rule(matcher.rules[found.rule].id.clone()));
    }
    if let Some(kind) = crate::dotenv::looks_like_live_key(value) {
        return Some(Reason::Rule(kind.to_string()));
    }
    (name_looks_like_credential(name) && !is_trivial(value)).then_some(Reason::Name)
}

/// Word-ish match: `GITHUB_TOKEN`, `apiKey`, `DB_PASSWORDS`, `OPENAI_APIKEY`, but not
/// `KEYBOARD_LAYOUT` or `AUTH_URL`.
pub fn name_looks_like_credential(name: &str) -> bool {
    let words = words(name);
    if words
        .last()
        .is_some_and(|last| DESCRIPTIVE_WORDS.contains(&last.as_str()))
    {
        return false;
    }
    words.iter().any(|word| {
        CREDENTIAL_WORDS.iter().any(|marker| {
            word == marker
                || word.strip_suffix('S') == Some(marker)
                || (word.ends_with(marker)
                    && ["API", "ACCESS", "DB", "O"]
                        .iter()
                        .any(|p| word == &format!("{p}{marker}")))
        })
    })
}

/// Splits on `_ - .` and on lower-to-upper case changes; upper-cased.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.') {
            words.push(std::mem::take(&mut current));
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            words.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_ascii_lowercase();
        current.push(c.to_ascii_uppercase());
    }
    words.push(current);
    words.retain(|w| !w.is_empty());
    words
}

/// Flags, numbers, placeholders-by-length: values a credential-like name can hold that
/// are not secrets.
fn is_trivial(value: &str) -> bool {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    value.chars().count() < MIN_SECRET_LEN
        || matches!(
            lower.as_str(),
            "true"
                | "false"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "null"
                | "none"
                | "enabled"
                | "disabled"
        )
        || value.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::rules;

    fn matcher() -> Matcher {
        Matcher::new(&rules::builtin()).unwrap()
    }

    /// An OpenAI-shaped key made at run time, so this file holds no key-shaped literal.
    fn openai_key() -> String {
        let run = "aB3dE5fG7hJ9kL1mN2pQ";
        format!("sk-{}{}{}", run, ["T3Blbk", "FJ"].concat(), run)
    }

    #[test]
    fn names_match_as_words() {
        for name in [
            "GITHUB_TOKEN",
            "apiKey",
            "DB_PASSWORD",
            "DB_PASSWORDS",
            "OPENAI_APIKEY",
            "MYSQL_PWD",
            "AWS_SECRET_ACCESS_KEY",
            "GOOGLE_CREDENTIALS",
            "SSH_PRIVATE_KEY",
            "BASIC_AUTH",
            "client.secret",
        ] {
            assert!(name_looks_like_credential(name), "{name}");
        }
        for name in [
            "KEYBOARD_LAYOUT",
            "MONKEY",
            "AUTH_URL",
            "PRIVATE_KEY_PATH",
            "TOKEN_TTL",
            "DEBUG",
            "AUTHOR",
            "PASSWORD_MIN_LENGTH",
        ] {
            assert!(!name_looks_like_credential(name), "{name}");
        }
    }

    #[test]
    fn trivial_values_stay_plain() {
        let m = matcher();
        for value in ["", "true", "FALSE", "8080", "0.5", "abc", "none"] {
            assert_eq!(classify(&m, "API_TOKEN", value), None, "{value}");
        }
        assert_eq!(
            classify(&m, "DB_PASSWORD", "correct-horse-battery"),
            Some(Reason::Name)
        );
    }

    #[test]
    fn rules_match_whatever_the_name() {
        let m = matcher();
        assert!(matches!(
            classify(&m, "SOMETHING", &openai_key()),
            Some(Reason::Rule(_))
        ));
        let url = format!("postgres://app:{}@db.internal:5432/app", "Zq7wPx9vLk2m");
        assert!(matches!(
            classify(&m, "DATABASE_URL", &url),
            Some(Reason::Rule(_))
        ));
    }

    #[test]
    fn plain_settings_stay_plain() {
        let m = matcher();
        for (name, value) in [
            ("DEBUG", "true"),
            ("PORT", "8080"),
            ("LOG_LEVEL", "info"),
            ("APP_NAME", "my application"),
            ("AUTH_URL", "https://login.example.com/auth"),
            ("DATABASE_URL", "postgres://db.internal:5432/app"),
        ] {
            assert_eq!(classify(&m, name, value), None, "{name}");
        }
    }
}
