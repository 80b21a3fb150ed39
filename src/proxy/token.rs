//! Keeping the proxy's Vault token alive: a proxy runs for days, longer than many token
//! TTLs, and without its token it can no longer see new client keys, revocations or rotations.
//! A renewable token is renewed when half of its TTL is left; a token that never expires
//! needs nothing; one that cannot be renewed is reported once.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::vault::VaultClient;

/// Wait before trying again after a failed renewal.
const RETRY: Duration = Duration::from_secs(10);
/// Never renew more often than this, even with a very short TTL.
const MIN_WAIT: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct Lookup {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Renewal {
    auth: RenewalAuth,
}

#[derive(Deserialize)]
struct RenewalAuth {
    lease_duration: u64,
}

/// Renews for as long as the proxy runs.
pub async fn keep_alive(client: VaultClient) {
    loop {
        let wait = match renew(&client.renewed_deadline()).await {
            Ok(Some(ttl)) => (ttl / 2).max(MIN_WAIT),
            Ok(None) => return,
            Err(err) => {
                crate::log::warn(format_args!("cannot renew the Vault token: {err:#}"));
                RETRY
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Renews the token if it expires and can be renewed; returns its new TTL.
async fn renew(client: &VaultClient) -> Result<Option<Duration>> {
    let response = client.get("auth/token/lookup-self").await?;
    if !response.status.is_success() {
        anyhow::bail!(
            "Vault answered {} to auth/token/lookup-self",
            response.status.as_u16()
        );
    }
    let lookup: Lookup = response.json("auth/token/lookup-self")?;
    if lookup.data.ttl == 0 {
        return Ok(None);
    }
    if !lookup.data.renewable {
        crate::log::warn(format_args!(
            "the Vault token expires in {}s and cannot be renewed; after that the proxy sees no new client keys, revocations or key versions",
            lookup.data.ttl
        ));
        return Ok(None);
    }
    let response = client
        .post("auth/token/renew-self", &serde_json::json!({}))
        .await?;
    if !response.status.is_success() {
        anyhow::bail!(
            "Vault answered {} to auth/token/renew-self",
            response.status.as_u16()
        );
    }
    let renewal: Renewal = response
        .json("auth/token/renew-self")
        .context("renewal answer")?;
    crate::log::verbose(format_args!(
        "Vault token renewed for {}s",
        renewal.auth.lease_duration
    ));
    Ok(Some(Duration::from_secs(renewal.auth.lease_duration)))
}
