//! Connection settings, resolved once: flags > environment (`VAULT_*`, then `BAO_*`) >
//! keywrap.toml `[vault]` > defaults. The rest of the program sees only [`Connection`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::config::LoadedConfig;
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
    /// Resolves every setting by precedence.
    pub fn resolve(
        flags: &ConnectionFlags,
        env: &Environment,
        config: Option<&LoadedConfig>,
    ) -> Result<Self> {
        let file = config.map(|c| &c.file.vault);
        let file_source = || {
            config
                .map(|c| c.path.display().to_string())
                .unwrap_or_default()
        };
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
            file.and_then(|v| v.address.as_ref().map(|a| a.joined())),
            &file_source,
        )
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
            file.and_then(|v| v.namespace.clone()),
            &file_source,
        );

        let file_path = |path: Option<&PathBuf>| {
            path.map(|p| match config {
                Some(c) => c.resolve_path(p),
                None => p.clone(),
            })
        };
        let path_setting = |flag: &Option<PathBuf>, suffix: &str, from_file: Option<&PathBuf>| {
            flag.clone()
                .or_else(|| env.vault_var(suffix).map(|(_, v)| PathBuf::from(v)))
                .or_else(|| file_path(from_file))
        };
        let (skip_verify, skip_verify_source) = if flags.skip_verify {
            (true, "--tls-skip-verify".to_string())
        } else if let Some((name, value)) = env.vault_var("SKIP_VERIFY") {
            match parse_bool(value) {
                Some(on) => (on, name),
                None => bail!("{name}={value:?} is not a boolean; use true or false"),
            }
        } else {
            let on = file.and_then(|v| v.skip_verify).unwrap_or(false);
            (on, format!("skip_verify in {}", file_source()))
        };
        let tls = TlsSettings {
            ca_cert: path_setting(
                &flags.ca_cert,
                "CACERT",
                file.and_then(|v| v.ca_cert.as_ref()),
            ),
            ca_path: path_setting(
                &flags.ca_path,
                "CAPATH",
                file.and_then(|v| v.ca_path.as_ref()),
            ),
            client_cert: path_setting(
                &flags.client_cert,
                "CLIENT_CERT",
                file.and_then(|v| v.client_cert.as_ref()),
            ),
            client_key: path_setting(
                &flags.client_key,
                "CLIENT_KEY",
                file.and_then(|v| v.client_key.as_ref()),
            ),
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
}

/// flag > VAULT_x > BAO_x > file.
fn pick(
    flag: Option<String>,
    flag_name: &str,
    env: &Environment,
    suffix: &str,
    from_file: Option<String>,
    file_source: &dyn Fn() -> String,
) -> Option<Sourced<String>> {
    if let Some(value) = flag.filter(|v| !v.is_empty()) {
        return Some(Sourced {
            value,
            source: flag_name.to_string(),
        });
    }
    if let Some((name, value)) = env.vault_var(suffix) {
        return Some(Sourced {
            value: value.to_string(),
            source: name,
        });
    }
    from_file.filter(|v| !v.is_empty()).map(|value| Sourced {
        value,
        source: file_source(),
    })
}

/// Parses a Vault address; a malformed one is an error naming where it came from.
pub fn parse_address(text: &str, source: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        anyhow::anyhow!("Vault address {text:?} (from {source}) is not a URL ({e}); write it as http://HOST[:PORT] or https://HOST[:PORT]")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("Vault address {text:?} (from {source}) must be http://HOST[:PORT] or https://HOST[:PORT]");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> LoadedConfig {
        LoadedConfig::parse(std::path::Path::new("/p/keywrap.toml"), text.into()).unwrap()
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
