//! Secret references: `[vault://]PATH[?version=N]#FIELD`.
//!
//! PATH is the logical path `vault kv get PATH` takes; the mount and KV version are found at
//! run time, so users never write `/data/`.

use std::fmt;
use std::str::FromStr;

const SCHEME: &str = "vault://";

/// A parsed reference to one field of one secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Logical path, without leading or trailing slashes, e.g. `secret/openai`.
    pub path: String,
    /// A pinned KV v2 version; `None` means the latest.
    pub version: Option<u64>,
    /// The field within the secret, e.g. `api_key`.
    pub field: String,
}

/// Which secret (and version) a reference reads: the unit that is fetched once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretAddress {
    pub path: String,
    pub version: Option<u64>,
}

/// Why a reference could not be parsed, with the 1-based column of the problem. It keeps the
/// input's length, never the input: a key pasted where its reference belongs must not reach
/// a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ReferenceError {
    /// Characters in the input.
    pub length: usize,
    pub column: usize,
    pub problem: String,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid reference ({} characters, not shown) at column {}: {}",
            self.length, self.column, self.problem
        )
    }
}

impl Reference {
    /// The secret this reference reads.
    pub fn address(&self) -> SecretAddress {
        SecretAddress {
            path: self.path.clone(),
            version: self.version,
        }
    }

    /// True when `text` is written with the explicit `vault://` scheme (as env files need).
    pub fn has_scheme(text: &str) -> bool {
        text.starts_with(SCHEME)
    }
}

impl fmt::Display for SecretAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(version) = self.version {
            write!(f, "?version={version}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.address(), self.field)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |column: usize, problem: &str| ReferenceError {
            length: input.chars().count(),
            column,
            problem: problem.to_string(),
        };
        if let Some(position) = input.find(|c: char| c.is_control() || c.is_whitespace()) {
            return Err(fail(
                column_at(input, position),
                "whitespace or control characters are not allowed",
            ));
        }
        let body_start = if input.starts_with(SCHEME) {
            SCHEME.len()
        } else if input.contains("://") {
            return Err(fail(
                1,
                "the only scheme is vault://; write vault://PATH#FIELD or PATH#FIELD",
            ));
        } else {
            0
        };
        let body = &input[body_start..];
        let Some(hash) = body.find('#') else {
            return Err(fail(
                input.len() + 1,
                "missing #FIELD, e.g. secret/openai#api_key",
            ));
        };
        let (locator, field) = (&body[..hash], &body[hash + 1..]);
        if field.is_empty() {
            return Err(fail(
                column_at(input, body_start + hash + 1),
                "empty field after #",
            ));
        }
        if let Some(position) = field.find('#') {
            return Err(fail(
                column_at(input, body_start + hash + 1 + position),
                "more than one #",
            ));
        }
        let (raw_path, query) = match locator.find('?') {
            Some(q) => (&locator[..q], Some((q, &locator[q + 1..]))),
            None => (locator, None),
        };
        let path = raw_path.trim_matches('/');
        if path.is_empty() {
            return Err(fail(column_at(input, body_start), "empty path"));
        }
        let path_offset = body_start + (raw_path.len() - raw_path.trim_start_matches('/').len());
        let mut segment_offset = path_offset;
        for segment in path.split('/') {
            if segment.is_empty() {
                return Err(fail(
                    column_at(input, segment_offset),
                    "empty path segment (//)",
                ));
            }
            if segment == "." || segment == ".." {
                return Err(fail(
                    column_at(input, segment_offset),
                    "\".\" and \"..\" are not allowed in a path",
                ));
            }
            segment_offset += segment.len() + 1;
        }
        let version = match query {
            None => None,
            Some((q, query)) => {
                let query_column = column_at(input, body_start + q + 1);
                let Some(number) = query.strip_prefix("version=") else {
                    return Err(fail(query_column, "the only query parameter is version=N"));
                };
                match number.parse::<u64>() {
                    Ok(0) => {
                        return Err(fail(
                            query_column + "version=".len(),
                            "versions start at 1; leave out ?version for the latest",
                        ))
                    }
                    Ok(n) => Some(n),
                    Err(_) => {
                        return Err(fail(
                            query_column + "version=".len(),
                            "version must be a positive whole number",
                        ))
                    }
                }
            }
        };
        Ok(Reference {
            path: path.to_string(),
            version,
            field: field.to_string(),
        })
    }
}

/// 1-based character column of a byte offset.
fn column_at(input: &str, byte_offset: usize) -> usize {
    input[..byte_offset.min(input.len())].chars().count() + 1
}

/// Checks that NAME can be an environment variable: `[A-Za-z_][A-Za-z0-9_]*`. The problem
/// says which character is wrong by position, never repeating the name (it may be a value
/// pasted in the wrong place).
pub fn validate_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("empty variable name".into()),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
            return Err(format!(
                "invalid variable name ({}, not shown): it must start with a letter or _",
                crate::redact::length(name)
            ))
        }
        _ => {}
    }
    if let Some(position) = chars.position(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
        return Err(format!(
            "invalid variable name ({}, not shown): character {} is not allowed (use letters, digits and _)",
            crate::redact::length(name),
            position + 2
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Reference {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn error(text: &str) -> ReferenceError {
        text.parse::<Reference>().expect_err(text)
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            parse("secret/openai#api_key"),
            Reference {
                path: "secret/openai".into(),
                version: None,
                field: "api_key".into()
            }
        );
        assert_eq!(
            parse("vault://kv/team-a/openai?version=3#api_key"),
            Reference {
                path: "kv/team-a/openai".into(),
                version: Some(3),
                field: "api_key".into()
            }
        );
        assert_eq!(parse("/secret/openai/#k").path, "secret/openai");
        assert_eq!(parse("secret/x#field.with-dash").field, "field.with-dash");
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(
            parse("vault:///kv/a?version=2#f").to_string(),
            "kv/a?version=2#f"
        );
    }

    #[test]
    fn rejects_malformed_references_with_a_column() {
        let cases = [
            ("secret/openai", 14, "missing #FIELD"),
            ("secret/openai#", 15, "empty field"),
            ("#f", 1, "empty path"),
            ("secret//x#f", 8, "empty path segment"),
            ("secret/../sys#f", 8, "not allowed"),
            ("secret/x?ver=2#f", 10, "only query parameter"),
            ("secret/x?version=abc#f", 18, "positive whole number"),
            ("secret/x?version=0#f", 18, "versions start at 1"),
            ("secret/x#a#b", 11, "more than one #"),
            ("http://x#f", 1, "the only scheme is vault://"),
            ("secret/ x#f", 8, "whitespace"),
        ];
        for (input, column, problem) in cases {
            let err = error(input);
            assert_eq!(err.column, column, "{input}: {err}");
            assert!(err.problem.contains(problem), "{input}: {err}");
        }
    }

    #[test]
    fn the_input_is_never_repeated() {
        let key = ["sk", "-", "abcdef0123456789"].concat();
        for input in [
            key.clone(),
            format!("secret/{key}"),
            format!("vault://{key}/x"),
            format!("{key}://x#y"),
        ] {
            let message = error(&input).to_string();
            assert!(!message.contains(&key), "{message}");
            assert!(
                message.contains(&format!(
                    "({} characters, not shown)",
                    input.chars().count()
                )),
                "{message}"
            );
        }
        let name = validate_env_name(&format!("A-{key}")).unwrap_err();
        assert!(!name.contains(&key), "{name}");
        assert!(name.contains("character 2 is not allowed"), "{name}");
    }

    #[test]
    fn validates_env_names() {
        assert!(validate_env_name("OPENAI_API_KEY").is_ok());
        assert!(validate_env_name("_x1").is_ok());
        assert!(validate_env_name("1X").is_err());
        assert!(validate_env_name("A-B").is_err());
        assert!(validate_env_name("").is_err());
        assert!(validate_env_name("A=B").is_err());
    }
}
