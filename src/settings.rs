//! Connection settings, resolved once: flags > environment (`VAULT_*`, then `BAO_*`) >
//! keywrap.toml `[vault]` > defaults. The rest of the program sees only [`Connection`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::config::{self, LoadedConfig, Sensitive};
use crate::environment::{parse_bool, Environment};

/// The Vault CLI's default address.
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";
/// How long one run may spend talking to Vault before it gives up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection settings given as flags.
#[derive(Debug, Default, Clone)]
pub struct ConnectionFlags {
    pub address: Option<String>,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub skip_verify: bool,
    pub timeout: Option<Duration>,
}

/// A setting and where it came from, for `-v` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

/// Everything needed to reach Vault, except the credentials.
#[derive(Debug, Clone)]
pub struct Connection {
    /// One address, or the nodes of a cluster tried in order.
    pub address: Sourced<Vec<reqwest::Url>>,
    pub namespace: Option<Sourced<String>>,
    pub tls: TlsSettings,
    /// Where verification was turned off (`VAULT_SKIP_VERIFY`, the flag, ...), for the warning.
    pub skip_verify_source: Option<String>,
    pub timeout: Duration,
}

/// TLS settings, as the Vault CLI's `VAULT_CACERT` and friends.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub skip_verify: bool,
}

impl Connection {
    /// Resolves every setting by precedence. A setting keywrap.toml gives is used only when
    /// that file is trusted ([`crate::trust`]); `skip_verify` from the file never is.
    pub fn resolve(
        flags: &ConnectionFlags,
        env: &Environment,
        config: Option<&LoadedConfig>,
    ) -> Result<Self> {
        let file = config.map(|c| &c.file.vault);
        for suffix in ["ADDR", "NAMESPACE", "CACERT", "CAPATH", "SKIP_VERIFY"] {
            if env.vault_var_conflict(suffix) {
                crate::log::warn(format_args!(
                    "VAULT_{suffix} and BAO_{suffix} differ; using VAULT_{suffix}"
                ));
            }
        }

        let address = pick(
            flags.address.clone(),
            "--address",
            env,
            "ADDR",
            config.zip(file.and_then(|v| v.address.as_ref().map(|a| a.joined()))),
            &config::ADDRESS,
        )?
        .unwrap_or_else(|| Sourced {
            value: DEFAULT_ADDRESS.to_string(),
            source: "default".into(),
        });
        let urls = address
            .value
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| parse_address(a, &address.source))
            .collect::<Result<Vec<_>>>()?;
        if urls.is_empty() {
            bail!("no Vault address in {}", address.source);
        }

        let namespace = pick(
            flags.namespace.clone(),
            "--namespace",
            env,
            "NAMESPACE",
            config.zip(file.and_then(|v| v.namespace.clone())),
            &config::NAMESPACE,
        )?;

        let path_setting = |flag: &Option<PathBuf>,
                            suffix: &str,
                            from_file: Option<&PathBuf>,
                            setting: &Sensitive|
         -> Result<Option<PathBuf>> {
            if let Some(path) = flag
                .clone()
                .or_else(|| env.vault_var(suffix).map(|(_, v)| PathBuf::from(v)))
            {
                return Ok(Some(path));
            }
            match (config, from_file) {
                (Some(c), Some(path)) => {
                    c.require_trust(setting.key, setting.instead)?;
                    Ok(Some(c.resolve_path(path)))
                }
                _ => Ok(None),
            }
        };
        let (skip_verify, skip_verify_source) = if flags.skip_verify {
            (true, "--tls-skip-verify".to_string())
        } else if let Some((name, value)) = env.vault_var("SKIP_VERIFY") {
            match parse_bool(value) {
                Some(on) => (on, name),
                None => bail!(
                    "{name} is not a boolean ({}); use true or false",
                    crate::redact::length(value)
                ),
            }
        } else {
            if let (Some(c), Some(true)) = (config, file.and_then(|v| v.skip_verify)) {
                crate::log::warn(format_args!(
                    "skip_verify = true in {} is ignored: a keywrap.toml cannot turn off TLS verification (use --tls-skip-verify or VAULT_SKIP_VERIFY=true for a test server)",
                    crate::trust::display_path(&c.path)
                ));
            }
            (false, String::new())
        };
        let tls = TlsSettings {
            ca_cert: path_setting(
                &flags.ca_cert,
                "CACERT",
                file.and_then(|v| v.ca_cert.as_ref()),
                &config::CA_CERT,
            )?,
            ca_path: path_setting(
                &flags.ca_path,
                "CAPATH",
                file.and_then(|v| v.ca_path.as_ref()),
                &config::CA_PATH,
            )?,
            client_cert: path_setting(
                &flags.client_cert,
                "CLIENT_CERT",
                file.and_then(|v| v.client_cert.as_ref()),
                &config::CLIENT_CERT,
            )?,
            client_key: path_setting(
                &flags.client_key,
                "CLIENT_KEY",
                file.and_then(|v| v.client_key.as_ref()),
                &config::CLIENT_KEY,
            )?,
            skip_verify,
        };
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            bail!("a client certificate needs both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (or the flags)");
        }
        Ok(Connection {
            address: Sourced {
                value: urls,
                source: address.source,
            },
            namespace,
            tls,
            skip_verify_source: skip_verify.then_some(skip_verify_source),
            timeout: flags.timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    /// The nodes a token would reach over plain `http://` on another machine, where anyone
    /// on the network path can read it.
    pub fn plain_http_remote_nodes(&self) -> Vec<String> {
        self.address
            .value
            .iter()
            .filter(|url| url.scheme() == "http" && !is_loopback(url))
            .map(|url| url.as_str().trim_end_matches('/').to_string())
            .collect()
    }
}

/// A URL whose host is this machine: `localhost` (and `*.localhost`), 127.0.0.0/8, `::1`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// flag > VAULT_x > BAO_x > file; the file's value only when the file is trusted.
fn pick(
    flag: Option<String>,
    flag_name: &str,
    env: &Environment,
    suffix: &str,
    from_file: Option<(&LoadedConfig, String)>,
    setting: &Sensitive,
) -> Result<Option<Sourced<String>>> {
    if let Some(value) = flag.filter(|v| !v.is_empty()) {
        return Ok(Some(Sourced {
            value,
            source: flag_name.to_string(),
        }));
    }
    if let Some((name, value)) = env.vault_var(suffix) {
        return Ok(Some(Sourced {
            value: value.to_string(),
            source: name,
        }));
    }
    match from_file.filter(|(_, v)| !v.is_empty()) {
        Some((config, value)) => {
            config.require_trust(setting.key, setting.instead)?;
            Ok(Some(Sourced {
                value,
                source: config.path.display().to_string(),
            }))
        }
        None => Ok(None),
    }
}

/// Parses a Vault address; a malformed one is an error naming where it came from (not the
/// text, which may be anything pasted into `VAULT_ADDR`).
pub fn parse_address(text: &str, source: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        anyhow::anyhow!(
            "the Vault address from {source} ({}) is not a URL ({e}); write it as http://HOST[:PORT] or https://HOST[:PORT]",
            crate::redact::length(text.trim())
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!(
            "the Vault address from {source} ({}) must be http://HOST[:PORT] or https://HOST[:PORT]",
            crate::redact::length(text.trim())
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> LoadedConfig {
        untrusted(text).assume_trusted()
    }

    fn untrusted(text: &str) -> LoadedConfig {
        LoadedConfig::parse(std::path::Path::new("/p/keywrap.toml"), text.into()).unwrap()
    }

    #[test]
    fn an_untrusted_file_gives_no_address_but_the_environment_overrides_it() {
        let file = untrusted("[vault]\naddress = \"http://attacker:1\"\n");
        let err = Connection::resolve(
            &ConnectionFlags::default(),
            &Environment::default(),
            Some(&file),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("[vault] address in /p/keywrap.toml is not used"),
            "{err}"
        );
        assert!(err.contains("keywrap trust /p/keywrap.toml"), "{err}");
        let env = Environment::from_pairs([("VAULT_ADDR", "http://mine:2")]);
        let resolved = Connection::resolve(&ConnectionFlags::default(), &env, Some(&file)).unwrap();
        assert_eq!(resolved.address.source, "VAULT_ADDR");
        for text in [
            "[vault]\nnamespace = \"x\"\n",
            "[vault]\nca_cert = \"x.pem\"\n",
            "[vault]\nclient_cert = \"c\"\nclient_key = \"k\"\n",
        ] {
            let file = untrusted(text);
            let err =
                Connection::resolve(&ConnectionFlags::default(), &env, Some(&file)).unwrap_err();
            assert!(err.to_string().contains("is not used"), "{text}: {err}");
        }
    }

    #[test]
    fn skip_verify_from_the_file_is_never_honoured() {
        let file = config("[vault]\nskip_verify = true\n");
        let env = Environment::from_pairs([("VAULT_ADDR", "https://mine:2")]);
        let resolved = Connection::resolve(&ConnectionFlags::default(), &env, Some(&file)).unwrap();
        assert!(!resolved.tls.skip_verify);
        assert_eq!(resolved.skip_verify_source, None);
        let env =
            Environment::from_pairs([("VAULT_ADDR", "https://mine:2"), ("VAULT_SKIP_VERIFY", "1")]);
        let resolved = Connection::resolve(&ConnectionFlags::default(), &env, Some(&file)).unwrap();
        assert!(resolved.tls.skip_verify);
    }

    #[test]
    fn plain_http_to_another_machine_is_noticed() {
        let nodes = |address: &str| {
            let env = Environment::from_pairs([("VAULT_ADDR", address)]);
            Connection::resolve(&ConnectionFlags::default(), &env, None)
                .unwrap()
                .plain_http_remote_nodes()
        };
        assert_eq!(
            nodes("http://vault.internal:8200"),
            ["http://vault.internal:8200"]
        );
        assert_eq!(
            nodes("http://10.0.0.5:8200,https://vault:8200"),
            ["http://10.0.0.5:8200"]
        );
        for local in [
            "http://127.0.0.1:8200",
            "http://127.1.2.3:8200",
            "http://localhost:8200",
            "http://[::1]:8200",
            "http://[::ffff:127.0.0.1]:8200",
            "https://vault.example.com",
        ] {
            assert!(nodes(local).is_empty(), "{local}");
        }
    }

    #[test]
    fn flags_beat_environment_beat_file() {
        let file = config(
            "[vault]\naddress = \"http://file:1\"\nnamespace = \"fns\"\nca_cert = \"ca.pem\"\n",
        );
        let env = Environment::from_pairs([("BAO_ADDR", "http://env:2")]);
        let resolved = Connection::resolve(&ConnectionFlags::default(), &env, Some(&file)).unwrap();
        assert_eq!(resolved.address.value[0].as_str(), "http://env:2/");
        assert_eq!(resolved.address.source, "BAO_ADDR");
        assert_eq!(resolved.namespace.unwrap().value, "fns");
        assert_eq!(resolved.tls.ca_cert, Some(PathBuf::from("/p/ca.pem")));

        let flags = ConnectionFlags {
            address: Some("http://flag:3".into()),
            ..Default::default()
        };
        let resolved = Connection::resolve(&flags, &env, Some(&file)).unwrap();
        assert_eq!(resolved.address.source, "--address");

        let resolved =
            Connection::resolve(&ConnectionFlags::default(), &Environment::default(), None)
                .unwrap();
        assert_eq!(
            resolved.address.value[0].as_str(),
            "https://127.0.0.1:8200/"
        );
    }

    #[test]
    fn several_addresses_from_a_list_or_commas() {
        let file =
            config("[vault]\naddress = [\"https://vault-a:8200\", \"https://vault-b:8200\"]\n");
        let resolved = Connection::resolve(
            &ConnectionFlags::default(),
            &Environment::default(),
            Some(&file),
        )
        .unwrap();
        assert_eq!(resolved.address.value.len(), 2);
        assert_eq!(resolved.address.value[1].host_str(), Some("vault-b"));
        let env = Environment::from_pairs([("VAULT_ADDR", "http://a:1, http://b:2")]);
        let resolved = Connection::resolve(&ConnectionFlags::default(), &env, None).unwrap();
        assert_eq!(resolved.address.value.len(), 2);
    }

    #[test]
    fn bad_settings_are_errors() {
        let env = Environment::from_pairs([("VAULT_ADDR", "not a url")]);
        let err = Connection::resolve(&ConnectionFlags::default(), &env, None).unwrap_err();
        assert!(err.to_string().contains("VAULT_ADDR"), "{err}");
        let env = Environment::from_pairs([("VAULT_ADDR", "127.0.0.1:8200")]);
        let err = Connection::resolve(&ConnectionFlags::default(), &env, None).unwrap_err();
        assert!(err.to_string().contains("https://HOST[:PORT]"), "{err}");
        let env = Environment::from_pairs([("VAULT_SKIP_VERIFY", "yes please")]);
        assert!(Connection::resolve(&ConnectionFlags::default(), &env, None).is_err());
        let env = Environment::from_pairs([("VAULT_SKIP_VERIFY", "")]);
        let resolved = Connection::resolve(&ConnectionFlags::default(), &env, None).unwrap();
        assert!(
            !resolved.tls.skip_verify,
            "an empty VAULT_SKIP_VERIFY keeps verification on"
        );
    }
}
