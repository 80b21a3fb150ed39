//! KV secrets engine, v1 and v2: finding a path's mount and reading a secret.
//!
//! The mount and version are found the way the Vault CLI does, through
//! `sys/internal/ui/mounts/PATH`, so references are written as `vault kv get` takes them.

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::Deserialize;
use serde_json::Value;
use vaultrs::api::{kv1, kv2, token};

use super::endpoints::{
    CapabilitiesAnswer, CapabilitiesSelfRequest, MountAnswer, MountLookupRequest,
};
use super::{wipe_json, VaultClient, VaultError};
use crate::secret::SecretValue;

/// Characters escaped in a path segment of a message (rustify escapes the same in requests).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}

/// A KV mount, e.g. `secret/` holding KV v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount path with its trailing slash, as Vault reports it.
    pub path: String,
    pub version: KvVersion,
}

impl Mount {
    /// The secret's path inside the mount: `secret/team/openai` → `team/openai`.
    pub fn relative<'a>(&self, path: &'a str) -> &'a str {
        path.strip_prefix(self.path.as_str())
            .or_else(|| path.strip_prefix(self.path.trim_end_matches('/')))
            .unwrap_or(path)
            .trim_start_matches('/')
    }

    /// The mount's path as vaultrs's endpoints take it: `secret`, `team/kv`.
    pub fn name(&self) -> &str {
        self.path.trim_end_matches('/')
    }

    /// The API path that reads the secret (`secret/data/team/openai` for KV v2).
    pub fn data_path(&self, path: &str) -> String {
        self.api_path("data", path)
    }

    /// The API path of a KV v2 secret's metadata.
    pub fn metadata_path(&self, path: &str) -> String {
        self.api_path("metadata", path)
    }

    fn api_path(&self, kind: &str, path: &str) -> String {
        let mount = self.path.trim_end_matches('/');
        let relative = encode_path(self.relative(path));
        match self.version {
            KvVersion::V1 => format!("{mount}/{relative}"),
            KvVersion::V2 => format!("{mount}/{kind}/{relative}"),
        }
    }
}

/// Percent-encodes each segment of a path.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| utf8_percent_encode(segment, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// One read of one secret.
#[derive(Debug)]
pub struct SecretData {
    pub fields: BTreeMap<String, SecretValue>,
    /// KV v2 only: the version that was read, and when it was created.
    pub version: Option<u64>,
    pub created_time: Option<String>,
}

/// How to get the missing "read": `keywrap policy` writes the policy that grants it.
const POLICY_HINT: &str = "; `keywrap policy` prints a policy that reads exactly keywrap.toml's references (`keywrap policy | vault policy write NAME -`)";

fn policy_hint(capability: &str) -> &'static str {
    match capability {
        "read" => POLICY_HINT,
        _ => "",
    }
}

/// Why a KV operation failed, in terms a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error(
        "no KV secrets engine is mounted at \"{path}\"; check the path with `vault secrets list`"
    )]
    NoMount { path: String },
    #[error("Vault has no namespace \"{namespace}\"; check VAULT_NAMESPACE (or --namespace, or namespace in keywrap.toml)")]
    NoNamespace { namespace: String },
    #[error("permission denied reading \"{path}\": the token's policies grant nothing under its mount (or nothing is mounted there); a policy needs the \"read\" capability on {v2_path} (KV v2) or {path} (KV v1){POLICY_HINT}")]
    NoAccess { path: String, v2_path: String },
    #[error("\"{path}\" is on a {kind} mount at {mount}, not a KV secrets engine")]
    NotKv {
        path: String,
        mount: String,
        kind: String,
    },
    #[error("\"{path}\" names the mount itself; add the secret's name, e.g. {path}/myapp")]
    MountItself { path: String },
    #[error("no secret at \"{path}\"; check the path with `vault kv list`")]
    NotFound { path: String },
    #[error("version {version} of \"{path}\" does not exist (or the secret does not); see its versions with `vault kv metadata get {path}`")]
    NoSuchVersion { path: String, version: u64 },
    #[error("version {version} of \"{path}\" was {how}; pin another version or write a new one")]
    VersionGone {
        path: String,
        version: u64,
        how: &'static str,
    },
    #[error("\"{path}\" is on a KV v1 mount, which has no versions; remove ?version={version}")]
    VersionOnV1 { path: String, version: u64 },
    #[error("permission denied reading \"{path}\": the token's policies lack the \"{capability}\" capability on {api_path}{}", policy_hint(capability))]
    Denied {
        path: String,
        capability: &'static str,
        api_path: String,
    },
    #[error("Vault refused the token from {origin}: it is expired, revoked or for another server (a token without the default policy cannot be checked); log in again or set a valid VAULT_TOKEN")]
    BadToken { origin: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// How long to wait before asking again when a mount seems missing.
const NO_MOUNT_RECHECK: std::time::Duration = std::time::Duration::from_millis(300);

/// Finds the mount that holds `path`, and whether it is KV v1 or v2.
///
/// "Nothing mounted" is an inference from a 403, and a node that has just become active (or
/// a standby whose forwarding is down in a failover) gives that 403 for a mount that exists,
/// so that answer alone is asked once more before it is believed: only the error path waits.
pub async fn find_mount(client: &VaultClient, path: &str) -> Result<Mount, KvError> {
    match find_mount_once(client, path).await {
        Err(KvError::NoMount { .. }) => {
            tokio::time::sleep(NO_MOUNT_RECHECK).await;
            find_mount_once(client, path).await
        }
        found => found,
    }
}

async fn find_mount_once(client: &VaultClient, path: &str) -> Result<Mount, KvError> {
    let response = client
        .call(&MountLookupRequest {
            path: path.to_string(),
        })
        .await?;
    match response.status.as_u16() {
        200 => {}
        403 => {
            // Vault checks the token before the mount: a preflight answer means the token
            // is good (even one without the default policy, which cannot look itself up).
            let preflight = response.errors().iter().any(|e| e.contains("preflight"));
            if !preflight && !token_is_valid(client).await {
                return Err(KvError::BadToken {
                    origin: client.token_source().to_string(),
                });
            }
            return Err(no_mount_or_no_access(client, path).await);
        }
        404 if response
            .errors()
            .iter()
            .any(|e| e.contains("namespace not found")) =>
        {
            return Err(KvError::NoNamespace {
                namespace: client.namespace().unwrap_or_default().to_string(),
            });
        }
        _ => return Err(response.api_error().into()),
    }
    let answer: MountAnswer = response.json()?;
    let mount_path = if answer.data.path.ends_with('/') {
        answer.data.path
    } else {
        format!("{}/", answer.data.path)
    };
    if !matches!(answer.data.kind.as_str(), "kv" | "generic") {
        return Err(KvError::NotKv {
            path: path.to_string(),
            mount: mount_path,
            kind: answer.data.kind,
        });
    }
    let version = match answer
        .data
        .options
        .as_ref()
        .and_then(|o| o.get("version"))
        .map(String::as_str)
    {
        Some("2") => KvVersion::V2,
        _ => KvVersion::V1,
    };
    let mount = Mount {
        path: mount_path,
        version,
    };
    if mount.relative(path).is_empty() {
        return Err(KvError::MountItself {
            path: path.to_string(),
        });
    }
    Ok(mount)
}

/// `sys/internal/ui/mounts` answers 403 both when nothing is mounted at a path and when the
/// token's policies grant nothing under the path's mount. The token's own capabilities tell
/// them apart: one that may use the path (a root token) is looking at a missing mount.
async fn no_mount_or_no_access(client: &VaultClient, path: &str) -> KvError {
    let (mount, rest) = path.split_once('/').unwrap_or((path, ""));
    let v2_path = format!("{mount}/data/{rest}");
    let request = CapabilitiesSelfRequest {
        paths: vec![path.to_string(), v2_path.clone()],
    };
    let allowed = match client.call(&request).await {
        Ok(response) if response.status.is_success() => response
            .json::<CapabilitiesAnswer>()
            .map(|answer| {
                answer
                    .data
                    .values()
                    .flatten()
                    .any(|capability| capability != "deny")
            })
            .unwrap_or(false),
        _ => false,
    };
    if allowed {
        KvError::NoMount {
            path: path.to_string(),
        }
    } else {
        KvError::NoAccess {
            path: path.to_string(),
            v2_path,
        }
    }
}

/// Reads one secret (all its fields) from its mount; `version` pins a KV v2 version.
pub async fn read(
    client: &VaultClient,
    mount: &Mount,
    path: &str,
    version: Option<u64>,
) -> Result<SecretData, KvError> {
    if let (KvVersion::V1, Some(version)) = (mount.version, version) {
        return Err(KvError::VersionOnV1 {
            path: path.to_string(),
            version,
        });
    }
    let api_path = mount.data_path(path);
    let relative = mount.relative(path).to_string();
    let response = match mount.version {
        KvVersion::V1 => {
            client
                .call(&kv1::requests::GetSecretRequest {
                    mount: mount.name().to_string(),
                    path: relative,
                })
                .await?
        }
        KvVersion::V2 => {
            client
                .call(&kv2::requests::ReadSecretRequest {
                    mount: mount.name().to_string(),
                    path: relative,
                    version,
                })
                .await?
        }
    };
    match response.status.as_u16() {
        200 => {}
        // The mount lookup just accepted this token, so a 403 here is a missing capability,
        // unless the token expired since: Vault then answers a bare "permission denied"
        // (a missing capability comes wrapped as "1 error occurred") and refuses lookup-self.
        403 => {
            let bare = response
                .errors()
                .iter()
                .all(|e| e.trim() == "permission denied");
            if bare && !token_is_valid(client).await {
                return Err(KvError::BadToken {
                    origin: client.token_source().to_string(),
                });
            }
            return Err(KvError::Denied {
                path: path.to_string(),
                capability: "read",
                api_path,
            });
        }
        404 => {
            if mount.version == KvVersion::V2 {
                if let Ok(answer) = response.json::<Value>() {
                    if let Some(metadata) = answer.pointer("/data/metadata") {
                        let destroyed = metadata.get("destroyed") == Some(&true.into());
                        let deleted = metadata
                            .get("deletion_time")
                            .and_then(|t| t.as_str())
                            .is_some_and(|t| !t.is_empty());
                        let number = metadata
                            .get("version")
                            .and_then(|v| v.as_u64())
                            .or(version)
                            .unwrap_or(0);
                        if destroyed || deleted {
                            return Err(KvError::VersionGone {
                                path: path.to_string(),
                                version: number,
                                how: if destroyed { "destroyed" } else { "deleted" },
                            });
                        }
                    }
                }
                if let Some(version) = version {
                    return Err(KvError::NoSuchVersion {
                        path: path.to_string(),
                        version,
                    });
                }
            }
            return Err(KvError::NotFound {
                path: path.to_string(),
            });
        }
        _ => return Err(response.api_error().into()),
    }
    match mount.version {
        KvVersion::V1 => {
            let answer: kv1::responses::GetSecretResponse = response.json()?;
            Ok(SecretData {
                fields: secret_fields(answer.data, &response.path)?,
                version: None,
                created_time: None,
            })
        }
        KvVersion::V2 => {
            let answer: vaultrs::api::EndpointResult<kv2::responses::ReadSecretResponse> =
                response.json()?;
            let Some(secret) = answer.data else {
                return Err(KvError::NotFound {
                    path: path.to_string(),
                });
            };
            let metadata = secret.metadata;
            let fields = secret_fields(secret.data, &response.path)?;
            if metadata.destroyed || !metadata.deletion_time.is_empty() {
                return Err(KvError::VersionGone {
                    path: path.to_string(),
                    version: metadata.version,
                    how: if metadata.destroyed {
                        "destroyed"
                    } else {
                        "deleted"
                    },
                });
            }
            Ok(SecretData {
                fields,
                version: Some(metadata.version),
                created_time: Some(metadata.created_time),
            })
        }
    }
}

/// A secret's fields from vaultrs's `data` (any JSON), moved into secrecy types at once;
/// what is not moved is wiped. Non-string values become their JSON text, as
/// [`SecretValue`] reads them.
fn secret_fields(data: Value, path: &str) -> Result<BTreeMap<String, SecretValue>, KvError> {
    match data {
        Value::Object(fields) => Ok(fields
            .into_iter()
            .map(|(name, value)| (name, secret_value(value)))
            .collect()),
        Value::Null => Ok(BTreeMap::new()),
        other => {
            wipe_json(other);
            Err(VaultError::Malformed {
                path: path.to_string(),
                cause: "the secret's data is not a map of fields".into(),
            }
            .into())
        }
    }
}

fn secret_value(value: Value) -> SecretValue {
    match value {
        Value::String(text) => SecretValue::new(text),
        Value::Array(_) | Value::Object(_) => {
            let text = SecretValue::new(value.to_string());
            wipe_json(value);
            text
        }
        scalar => {
            SecretValue::deserialize(&scalar).unwrap_or_else(|_| SecretValue::new(String::new()))
        }
    }
}

/// The names directly under `path` (`vault kv list`); sub-folders end with `/`. Empty when
/// nothing was ever written there.
pub async fn list(client: &VaultClient, mount: &Mount, path: &str) -> Result<Vec<String>, KvError> {
    let api_path = mount.metadata_path(path);
    let (name, relative) = (mount.name().to_string(), mount.relative(path).to_string());
    let response = match mount.version {
        KvVersion::V1 => {
            client
                .call(&kv1::requests::ListSecretRequest {
                    mount: name,
                    path: relative,
                })
                .await?
        }
        KvVersion::V2 => {
            client
                .call(&kv2::requests::ListSecretsRequest {
                    mount: name,
                    path: relative,
                })
                .await?
        }
    };
    match (response.status.as_u16(), mount.version) {
        (200, KvVersion::V1) => Ok(response
            .json::<kv1::responses::ListSecretResponse>()?
            .data
            .keys),
        (200, KvVersion::V2) => Ok(response.data::<kv2::responses::ListSecretsResponse>()?.keys),
        (404, _) => Ok(Vec::new()),
        (403, _) => Err(KvError::Denied {
            path: path.to_string(),
            capability: "list",
            api_path,
        }),
        _ => Err(response.api_error().into()),
    }
}

/// Whether Vault still accepts the token: tells "bad token" from "missing capability".
pub async fn token_is_valid(client: &VaultClient) -> bool {
    matches!(client.call(&token::requests::LookupTokenSelfRequest {}).await, Ok(r) if r.status.is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_follow_the_kv_version() {
        let v2 = Mount {
            path: "secret/".into(),
            version: KvVersion::V2,
        };
        assert_eq!(
            v2.data_path("secret/team/openai"),
            "secret/data/team/openai"
        );
        assert_eq!(v2.metadata_path("secret/openai"), "secret/metadata/openai");
        let v1 = Mount {
            path: "kv1/".into(),
            version: KvVersion::V1,
        };
        assert_eq!(v1.data_path("kv1/a b"), "kv1/a%20b");
        let nested = Mount {
            path: "team/kv/".into(),
            version: KvVersion::V2,
        };
        assert_eq!(nested.data_path("team/kv/x"), "team/kv/data/x");
    }
}
