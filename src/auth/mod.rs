//! Logging in to Vault the way workstations and CI runners do, and managing the token's
//! life: tokens keywrap obtains live in memory only, are renewed while the child runs and
//! revoked when it exits; a token the user supplied is never revoked.
//!
//! Methods, in the order keywrap tries them when none is configured:
//! 1. `VAULT_TOKEN` / `BAO_TOKEN`;
//! 2. AppRole, when a role ID and a secret ID are found (variables or files);
//! 3. JWT from `--jwt-file`, the variable named by `jwt_env`, or `VAULT_JWT` / `BAO_JWT`;
//! 4. GitHub Actions' OIDC token, when the runner offers one;
//! 5. GitLab CI's `id_tokens` variable (`VAULT_ID_TOKEN`);
//! 6. Kubernetes, when the service-account token file exists and a role is configured;
//! 7. the token file `~/.vault-token` (what `vault login` leaves);
//! 8. with nothing complete, the method whose material is half there (AppRole, or JWT on
//!    GitHub Actions / GitLab CI), so that its error says what is missing.

pub mod approle;
pub mod jwt;
pub mod kubernetes;
pub mod lifecycle;
pub mod settings;
pub mod token;

use anyhow::{bail, Context, Result};
use vaultrs::api::auth::{approle as vault_approle, kubernetes as vault_kubernetes, oidc};
use zeroize::Zeroize;

pub use settings::{AuthFlags, AuthSettings, Method};
pub use token::{is_credential_variable, no_credentials_error, RUN_VARIABLE};

use crate::environment::Environment;
use crate::secret::SecretString;
use crate::vault::endpoints::LoginProbeRequest;
use crate::vault::{VaultClient, VaultError, VaultResponse};

/// Credentials ready for use, and what keywrap owes them at the end of the run.
pub struct Credentials {
    pub token: SecretString,
    /// A token keywrap obtained by logging in (to renew and revoke); `None` for a token the
    /// user supplied, which keywrap never revokes.
    pub obtained: Option<LoginLease>,
    /// How the token was found, e.g. `approle (auth/approle)` or `VAULT_TOKEN`.
    pub description: String,
    /// Variables holding the login material used, removed from the child's environment.
    pub strip: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &"<redacted>")
            .field("obtained", &self.obtained)
            .field("description", &self.description)
            .finish()
    }
}

/// The lease of a token keywrap logged in for.
#[derive(Debug, Clone)]
pub struct LoginLease {
    /// Seconds the token lives from now (0: no expiry).
    pub ttl: u64,
    pub renewable: bool,
}

/// What a login needs: the method's mount path and vaultrs's login endpoint.
pub struct LoginRequest {
    pub method: Method,
    pub mount: String,
    pub endpoint: LoginEndpoint,
    pub description: String,
    pub strip: Vec<String>,
}

/// vaultrs's login endpoints. The login material in them is wiped when they are dropped.
pub enum LoginEndpoint {
    AppRole(vault_approle::requests::LoginWithApproleRequest),
    Jwt(oidc::requests::JWTLoginRequest),
    Kubernetes(vault_kubernetes::requests::LoginWithKubernetesRequest),
}

impl LoginEndpoint {
    async fn send(&self, client: &VaultClient) -> Result<VaultResponse, VaultError> {
        match self {
            LoginEndpoint::AppRole(request) => client.call(request).await,
            LoginEndpoint::Jwt(request) => client.call(request).await,
            LoginEndpoint::Kubernetes(request) => client.call(request).await,
        }
    }
}

impl Drop for LoginEndpoint {
    fn drop(&mut self) {
        match self {
            LoginEndpoint::AppRole(request) => {
                request.role_id.zeroize();
                request.secret_id.zeroize();
            }
            LoginEndpoint::Jwt(request) => request.jwt.zeroize(),
            LoginEndpoint::Kubernetes(request) => request.jwt.zeroize(),
        }
    }
}

/// Finds credentials by configuration or, with none, by the documented order; logs in
/// when the method needs it.
pub async fn authenticate(
    client: &VaultClient,
    settings: &AuthSettings,
    env: &Environment,
) -> Result<Credentials> {
    let method = match settings.method {
        Some(method) => {
            crate::log::verbose(format_args!("auth: {method} (configured)"));
            method
        }
        None => match settings::detect(settings, env) {
            Some((method, why)) => {
                crate::log::verbose(format_args!("auth: {method} ({why})"));
                method
            }
            None => return Err(no_credentials_error(env)),
        },
    };
    let request = match method {
        Method::Token => return token::credentials(env),
        Method::AppRole => approle::login_request(client, settings, env).await?,
        Method::Jwt => jwt::login_request(settings, env).await?,
        Method::Kubernetes => kubernetes::login_request(settings, env)?,
    };
    login(client, request).await
}

/// Posts a login request; errors name the method, the mount and Vault's reason.
async fn login(client: &VaultClient, request: LoginRequest) -> Result<Credentials> {
    let response = request
        .endpoint
        .send(client)
        .await
        .with_context(|| format!("{} login failed", request.method))?;
    match response.status.as_u16() {
        200 => {}
        403 if response.errors().iter().all(|e| e == "permission denied") => {
            if mounted(client, &request.mount).await {
                bail!(
                    "{} login at auth/{} failed: permission denied: Vault refused this identity ({})",
                    request.method,
                    request.mount,
                    request.method.refusal_hint()
                );
            }
            bail!(
                "{} login at auth/{} failed: no {} auth method is mounted at auth/{} (Vault answered permission denied; `vault auth list` shows the mounts; set the path with --auth-mount or [auth] mount)",
                request.method,
                request.mount,
                request.method.vault_type(),
                request.mount
            )
        }
        status => {
            let errors = response.errors();
            let hint = if errors.iter().any(|e| e.contains("missing role")) {
                "; name the role with --auth-role or [auth] role (or set the mount's default_role)"
            } else {
                ""
            };
            bail!(
                "{} login at auth/{} failed (HTTP {status}): {}{hint}",
                request.method,
                request.mount,
                one_line(&errors)
            )
        }
    }
    let Some(auth) = response.auth()? else {
        bail!(
            "{} login at auth/{} returned no token",
            request.method,
            request.mount
        );
    };
    crate::log::verbose(format_args!(
        "logged in with {}; token valid {}s{}",
        request.description,
        auth.lease_duration,
        if auth.renewable { ", renewable" } else { "" }
    ));
    Ok(Credentials {
        token: SecretString::from(auth.client_token),
        obtained: Some(LoginLease {
            ttl: auth.lease_duration,
            renewable: auth.renewable,
        }),
        description: request.description,
        strip: request.strip,
    })
}

/// Whether an auth method answers at `mount`: Vault answers a GET of its login path with
/// 405 when one is mounted and with 403, like the login itself, when nothing is (no token
/// needed).
async fn mounted(client: &VaultClient, mount: &str) -> bool {
    let probe = LoginProbeRequest {
        mount: mount.trim_matches('/').to_string(),
    };
    client
        .call(&probe)
        .await
        .is_ok_and(|response| response.status.as_u16() != 403)
}

/// Vault's error strings on one line.
pub fn one_line(errors: &[String]) -> String {
    let text: Vec<String> = errors
        .iter()
        .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    if text.is_empty() {
        "no reason given".into()
    } else {
        text.join("; ")
    }
}

/// Reads a file of login material (a role ID, a secret ID, a JWT), trimmed, once the file
/// that named it is trusted; errors name the method, the file and the cause.
pub fn read_material(
    path: &crate::trust::Gated<std::path::PathBuf>,
    method: Method,
    what: &str,
) -> Result<SecretString> {
    let path = path.get()?;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{method} login: cannot read the {what} file {}",
            path.display()
        )
    })?;
    let text = text.trim();
    if text.is_empty() {
        bail!(
            "{method} login: the {what} file {} is empty",
            path.display()
        );
    }
    Ok(SecretString::from(text.to_string()))
}
