//! KV v2 version lifecycle: metadata reads (never values), check-and-set writes, custom
//! metadata, and deleting or destroying old versions. Used by `rotate` and `status`.

use std::collections::BTreeMap;

use vaultrs::api::kv2::{requests, responses};

use super::kv::{KvError, KvVersion, Mount};
use super::{wipe_json, VaultClient, VaultError, VaultResponse};
use crate::secret::SecretValue;
use crate::timestamp::Timestamp;

/// `GET mount/metadata/path`: versions and custom metadata, no values.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub current_version: u64,
    pub versions: BTreeMap<u64, VersionInfo>,
    pub custom: BTreeMap<String, String>,
}

/// One version's state.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub created: Option<Timestamp>,
    pub deleted: bool,
    pub destroyed: bool,
}

impl VersionInfo {
    pub fn readable(&self) -> bool {
        !self.deleted && !self.destroyed
    }
}

impl Metadata {
    pub fn current(&self) -> Option<&VersionInfo> {
        self.versions.get(&self.current_version)
    }
}

/// Reading metadata is what `keywrap policy --metadata` adds.
fn metadata_hint(api_path: &str, capability: &str) -> &'static str {
    match capability {
        "read" if api_path.contains("/metadata/") => {
            "; `keywrap policy --metadata` prints a policy that grants it"
        }
        _ => "",
    }
}

/// Errors of the lifecycle operations that callers act on.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("\"{path}\" is on a KV v1 mount, which has no versions; rotation and age need KV v2")]
    NotVersioned { path: String },
    #[error("another write to \"{path}\" landed first (check-and-set expected version {expected}); nothing was written; run `keywrap status` and rotate again if needed")]
    Conflict { path: String, expected: u64 },
    #[error(
        "permission denied on {api_path}: the token's policies lack \"{capability}\"{}",
        metadata_hint(api_path, capability)
    )]
    Denied {
        api_path: String,
        capability: &'static str,
    },
    #[error("no secret at \"{path}\"; write its first version with `vault kv put` (rotation replaces an existing key)")]
    NotFound { path: String },
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

fn require_v2(mount: &Mount, path: &str) -> Result<(), VersionError> {
    match mount.version {
        KvVersion::V2 => Ok(()),
        KvVersion::V1 => Err(VersionError::NotVersioned {
            path: path.to_string(),
        }),
    }
}

/// Reads a secret's metadata; needs `read` on `mount/metadata/path`.
pub async fn metadata(
    client: &VaultClient,
    mount: &Mount,
    path: &str,
) -> Result<Metadata, VersionError> {
    require_v2(mount, path)?;
    let api_path = mount.metadata_path(path);
    let response = client
        .call(&requests::ReadSecretMetadataRequest {
            mount: mount.name().to_string(),
            path: mount.relative(path).to_string(),
        })
        .await?;
    match response.status.as_u16() {
        200 => {}
        403 => {
            return Err(VersionError::Denied {
                api_path,
                capability: "read",
            })
        }
        404 => {
            return Err(VersionError::NotFound {
                path: path.to_string(),
            })
        }
        _ => return Err(response.api_error().into()),
    }
    let answer: responses::ReadSecretMetadataResponse = response.data()?;
    let versions = answer
        .versions
        .into_iter()
        .filter_map(|(number, raw)| {
            Some((
                number.parse().ok()?,
                VersionInfo {
                    created: Timestamp::parse(&raw.created_time),
                    deleted: !raw.deletion_time.is_empty(),
                    destroyed: raw.destroyed,
                },
            ))
        })
        .collect();
    Ok(Metadata {
        current_version: answer.current_version,
        versions,
        custom: answer
            .custom_metadata
            .unwrap_or_default()
            .into_iter()
            .collect(),
    })
}

/// Writes a new version with check-and-set: it lands only if `expected` is still the
/// current version. Returns the new version number.
pub async fn write_cas(
    client: &VaultClient,
    mount: &Mount,
    path: &str,
    fields: &BTreeMap<String, SecretValue>,
    expected: u64,
) -> Result<u64, VersionError> {
    require_v2(mount, path)?;
    let api_path = mount.data_path(path);
    let data: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|(name, value)| (name.clone(), value.expose().into()))
        .collect();
    let response = write(client, mount, path, data.into(), expected).await?;
    match response.status.as_u16() {
        200 | 204 => {}
        400 if response
            .errors()
            .iter()
            .any(|e| e.contains("check-and-set")) =>
        {
            return Err(VersionError::Conflict {
                path: path.to_string(),
                expected,
            })
        }
        403 => {
            return Err(VersionError::Denied {
                api_path,
                capability: "update",
            })
        }
        _ => return Err(response.api_error().into()),
    }
    Ok(response.data::<responses::SecretVersionMetadata>()?.version)
}

/// `POST mount/data/path` with check-and-set: the new version lands only if `expected`
/// is still the current one (0: only if there is none). The values in `data` are wiped
/// once sent.
pub async fn write(
    client: &VaultClient,
    mount: &Mount,
    path: &str,
    data: serde_json::Value,
    expected: u64,
) -> Result<VaultResponse, VaultError> {
    let cas = u32::try_from(expected).map_err(|_| VaultError::Malformed {
        path: mount.data_path(path),
        cause: format!("version {expected} is beyond check-and-set's range"),
    })?;
    let mut request = requests::SetSecretRequest {
        mount: mount.name().to_string(),
        path: mount.relative(path).to_string(),
        data,
        options: Some(requests::SetSecretRequestOptions { cas }),
    };
    let response = client.call(&request).await;
    wipe_json(std::mem::take(&mut request.data));
    response
}

/// Replaces the secret's custom metadata (Vault has no partial update that both Vault and
/// OpenBao accept, so callers pass the whole map).
pub async fn set_custom_metadata(
    client: &VaultClient,
    mount: &Mount,
    path: &str,
    custom: &BTreeMap<String, String>,
) -> Result<(), VersionError> {
    require_v2(mount, path)?;
    let api_path = mount.metadata_path(path);
    let response = client
        .call(&requests::SetSecretMetadataRequest {
            mount: mount.name().to_string(),
            path: mount.relative(path).to_string(),
            custom_metadata: Some(custom.clone().into_iter().collect()),
            ..Default::default()
        })
        .await?;
    expect_success(response, api_path, "update")
}

/// How an old version is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Soft delete: `vault kv undelete` can bring it back.
    Delete,
    /// Permanent: the value is gone from storage.
    Destroy,
}

impl Removal {
    pub fn past_tense(self) -> &'static str {
        match self {
            Removal::Delete => "deleted",
            Removal::Destroy => "destroyed",
        }
    }
}

/// Deletes or destroys one version.
pub async fn remove_version(
    client: &VaultClient,
    mount: &Mount,
    path: &str,
    version: u64,
    removal: Removal,
) -> Result<(), VersionError> {
    require_v2(mount, path)?;
    let (name, relative) = (mount.name().to_string(), mount.relative(path).to_string());
    let response = match removal {
        Removal::Delete => {
            client
                .call(&requests::DeleteSecretVersionsRequest {
                    mount: name,
                    path: relative,
                    versions: vec![version],
                })
                .await?
        }
        Removal::Destroy => {
            client
                .call(&requests::DestroySecretVersionsRequest {
                    mount: name,
                    path: relative,
                    versions: vec![version],
                })
                .await?
        }
    };
    let api_path = response.path.clone();
    expect_success(response, api_path, "update")
}

fn expect_success(
    response: VaultResponse,
    api_path: String,
    capability: &'static str,
) -> Result<(), VersionError> {
    match response.status.as_u16() {
        200 | 204 => Ok(()),
        403 => Err(VersionError::Denied {
            api_path,
            capability,
        }),
        _ => Err(response.api_error().into()),
    }
}
