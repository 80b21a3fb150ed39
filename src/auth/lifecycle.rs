//! The life of the tokens keywrap holds while the child runs: renewing the one it logged
//! in for, and revoking what it created when the child exits. A token the user supplied is
//! never revoked.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use vaultrs::api::token::requests::{
    CreateTokenRequest, LookupTokenSelfRequest, RenewTokenSelfRequest, RevokeTokenSelfRequest,
};
use vaultrs::api::token::responses::LookupTokenResponse;
use zeroize::Zeroize;

use super::LoginLease;
use crate::identity::RunIdentity;
use crate::secret::SecretString;
use crate::vault::VaultClient;

/// Renewal happens when this fraction of the lease has passed.
const RENEW_AT: f64 = 2.0 / 3.0;
/// Seconds between renewals at least; short enough to renew a 1 s token before it expires.
const MIN_WAIT: f64 = 0.25;

/// Holds the tokens of one run until the child exits.
pub struct TokenKeeper {
    /// The token keywrap logged in for, with its lease; `None` for a supplied token.
    obtained: Option<(VaultClient, LoginLease)>,
    /// A supplied token kept alive too (long-running commands such as the proxy), with the
    /// lease `lookup-self` reported. Never revoked.
    supplied: Option<(VaultClient, LoginLease)>,
    /// The per-run child token, if one was created.
    per_run: Option<VaultClient>,
    /// Stops the renewal thread, which answers when the token expires.
    renewal: Option<(mpsc::Sender<()>, JoinHandle<Instant>)>,
}

impl TokenKeeper {
    pub fn new(
        client: &VaultClient,
        obtained: Option<LoginLease>,
        per_run: Option<VaultClient>,
    ) -> Self {
        TokenKeeper {
            obtained: obtained.map(|lease| (client.clone(), lease)),
            supplied: None,
            per_run,
            renewal: None,
        }
    }

    /// For a command that runs for days (the proxy): also keeps a supplied token alive,
    /// since it outlives most token TTLs; the supplied token is still never revoked.
    pub async fn for_daemon(client: &VaultClient, obtained: Option<LoginLease>) -> Self {
        let mut keeper = TokenKeeper::new(client, obtained, None);
        if keeper.obtained.is_none() {
            keeper.supplied = supplied_lease(client)
                .await
                .map(|lease| (client.clone(), lease));
        }
        keeper
    }

    /// Starts renewing the obtained token in the background (or, for a token that cannot be
    /// renewed, watching it so that keywrap says so before it expires).
    pub fn keep_alive(&mut self) {
        let Some((client, lease)) = self.obtained.as_ref().or(self.supplied.as_ref()) else {
            return;
        };
        // A supplied token that cannot be renewed was already warned about.
        if lease.ttl == 0 || (!lease.renewable && self.obtained.is_none()) {
            return;
        }
        let (stop, stopped) = mpsc::channel();
        let client = client.clone();
        let lease = lease.clone();
        let handle = std::thread::spawn(move || renew_until_stopped(client, lease, stopped));
        self.renewal = Some((stop, handle));
    }

    /// Stops renewing and revokes what keywrap created; bounded in time, never fatal.
    pub fn finish(mut self) {
        if let Some((stop, handle)) = self.renewal.take() {
            let _ = stop.send(());
            let expired = handle.join().is_ok_and(|expiry| Instant::now() >= expiry);
            if expired && self.obtained.take().is_some() {
                crate::log::verbose(
                    "the token keywrap logged in with has expired: nothing to revoke",
                );
            }
        }
        if self.obtained.is_none() && self.per_run.is_none() {
            return;
        }
        let Ok(runtime) = crate::runtime::runtime() else {
            return;
        };
        runtime.block_on(self.revoke());
    }

    /// Revokes the per-run token and the obtained token.
    pub async fn revoke(&self) {
        if let Some(client) = &self.per_run {
            // It may already be used up or expired, which is as good as revoked.
            let _ = client
                .renewed_deadline()
                .call(&RevokeTokenSelfRequest {})
                .await;
        }
        if let Some((client, _)) = &self.obtained {
            match client
                .renewed_deadline()
                .call(&RevokeTokenSelfRequest {})
                .await
            {
                Ok(response) if response.status.is_success() => {
                    crate::log::verbose("revoked the token keywrap logged in with");
                }
                Ok(response) => crate::log::warn(format_args!(
                    "could not revoke the token keywrap logged in with ({}); it expires on its own",
                    super::one_line(&response.errors())
                )),
                Err(err) => crate::log::warn(format_args!(
                    "could not revoke the token keywrap logged in with ({err}); it expires on its own"
                )),
            }
        }
    }
}

/// The lease of a supplied token, from `lookup-self`; `None` when it never expires or
/// cannot be looked up.
async fn supplied_lease(client: &VaultClient) -> Option<LoginLease> {
    let response = client
        .renewed_deadline()
        .call(&LookupTokenSelfRequest {})
        .await
        .ok()?;
    if !response.status.is_success() {
        return None;
    }
    let mut answer: LookupTokenResponse = response.data().ok()?;
    // The answer carries the token itself.
    answer.id.zeroize();
    let ttl = answer.ttl;
    let renewable = answer.renewable.unwrap_or(false);
    if ttl > 0 && !renewable {
        crate::log::warn(format_args!(
            "the Vault token expires in {ttl}s and cannot be renewed; after that keywrap can no longer reach Vault"
        ));
    }
    (ttl > 0).then_some(LoginLease { ttl, renewable })
}

/// Renews at two thirds of each lease until told to stop; says once if it cannot. Returns
/// when the token expires (as far as keywrap knows).
fn renew_until_stopped(
    client: VaultClient,
    start: LoginLease,
    stopped: mpsc::Receiver<()>,
) -> Instant {
    let increment = start.ttl;
    let mut lease = start.ttl;
    let mut expiry = Instant::now() + Duration::from_secs(lease);
    let Ok(runtime) = crate::runtime::runtime() else {
        return expiry;
    };
    loop {
        let wait = Duration::from_secs_f64((lease as f64 * RENEW_AT).max(MIN_WAIT));
        match stopped.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return expiry,
        }
        if !start.renewable {
            crate::log::warn(format_args!(
                "cannot renew the Vault token keywrap logged in with: it is not renewable; it expires within {}s",
                expiry.saturating_duration_since(Instant::now()).as_secs_f64().ceil()
            ));
            return expiry;
        }
        let renewal = RenewTokenSelfRequest {
            increment: Some(format!("{increment}s")),
        };
        let answer = runtime.block_on(client.renewed_deadline().call(&renewal));
        let new_lease = match answer {
            Ok(response) if response.status.is_success() => {
                response.auth().ok().flatten().map(|mut auth| {
                    auth.client_token.zeroize();
                    auth.lease_duration
                })
            }
            Ok(response) => {
                warn_not_renewed(&super::one_line(&response.errors()), expiry);
                return expiry;
            }
            Err(err) => {
                warn_not_renewed(&err.to_string(), expiry);
                return expiry;
            }
        };
        let Some(new) = new_lease else {
            return expiry;
        };
        expiry = Instant::now() + Duration::from_secs(new);
        if new < increment {
            crate::log::warn(format_args!(
                "the Vault token keywrap logged in with reaches its max TTL in {new}s and cannot be renewed further"
            ));
            return expiry;
        }
        crate::log::verbose(format_args!("renewed the Vault token for {new}s"));
        lease = new;
    }
}

/// Says why a renewal failed. Vault refuses a renewal asked for after the token's max TTL
/// has left less than the renewal interval ("past the max TTL"): that is the max-TTL case,
/// said the same way as when a renewal comes back shorter than asked.
fn warn_not_renewed(reason: &str, expiry: Instant) {
    let left = expiry
        .saturating_duration_since(Instant::now())
        .as_secs_f64()
        .ceil();
    if reason.contains("past the max TTL") {
        crate::log::warn(format_args!(
            "the Vault token keywrap logged in with reaches its max TTL in {left}s and cannot be renewed further"
        ));
    } else {
        crate::log::warn(format_args!(
            "cannot renew the Vault token keywrap logged in with: {reason}; it expires within {left}s"
        ));
    }
}

/// Creates a short-lived child token for one run: it may make `uses` requests, lives
/// `ttl`, and carries the run's identity as metadata, which Vault's audit log shows on
/// every entry made with it. The parent token needs `update` on `auth/token/create`.
pub async fn create_per_run_token(
    parent: &VaultClient,
    identity: &RunIdentity,
    uses: u64,
    ttl: Duration,
) -> Result<VaultClient> {
    let mut meta = std::collections::HashMap::new();
    meta.insert("keywrap_run".into(), identity.correlation_id.clone());
    meta.insert("keywrap_user".into(), identity.user.clone());
    meta.insert("keywrap_host".into(), identity.host.clone());
    if let Some(command) = &identity.command {
        meta.insert("keywrap_command".into(), command.clone());
    }
    if let Some(ci) = &identity.ci {
        meta.insert("keywrap_ci".into(), ci.clone());
    }
    let seconds = format!("{}s", ttl.as_secs().max(1));
    let response = parent
        .call(&CreateTokenRequest {
            display_name: Some(format!(
                "keywrap-{}",
                identity.command.as_deref().unwrap_or("run")
            )),
            ttl: Some(seconds.clone()),
            explicit_max_ttl: Some(seconds),
            num_uses: Some(uses),
            renewable: Some(false),
            meta: Some(meta),
            ..Default::default()
        })
        .await?;
    match response.status.as_u16() {
        200 => {}
        403 => bail!(
            "--per-run-token: the token cannot create child tokens; it needs the \"update\" capability on auth/token/create"
        ),
        status => bail!(
            "--per-run-token: creating the per-run token failed (HTTP {status}): {}",
            super::one_line(&response.errors())
        ),
    }
    let token = response
        .auth()?
        .map(|auth| SecretString::from(auth.client_token))
        .context("--per-run-token: Vault created no token")?;
    crate::log::verbose(format_args!(
        "created a per-run token ({uses} uses, TTL {}s), revoked when the command exits",
        ttl.as_secs().max(1)
    ));
    Ok(parent.with_token(token, "the per-run token"))
}
