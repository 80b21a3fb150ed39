//! Kubernetes auth: the pod's service-account token and a role.

use anyhow::{bail, Result};
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;

use super::{read_material, AuthSettings, LoginEndpoint, LoginRequest, Method};
use crate::environment::Environment;
use crate::secret::ExposeSecret;

pub fn login_request(settings: &AuthSettings, _env: &Environment) -> Result<LoginRequest> {
    let Some(role) = &settings.role else {
        bail!("kubernetes login needs the Vault role to log in as: --auth-role, KEYWRAP_AUTH_ROLE or [auth] role");
    };
    let file = settings.kubernetes_token_file.get()?;
    if !file.is_file() {
        bail!(
            "kubernetes login: no service-account token at {} (not running in a pod, or automountServiceAccountToken is off; set [auth] token_file)",
            file.display()
        );
    }
    let jwt = read_material(
        &settings.kubernetes_token_file,
        Method::Kubernetes,
        "service-account token",
    )?;
    let mount = settings.mount_for(Method::Kubernetes);
    Ok(LoginRequest {
        method: Method::Kubernetes,
        description: format!("kubernetes (auth/{mount}, role {role})"),
        endpoint: LoginEndpoint::Kubernetes(LoginWithKubernetesRequest {
            mount: mount.clone(),
            role: role.clone(),
            jwt: jwt.expose_secret().to_string(),
        }),
        mount,
        strip: Vec::new(),
    })
}
