//! One audit log line → one read of a secret, or nothing.
//!
//! Only the fields the report shows are deserialized, borrowed from the line where they
//! need no unescaping; everything else (request bodies, HMAC-ed response data) is skipped
//! by serde without being built. Lines that do not mention a read are not parsed at all.

use std::borrow::Cow;

use memchr::memmem;
use serde::Deserialize;

use crate::timestamp::Timestamp;

/// A string borrowed from the line when it has no escapes, owned otherwise. (serde borrows
/// a `Cow` only as a bare field, not inside `Option` or `Vec`.)
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

impl<'a> Text<'a> {
    fn cow(text: Option<Text<'a>>) -> Cow<'a, str> {
        text.map(|t| t.0).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    time: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    auth: Option<Auth<'a>>,
    #[serde(borrow)]
    request: Option<Request<'a>>,
    #[serde(borrow)]
    error: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Auth<'a> {
    #[serde(borrow)]
    accessor: Option<Text<'a>>,
    #[serde(borrow)]
    display_name: Option<Text<'a>>,
    policy_results: Option<PolicyResults>,
}

#[derive(Deserialize)]
struct PolicyResults {
    allowed: Option<bool>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    operation: Option<Text<'a>>,
    #[serde(borrow)]
    mount_point: Option<Text<'a>>,
    #[serde(borrow)]
    mount_type: Option<Text<'a>>,
    #[serde(borrow)]
    client_token_accessor: Option<Text<'a>>,
    #[serde(borrow)]
    path: Option<Text<'a>>,
    #[serde(borrow)]
    remote_address: Option<Text<'a>>,
    #[serde(borrow)]
    headers: Option<Headers<'a>>,
}

/// Audited request headers: lower-case names, each an array of values.
#[derive(Deserialize, Default)]
struct Headers<'a> {
    #[serde(rename = "x-keywrap-host", borrow, default)]
    host: Vec<Text<'a>>,
    #[serde(rename = "x-keywrap-user", borrow, default)]
    user: Vec<Text<'a>>,
    #[serde(rename = "x-keywrap-command", borrow, default)]
    command: Vec<Text<'a>>,
    #[serde(rename = "x-keywrap-ci", borrow, default)]
    ci: Vec<Text<'a>>,
    #[serde(rename = "x-correlation-id", borrow, default)]
    correlation_id: Vec<Text<'a>>,
}

/// One read of a secret, as the log recorded it. Fields the log lacks are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Read<'a> {
    pub time: Option<Timestamp>,
    /// The time text as logged.
    pub time_text: Cow<'a, str>,
    /// The logical path references use (`secret/openai`, not `secret/data/openai`).
    pub path: Cow<'a, str>,
    /// The API path as logged (`secret/data/openai`).
    pub api_path: Cow<'a, str>,
    pub accessor: Cow<'a, str>,
    pub display_name: Cow<'a, str>,
    pub remote_address: Cow<'a, str>,
    pub host: Cow<'a, str>,
    pub user: Cow<'a, str>,
    pub command: Cow<'a, str>,
    pub ci: Cow<'a, str>,
    pub correlation_id: Cow<'a, str>,
    pub allowed: bool,
}

/// What one line turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Read(Box<Read<'a>>),
    /// Valid, but not a read of a secret (a write, a response, a login, a metadata read).
    Other,
    /// Not JSON: a truncated or corrupted line.
    Malformed,
}

/// Cheap tests that rule a line out before it is parsed.
pub struct Prefilter {
    operation: memmem::Finder<'static>,
    response: memmem::Finder<'static>,
}

const OPERATION_KEY: &[u8] = b"\"operation\"";

impl Default for Prefilter {
    fn default() -> Self {
        Prefilter {
            operation: memmem::Finder::new(OPERATION_KEY),
            response: memmem::Finder::new(b"\"type\":\"response\""),
        }
    }
}

impl Prefilter {
    /// False when the line cannot be a request entry for a read: it has no `"operation"`
    /// key with the value `"read"` (whitespace around the colon allowed, as in a log
    /// rewritten by a JSON tool), or it starts as a response entry (Vault and OpenBao write
    /// compact JSON with `type` among the first keys; a spaced-out response is ruled out
    /// by the parser instead).
    pub fn may_be_read(&self, line: &[u8]) -> bool {
        let head = &line[..line.len().min(96)];
        self.response.find(head).is_none()
            && self
                .operation
                .find_iter(line)
                .any(|at| is_read_value(&line[at + OPERATION_KEY.len()..]))
    }
}

/// True when `rest`, what follows a `"operation"` key, is `: "read"`.
fn is_read_value(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    rest.strip_prefix(b":")
        .is_some_and(|value| value.trim_ascii_start().starts_with(b"\"read\""))
}

const NON_SECRET_PREFIXES: &[&str] = &["sys/", "auth/", "identity/", "cubbyhole/"];

/// Parses a line the prefilter let through.
pub fn parse<'a>(line: &'a [u8]) -> Line<'a> {
    let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
        return Line::Malformed;
    };
    if entry.kind.as_ref().map(|t| t.0.as_ref()) != Some("request") {
        return Line::Other;
    }
    let Some(request) = entry.request else {
        return Line::Other;
    };
    if request.operation.as_ref().map(|t| t.0.as_ref()) != Some("read") {
        return Line::Other;
    }
    let Some(Text(api_path)) = request.path else {
        return Line::Other;
    };
    let is_kv = match request.mount_type.as_ref().map(|t| t.0.as_ref()) {
        Some("kv" | "generic") => true,
        Some("") | None => !NON_SECRET_PREFIXES.iter().any(|p| api_path.starts_with(p)),
        Some(_) => false,
    };
    if !is_kv {
        return Line::Other;
    }
    let mount_point = request.mount_point.as_ref().map(|t| t.0.as_ref());
    let Some(path) = logical_path(api_path.clone(), mount_point) else {
        return Line::Other;
    };
    let auth = entry.auth;
    let denied_by_policy = auth
        .as_ref()
        .and_then(|a| a.policy_results.as_ref())
        .and_then(|p| p.allowed)
        == Some(false);
    let denied_by_error = entry
        .error
        .as_ref()
        .is_some_and(|e| e.0.contains("permission denied"));
    let (accessor, display_name) = match auth {
        Some(a) => (a.accessor, a.display_name),
        None => (None, None),
    };
    let headers = request.headers.unwrap_or_default();
    let first = |values: Vec<Text<'a>>| Text::cow(values.into_iter().next());
    let time_text = Text::cow(entry.time);
    Line::Read(Box::new(Read {
        time: Timestamp::parse(&time_text),
        time_text,
        path,
        api_path,
        accessor: Text::cow(accessor.or(request.client_token_accessor)),
        display_name: Text::cow(display_name),
        remote_address: Text::cow(request.remote_address),
        host: first(headers.host),
        user: first(headers.user),
        command: first(headers.command),
        ci: first(headers.ci),
        correlation_id: first(headers.correlation_id),
        allowed: !(denied_by_policy || denied_by_error),
    }))
}

/// `secret/data/openai` on mount `secret/` → `secret/openai`. KV v2 metadata, subkeys and
/// config reads show no value and are left out (None). (A KV v1 secret named `config`, or
/// under `data/`, `metadata/` or `subkeys/`, is taken for these too: the log does not say
/// which KV version a mount has.) Without a mount point the path is kept.
fn logical_path<'a>(api_path: Cow<'a, str>, mount: Option<&str>) -> Option<Cow<'a, str>> {
    let Some(mount) = mount.filter(|m| !m.is_empty() && api_path.starts_with(m)) else {
        return Some(api_path);
    };
    let rest = &api_path[mount.len()..];
    if rest == "config" || rest.starts_with("metadata/") || rest.starts_with("subkeys/") {
        return None;
    }
    match rest.strip_prefix("data/") {
        Some(name) => Some(Cow::Owned(format!("{mount}{name}"))),
        None => Some(api_path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENIED: &str = r#"{"time":"2026-11-30T05:07:22.319820749Z","type":"request","auth":{"client_token":"hmac-sha256:e8","accessor":"hmac-sha256:ab76","display_name":"token","policies":["none"],"policy_results":{"allowed":false},"token_type":"service"},"request":{"id":"2461","operation":"read","mount_point":"secret/","mount_type":"kv","client_token":"hmac-sha256:e8","client_token_accessor":"hmac-sha256:ab76","namespace":{"id":"root"},"path":"secret/data/openai","remote_address":"127.0.0.1","remote_port":55380,"headers":{"user-agent":["keywrap/0.1.0"],"x-correlation-id":["bf1e"],"x-keywrap-command":["true"],"x-keywrap-host":["vm"],"x-keywrap-user":["root"]}},"error":"1 error occurred:\n\t* permission denied\n\n"}"#;

    fn read(line: &str) -> Read<'_> {
        assert!(Prefilter::default().may_be_read(line.as_bytes()), "{line}");
        match parse(line.as_bytes()) {
            Line::Read(read) => *read,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_keywrap_entries() {
        let r = read(DENIED);
        assert_eq!(r.path, "secret/openai");
        assert_eq!(
            (r.host.as_ref(), r.user.as_ref(), r.command.as_ref()),
            ("vm", "root", "true")
        );
        assert_eq!(r.accessor, "hmac-sha256:ab76");
        assert_eq!(r.correlation_id, "bf1e");
        assert!(!r.allowed);
        assert_eq!(r.time.unwrap().to_rfc3339(), "2026-11-30T05:07:22Z");
    }

    #[test]
    fn reads_entries_rewritten_with_spaces() {
        let spaced = DENIED
            .replace("\":\"", "\": \"")
            .replace("\":{", "\": {")
            .replace("\",\"", "\", \"");
        let r = read(&spaced);
        assert_eq!(r.path, "secret/openai");
        assert_eq!(r.api_path, "secret/data/openai");
        assert!(!r.allowed);
        let update = spaced.replace("\"operation\": \"read\"", "\"operation\": \"update\"");
        assert!(!Prefilter::default().may_be_read(update.as_bytes()));
    }

    #[test]
    fn reads_plain_entries_without_headers() {
        let line = r#"{"time":"2026-11-30T05:07:22Z","type":"request","auth":{"accessor":"acc","display_name":"approle"},"request":{"operation":"read","mount_point":"kv1/","mount_type":"kv","path":"kv1/team/db","remote_address":"10.0.0.9"}}"#;
        let r = read(line);
        assert_eq!(r.path, "kv1/team/db");
        assert!(r.allowed);
        assert_eq!(r.host, "");
    }

    #[test]
    fn other_entries_are_skipped() {
        let prefilter = Prefilter::default();
        let response = DENIED.replacen("\"type\":\"request\"", "\"type\":\"response\"", 1);
        assert!(!prefilter.may_be_read(response.as_bytes()));
        let write = DENIED.replace("\"operation\":\"read\"", "\"operation\":\"update\"");
        assert!(!prefilter.may_be_read(write.as_bytes()));
        for other in [
            "secret/metadata/openai",
            "secret/config",
            "secret/subkeys/openai",
        ] {
            let line = DENIED.replace("secret/data/openai", other);
            assert_eq!(parse(line.as_bytes()), Line::Other, "{other}");
        }
        let mounts = DENIED
            .replace("secret/data/openai", "sys/internal/ui/mounts/secret/openai")
            .replace("\"mount_type\":\"kv\"", "\"mount_type\":\"system\"");
        assert_eq!(parse(mounts.as_bytes()), Line::Other);
        assert_eq!(parse(&DENIED.as_bytes()[..200]), Line::Malformed);
    }
}
