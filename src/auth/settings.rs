//! Auth settings: flags > `KEYWRAP_*` variables > keywrap.toml `[auth]`, and the
//! automatic choice of method when none is configured.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;
use serde::Deserialize;

use crate::config::{LoadedConfig, Sensitive};
use crate::environment::Environment;
use crate::trust::Gated;

/// The Kubernetes service-account token, where the kubelet mounts it.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// GitLab CI's conventional `id_tokens` variable for Vault.
pub const GITLAB_ID_TOKEN: &str = "VAULT_ID_TOKEN";

/// An auth method keywrap can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Token,
    AppRole,
    Jwt,
    Kubernetes,
}

impl Method {
    /// The auth method's type in Vault, and its default mount path.
    pub fn vault_type(self) -> &'static str {
        match self {
            Method::Token => "token",
            Method::AppRole => "approle",
            Method::Jwt => "jwt",
            Method::Kubernetes => "kubernetes",
        }
    }
}

impl Method {
    /// What usually makes a mounted method of this kind answer "permission denied".
    pub fn refusal_hint(self) -> &'static str {
        match self {
            Method::Kubernetes => {
                "the Kubernetes API did not confirm the service-account token, or the role does not bind this service account and namespace"
            }
            _ => "the role's bindings do not admit it",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.vault_type())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "token" => Ok(Method::Token),
            "approle" => Ok(Method::AppRole),
            "jwt" | "oidc" => Ok(Method::Jwt),
            "kubernetes" | "k8s" => Ok(Method::Kubernetes),
            _ => Err(format!(
                "unknown auth method ({}, not shown); use token, approle, jwt or kubernetes",
                crate::redact::length(text)
            )),
        }
    }
}

pub use crate::config::AuthSection;

/// Auth settings given as flags.
#[derive(Debug, Default, Clone)]
pub struct AuthFlags {
    pub method: Option<Method>,
    pub mount: Option<String>,
    pub role: Option<String>,
    pub role_id_file: Option<PathBuf>,
    pub secret_id_file: Option<PathBuf>,
    pub secret_id_wrapped: bool,
    pub jwt_file: Option<PathBuf>,
    pub jwt_env: Option<String>,
    pub audience: Option<String>,
    pub kubernetes_token_file: Option<PathBuf>,
}

/// Resolved auth settings. Files and variables named by keywrap.toml are [`Gated`]: they
/// are read only once that file is trusted.
#[derive(Debug, Default, Clone)]
pub struct AuthSettings {
    pub method: Option<Method>,
    pub mount: Option<String>,
    pub role: Option<String>,
    pub role_id_file: Option<Gated<PathBuf>>,
    pub secret_id_file: Option<Gated<PathBuf>>,
    pub secret_id_wrapped: bool,
    pub jwt_file: Option<Gated<PathBuf>>,
    pub jwt_env: Option<Gated<String>>,
    pub audience: Option<String>,
    pub kubernetes_token_file: Gated<PathBuf>,
}

impl AuthSettings {
    pub fn resolve(
        flags: &AuthFlags,
        env: &Environment,
        config: Option<&LoadedConfig>,
    ) -> Result<Self> {
        let file = config.map(|c| &c.file.auth);
        let var = |name: &str| env.get(name).map(str::to_string);
        // flag > variable > file; the file's paths resolved against its directory.
        let path = |flag: &Option<PathBuf>,
                    variable: &str,
                    from_file: Option<&PathBuf>,
                    setting: &Sensitive|
         -> Option<Gated<PathBuf>> {
            if let Some(path) = flag.clone().or_else(|| var(variable).map(PathBuf::from)) {
                return Some(Gated::given(path));
            }
            let config = config?;
            Some(config.gated(config.resolve_path(from_file?), setting))
        };
        let method = match flags.method {
            Some(m) => Some(m),
            None => {
                match var("KEYWRAP_AUTH_METHOD").or_else(|| file.and_then(|f| f.method.clone())) {
                    Some(text) => Some(text.parse::<Method>().map_err(anyhow::Error::msg)?),
                    None => None,
                }
            }
        };
        let jwt_env = match flags.jwt_env.clone().or_else(|| var("KEYWRAP_JWT_ENV")) {
            Some(name) => Some(Gated::given(name)),
            None => config
                .zip(file.and_then(|f| f.jwt_env.clone()))
                .map(|(config, name)| config.gated(name, &crate::config::JWT_ENV)),
        };
        Ok(AuthSettings {
            method,
            mount: flags
                .mount
                .clone()
                .or_else(|| var("KEYWRAP_AUTH_MOUNT"))
                .or_else(|| file.and_then(|f| f.mount.clone())),
            role: flags
                .role
                .clone()
                .or_else(|| var("KEYWRAP_AUTH_ROLE"))
                .or_else(|| file.and_then(|f| f.role.clone())),
            role_id_file: path(
                &flags.role_id_file,
                "KEYWRAP_ROLE_ID_FILE",
                file.and_then(|f| f.role_id_file.as_ref()),
                &crate::config::ROLE_ID_FILE,
            ),
            secret_id_file: path(
                &flags.secret_id_file,
                "KEYWRAP_SECRET_ID_FILE",
                file.and_then(|f| f.secret_id_file.as_ref()),
                &crate::config::SECRET_ID_FILE,
            ),
            secret_id_wrapped: flags.secret_id_wrapped
                || file.and_then(|f| f.secret_id_wrapped).unwrap_or(false),
            jwt_file: path(
                &flags.jwt_file,
                "KEYWRAP_JWT_FILE",
                file.and_then(|f| f.jwt_file.as_ref()),
                &crate::config::JWT_FILE,
            ),
            jwt_env,
            audience: flags
                .audience
                .clone()
                .or_else(|| var("KEYWRAP_JWT_AUDIENCE"))
                .or_else(|| file.and_then(|f| f.audience.clone())),
            kubernetes_token_file: path(
                &flags.kubernetes_token_file,
                "KEYWRAP_KUBERNETES_TOKEN_FILE",
                file.and_then(|f| f.token_file.as_ref()),
                &crate::config::TOKEN_FILE,
            )
            .unwrap_or_else(|| Gated::given(PathBuf::from(KUBERNETES_TOKEN_FILE))),
        })
    }

    /// The mount path for `method`: configured, else the method's name.
    pub fn mount_for(&self, method: Method) -> String {
        self.mount
            .clone()
            .unwrap_or_else(|| method.vault_type().to_string())
            .trim_matches('/')
            .to_string()
    }
}

/// With no method configured: the first whose material is present, and why.
pub fn detect(settings: &AuthSettings, env: &Environment) -> Option<(Method, String)> {
    if let Some((name, _)) = env.vault_var("TOKEN") {
        return Some((Method::Token, format!("{name} is set")));
    }
    let role_id = env.vault_var("ROLE_ID").is_some() || settings.role_id_file.is_some();
    let secret_id = env.vault_var("SECRET_ID").is_some()
        || env.vault_var("WRAPPED_SECRET_ID").is_some()
        || settings.secret_id_file.is_some();
    if role_id && secret_id {
        return Some((Method::AppRole, "found a role ID and a secret ID".into()));
    }
    if settings.jwt_file.is_some()
        || settings
            .jwt_env
            .as_ref()
            .is_some_and(|v| env.get(v.unchecked()).is_some())
        || env.vault_var("JWT").is_some()
    {
        return Some((Method::Jwt, "found a JWT".into()));
    }
    if jwt::github_actions_available(env) {
        return Some((Method::Jwt, "GitHub Actions OIDC token service".into()));
    }
    if env.get(GITLAB_ID_TOKEN).is_some() {
        return Some((Method::Jwt, format!("GitLab CI id token {GITLAB_ID_TOKEN}")));
    }
    let kubernetes_token_file = settings.kubernetes_token_file.unchecked();
    if settings.role.is_some() && kubernetes_token_file.is_file() {
        return Some((
            Method::Kubernetes,
            format!("service-account token {}", kubernetes_token_file.display()),
        ));
    }
    if crate::auth::token::token_file(env).is_some_and(|f| f.is_file()) {
        return Some((Method::Token, "~/.vault-token".into()));
    }
    // Nothing complete: the method whose material is half there, so that its error says
    // exactly what is missing.
    if role_id || secret_id {
        return Some((
            Method::AppRole,
            "found only half of an AppRole login".into(),
        ));
    }
    if jwt::github_actions_started(env) {
        return Some((Method::Jwt, "GitHub Actions, without an OIDC token".into()));
    }
    if env.get("GITLAB_CI") == Some("true") {
        return Some((Method::Jwt, "GitLab CI, without an id token".into()));
    }
    crate::log::verbose("auth: no VAULT_TOKEN, login material or ~/.vault-token found");
    None
}

use super::jwt;

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(role: Option<&str>) -> AuthSettings {
        AuthSettings {
            role: role.map(str::to_string),
            kubernetes_token_file: Gated::given(PathBuf::from("/nonexistent/token")),
            ..Default::default()
        }
    }

    #[test]
    fn detection_follows_the_documented_order() {
        let env = Environment::from_pairs([
            ("VAULT_TOKEN", "t"),
            ("VAULT_ROLE_ID", "r"),
            ("VAULT_SECRET_ID", "s"),
        ]);
        assert_eq!(detect(&settings(None), &env).unwrap().0, Method::Token);
        let env = Environment::from_pairs([
            ("VAULT_ROLE_ID", "r"),
            ("VAULT_SECRET_ID", "s"),
            ("VAULT_JWT", "j"),
        ]);
        assert_eq!(detect(&settings(None), &env).unwrap().0, Method::AppRole);
        let env = Environment::from_pairs([("VAULT_JWT", "j")]);
        assert_eq!(detect(&settings(None), &env).unwrap().0, Method::Jwt);
        let github = Environment::from_pairs([
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://x"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
        ]);
        assert_eq!(detect(&settings(None), &github).unwrap().0, Method::Jwt);
        let gitlab = Environment::from_pairs([("VAULT_ID_TOKEN", "j")]);
        assert_eq!(detect(&settings(None), &gitlab).unwrap().0, Method::Jwt);
        assert!(detect(&settings(Some("ci")), &Environment::default()).is_none());
    }

    #[test]
    fn half_present_material_picks_its_method_for_a_precise_error() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".vault-token"), "fake").unwrap();
        let both = Environment::from_pairs([
            ("HOME", home.path().to_str().unwrap()),
            ("VAULT_ROLE_ID", "r"),
        ]);
        assert_eq!(
            detect(&settings(None), &both).unwrap().0,
            Method::Token,
            "a complete login wins over half of one"
        );
        let role_only = Environment::from_pairs([("VAULT_ROLE_ID", "r")]);
        assert_eq!(
            detect(&settings(None), &role_only).unwrap().0,
            Method::AppRole
        );
        for ci in [
            ("GITHUB_ACTIONS", "true"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://x"),
            ("GITLAB_CI", "true"),
        ] {
            let env = Environment::from_pairs([ci]);
            assert_eq!(
                detect(&settings(None), &env).unwrap().0,
                Method::Jwt,
                "{ci:?}"
            );
        }
    }

    #[test]
    fn files_and_variables_an_untrusted_file_names_are_withheld() {
        let config = LoadedConfig::parse(
            std::path::Path::new("/repo/keywrap.toml"),
            "[auth]\nmethod = \"jwt\"\nrole = \"ci\"\njwt_file = \"../.ssh/id_ed25519\"\njwt_env = \"GITHUB_TOKEN\"\ntoken_file = \"/etc/shadow\"\n".into(),
        )
        .unwrap();
        let settings = AuthSettings::resolve(
            &AuthFlags::default(),
            &Environment::default(),
            Some(&config),
        )
        .unwrap();
        assert_eq!(
            settings.role.as_deref(),
            Some("ci"),
            "harmless settings are taken"
        );
        for (gated, key) in [
            (
                settings.jwt_file.as_ref().unwrap().get().map(|_| ()),
                "[auth] jwt_file",
            ),
            (
                settings.jwt_env.as_ref().unwrap().get().map(|_| ()),
                "[auth] jwt_env",
            ),
            (
                settings.kubernetes_token_file.get().map(|_| ()),
                "[auth] token_file",
            ),
        ] {
            let err = gated.unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{key} in /repo/keywrap.toml")),
                "{err}"
            );
        }
        let env = Environment::from_pairs([
            ("KEYWRAP_JWT_FILE", "/run/jwt"),
            ("KEYWRAP_JWT_ENV", "CI_JWT"),
        ]);
        let settings = AuthSettings::resolve(&AuthFlags::default(), &env, Some(&config)).unwrap();
        assert_eq!(
            settings.jwt_file.unwrap().get().unwrap(),
            &PathBuf::from("/run/jwt")
        );
        assert_eq!(settings.jwt_env.unwrap().get().unwrap(), "CI_JWT");
        let trusted = config.assume_trusted();
        let settings = AuthSettings::resolve(
            &AuthFlags::default(),
            &Environment::default(),
            Some(&trusted),
        )
        .unwrap();
        assert_eq!(
            settings.jwt_file.unwrap().get().unwrap(),
            &PathBuf::from("/repo/../.ssh/id_ed25519")
        );
    }

    #[test]
    fn methods_parse() {
        assert_eq!("AppRole".parse::<Method>().unwrap(), Method::AppRole);
        assert_eq!("k8s".parse::<Method>().unwrap(), Method::Kubernetes);
        assert!("ldap".parse::<Method>().is_err());
    }
}
