//! JWT auth for CI: a JWT from a file or a variable, GitHub Actions' OIDC token service, or
//! GitLab CI's `id_tokens`, exchanged at Vault's `jwt` auth method for a short-lived token.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use vaultrs::api::auth::oidc::requests::JWTLoginRequest;

use super::settings::GITLAB_ID_TOKEN;
use super::{read_material, AuthSettings, LoginEndpoint, LoginRequest, Method};
use crate::environment::Environment;
use crate::secret::{ExposeSecret, SecretString, SecretValue};

const GITHUB_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
const GITHUB_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// True when the GitHub Actions runner offers OIDC tokens (the job has `id-token: write`).
pub fn github_actions_available(env: &Environment) -> bool {
    env.get(GITHUB_URL).is_some() && env.get(GITHUB_TOKEN).is_some()
}

/// True on GitHub Actions, or when one of the token service's variables is set.
pub fn github_actions_started(env: &Environment) -> bool {
    env.get("GITHUB_ACTIONS") == Some("true")
        || env.get(GITHUB_URL).is_some()
        || env.get(GITHUB_TOKEN).is_some()
}

/// Builds the JWT login request, fetching the JWT from the first source that has one.
/// Without a configured role, Vault uses the mount's `default_role`.
pub async fn login_request(settings: &AuthSettings, env: &Environment) -> Result<LoginRequest> {
    let (jwt, source, strip) = find_jwt(settings, env).await?;
    let mount = settings.mount_for(Method::Jwt);
    let role = match &settings.role {
        Some(role) => format!("role {role}"),
        None => "the mount's default role".to_string(),
    };
    Ok(LoginRequest {
        method: Method::Jwt,
        description: format!("jwt (auth/{mount}, {role}, JWT from {source})"),
        endpoint: LoginEndpoint::Jwt(JWTLoginRequest {
            mount: mount.clone(),
            jwt: jwt.expose_secret().to_string(),
            role: settings.role.clone(),
        }),
        mount,
        strip,
    })
}

/// The JWT, where it came from, and the variables to keep from the child.
async fn find_jwt(
    settings: &AuthSettings,
    env: &Environment,
) -> Result<(SecretString, String, Vec<String>)> {
    if let Some(file) = &settings.jwt_file {
        return Ok((
            read_material(file, Method::Jwt, "JWT")?,
            file.unchecked().display().to_string(),
            Vec::new(),
        ));
    }
    if let Some(name) = &settings.jwt_env {
        let name = name.get()?;
        return match env.get(name) {
            Some(value) => Ok((SecretString::from(value.trim().to_string()), name.clone(), vec![name.clone()])),
            None => bail!(
                "jwt login: the variable {name} (from jwt_env) is not set; on GitLab CI declare it under `id_tokens:` in the job"
            ),
        };
    }
    if let Some((name, value)) = env.vault_var("JWT") {
        return Ok((
            SecretString::from(value.trim().to_string()),
            name.clone(),
            vec![name],
        ));
    }
    if env.get(GITHUB_URL).is_some() || env.get(GITHUB_TOKEN).is_some() {
        let jwt = github_actions_token(env, settings.audience.as_deref()).await?;
        return Ok((
            jwt,
            "GitHub Actions".into(),
            vec![GITHUB_URL.into(), GITHUB_TOKEN.into()],
        ));
    }
    if let Some(value) = env.get(GITLAB_ID_TOKEN) {
        return Ok((
            SecretString::from(value.trim().to_string()),
            GITLAB_ID_TOKEN.into(),
            vec![GITLAB_ID_TOKEN.into()],
        ));
    }
    if env.get("GITHUB_ACTIONS") == Some("true") {
        bail!("jwt login: GitHub Actions offers no OIDC token: {GITHUB_URL} and {GITHUB_TOKEN} are not set; give the job `permissions: id-token: write`");
    }
    if env.get("GITLAB_CI") == Some("true") {
        bail!("jwt login: GitLab CI id token {GITLAB_ID_TOKEN} is not set; add `id_tokens: {GITLAB_ID_TOKEN}: aud: ...` to the job, or name its variable with [auth] jwt_env");
    }
    bail!("jwt login: no JWT found; use --jwt-file, --jwt-env / [auth] jwt_env, VAULT_JWT, GitHub Actions' OIDC token service or GitLab CI's {GITLAB_ID_TOKEN}")
}

/// Requests an ID token from GitHub Actions' token service for the given audience (GitHub's
/// default audience, the repository owner's URL, when none is configured).
async fn github_actions_token(env: &Environment, audience: Option<&str>) -> Result<SecretString> {
    let (base, request_token) = match (env.get(GITHUB_URL), env.get(GITHUB_TOKEN)) {
        (Some(base), Some(token)) => (base, token),
        (None, _) => bail!("jwt login: GitHub Actions variable {GITHUB_URL} is not set; give the job `permissions: id-token: write`"),
        (_, None) => bail!("jwt login: GitHub Actions variable {GITHUB_TOKEN} is not set; give the job `permissions: id-token: write`"),
    };
    let mut url = reqwest::Url::parse(base)
        .with_context(|| format!("jwt login: {GITHUB_URL} is not a URL"))?;
    if let Some(audience) = audience {
        url.query_pairs_mut().append_pair("audience", audience);
    }
    // GitHub's token service is verified against the system's roots.
    let tls = match url.scheme() {
        "https" => crate::vault::tls::client_config(&crate::settings::TlsSettings::default())?,
        _ => crate::vault::tls::plain_http_config()?,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .user_agent(crate::identity::RunIdentity::user_agent())
        .tls_backend_preconfigured(tls)
        .build()?;
    let mut authorization = reqwest::header::HeaderValue::from_str(&format!(
        "Bearer {request_token}"
    ))
    .context("jwt login: ACTIONS_ID_TOKEN_REQUEST_TOKEN has characters that cannot be sent")?;
    authorization.set_sensitive(true);
    let response = http
        .get(url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .send()
        .await
        .context("jwt login: cannot reach GitHub Actions' OIDC token service")?;
    let status = response.status();
    if !status.is_success() {
        bail!("jwt login: GitHub Actions' OIDC token service answered {status}; check the job's `permissions: id-token: write`");
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        value: Option<SecretValue>,
    }
    let body = zeroize::Zeroizing::new(response.bytes().await?.to_vec());
    let answer: Answer = serde_json::from_slice(&body)
        .context("jwt login: GitHub Actions' OIDC token service sent no JSON")?;
    match answer.value {
        Some(value) => Ok(value.0),
        None => bail!("jwt login: GitHub Actions' OIDC token service sent no token"),
    }
}
