//! `[proxy] store`, `store_password` and `store_failure`, parsed and validated once.
//!
//! The URL never holds a password: it would sit in keywrap.toml, in shell history and in
//! process listings. The password is a Vault reference read at start-up. Errors about the
//! URL name the part that is wrong and never repeat the URL.

use std::str::FromStr;

use anyhow::{bail, Result};

use crate::reference::Reference;

/// What the proxy does while the store cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Refuse with 503 and a message naming the store: limits are never silently lifted.
    #[default]
    FailClosed,
    /// Admit under this replica's own in-process limits until the store is back.
    FailOpen,
}

impl FromStr for FailureMode {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "fail_closed" => Ok(FailureMode::FailClosed),
            "fail_open" => Ok(FailureMode::FailOpen),
            _ => bail!("[proxy] store_failure must be \"fail_closed\" or \"fail_open\""),
        }
    }
}

/// Where the store is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub db: i64,
    /// An ACL user name, if any (the default user otherwise).
    pub username: Option<String>,
    /// Where the password is kept in Vault.
    pub password: Option<Reference>,
    pub failure: FailureMode,
}

impl StoreSettings {
    /// `url` is `redis://[USER@]HOST[:PORT][/DB]` or `rediss://...` (TLS).
    pub fn parse(url: &str, password: Option<&str>, failure: Option<&str>) -> Result<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("redis://") {
            (false, rest)
        } else {
            bail!("[proxy] store must start with redis:// or rediss://");
        };
        if rest.contains(['?', '#']) {
            bail!("[proxy] store takes no query or fragment: redis://HOST:PORT/DB");
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        if userinfo.is_some_and(|u| u.contains(':')) {
            bail!("[proxy] store holds a password in its URL (not shown); keep it in Vault and name it with store_password = \"PATH#FIELD\"");
        }
        let username = userinfo.filter(|u| !u.is_empty()).map(str::to_string);
        let (host, port) = split_host_port(hostport)?;
        let db = match path.trim_end_matches('/') {
            "" => 0,
            n => n
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=15_000).contains(n))
                .ok_or_else(|| anyhow::anyhow!("[proxy] store: the database after the host must be a number (redis://HOST:PORT/0)"))?,
        };
        let password = password
            .map(|text| {
                text.parse::<Reference>()
                    .map_err(|err| anyhow::anyhow!("[proxy] store_password must be a reference (PATH#FIELD), not the password itself: {err}"))
            })
            .transpose()?;
        let failure = failure.map_or(Ok(FailureMode::default()), str::parse)?;
        Ok(StoreSettings {
            tls,
            host,
            port,
            db,
            username,
            password,
            failure,
        })
    }

    /// The URL the client connects to, without a password.
    pub fn connection_url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{user}{host}:{}/{}", self.port, self.db)
    }
}

fn split_host_port(hostport: &str) -> Result<(String, u16)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| anyhow::anyhow!("[proxy] store: an IPv6 address needs its closing ]"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        bail!("[proxy] store names no host: redis://HOST:PORT/DB");
    }
    let port = match port {
        None => 6379,
        Some(port) => port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
            anyhow::anyhow!("[proxy] store: the port must be a number from 1 to 65535")
        })?,
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let s = StoreSettings::parse("redis://10.0.0.5:6380/2", None, None).unwrap();
        assert_eq!(
            (s.tls, s.host.as_str(), s.port, s.db),
            (false, "10.0.0.5", 6380, 2)
        );
        assert_eq!(s.failure, FailureMode::FailClosed);
        let s = StoreSettings::parse(
            "rediss://keywrap@redis.internal",
            Some("secret/redis#password"),
            Some("fail_open"),
        )
        .unwrap();
        assert_eq!((s.tls, s.port, s.db), (true, 6379, 0));
        assert_eq!(s.username.as_deref(), Some("keywrap"));
        assert_eq!(s.password.unwrap().field, "password");
        assert_eq!(s.failure, FailureMode::FailOpen);
        let s = StoreSettings::parse("redis://[::1]:7000/", None, None).unwrap();
        assert_eq!(s.connection_url(), "redis://[::1]:7000/0");
    }

    #[test]
    fn rejects_inline_passwords_without_quoting_them() {
        for url in [
            "redis://:hunter2-not-real@127.0.0.1:6379/0",
            // A fake password: the test checks it is refused. keywrap:allow
            "rediss://user:hunter2-not-real@host/0", // keywrap:allow
        ] {
            let err = StoreSettings::parse(url, None, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains("password in its URL"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            assert!(!err.contains('\n'));
        }
        let err = StoreSettings::parse("redis://h/0", Some("hunter2-not-real"), None)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn rejects_other_mistakes() {
        for (url, says) in [
            ("http://h:1/0", "redis://"),
            ("redis://:6379/0", "no host"),
            ("redis://h:x/0", "port"),
            ("redis://h:1/db", "database"),
            ("redis://h:1/0?password=x", "no query"),
        ] {
            let err = StoreSettings::parse(url, None, None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert!(StoreSettings::parse("redis://h", None, Some("open")).is_err());
    }
}
