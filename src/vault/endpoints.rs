//! keywrap's own endpoints, for the parts of Vault's API that vaultrs does not cover,
//! written as rustify endpoints like vaultrs's so that one client sends both.

use std::collections::BTreeMap;

use rustify_derive::Endpoint;
use serde::Deserialize;

/// `GET sys/internal/ui/mounts/PATH`: the mount that holds a path and its engine, which is
/// how the Vault CLI tells KV v1 from v2. Any token may ask (the default policy grants it).
#[derive(Endpoint)]
#[endpoint(path = "sys/internal/ui/mounts/{self.path}", response = "MountAnswer")]
pub struct MountLookupRequest {
    #[endpoint(skip)]
    pub path: String,
}

#[derive(Deserialize)]
pub struct MountAnswer {
    pub data: MountData,
}

#[derive(Deserialize)]
pub struct MountData {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// `POST sys/capabilities-self`: what the token may do on each path.
#[derive(Endpoint)]
#[endpoint(
    path = "sys/capabilities-self",
    method = "POST",
    response = "CapabilitiesAnswer"
)]
pub struct CapabilitiesSelfRequest {
    pub paths: Vec<String>,
}

#[derive(Deserialize)]
pub struct CapabilitiesAnswer {
    pub data: BTreeMap<String, Vec<String>>,
}

/// `GET auth/MOUNT/login`: answered 405 where an auth method is mounted and 403 where none
/// is; needs no token.
#[derive(Endpoint)]
#[endpoint(path = "auth/{self.mount}/login", response = "serde_json::Value")]
pub struct LoginProbeRequest {
    #[endpoint(skip)]
    pub mount: String,
}

/// `POST sys/config/auditing/request-headers/NAME`: makes the audit log record a request
/// header, in clear text unless `hmac`.
#[derive(Endpoint)]
#[endpoint(
    path = "sys/config/auditing/request-headers/{self.header}",
    method = "POST"
)]
pub struct AuditedHeaderRequest {
    #[endpoint(skip)]
    pub header: String,
    pub hmac: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustify::endpoint::{Endpoint, MiddleWare};
    use vaultrs::api::EndpointMiddleware;

    /// The request rustify builds for an endpoint, after vaultrs's middleware.
    fn built<E: Endpoint>(endpoint: &E) -> (String, String, String) {
        let middleware = EndpointMiddleware {
            token: "fake-token".into(),
            version: "v1".into(),
            wrap: None,
            namespace: Some("team".into()),
        };
        let mut request = endpoint.request("http://127.0.0.1:8200").unwrap();
        middleware.request(endpoint, &mut request).unwrap();
        assert_eq!(request.headers()["X-Vault-Token"], "fake-token");
        assert_eq!(request.headers()["X-Vault-Namespace"], "team");
        (
            request.method().to_string(),
            request.uri().to_string(),
            String::from_utf8(request.body().clone()).unwrap(),
        )
    }

    #[test]
    fn endpoints_ask_for_the_paths_vault_serves() {
        use vaultrs::api::{kv1, kv2, token};
        let (method, uri, _) = built(&MountLookupRequest {
            path: "secret/a b/c?d".into(),
        });
        assert_eq!(method, "GET");
        assert_eq!(
            uri,
            "http://127.0.0.1:8200/v1/sys/internal/ui/mounts/secret/a%20b/c%3Fd"
        );
        let (method, uri, body) = built(&AuditedHeaderRequest {
            header: "x-keywrap-run".into(),
            hmac: false,
        });
        assert_eq!(method, "POST");
        assert_eq!(
            uri,
            "http://127.0.0.1:8200/v1/sys/config/auditing/request-headers/x-keywrap-run"
        );
        assert_eq!(body, r#"{"hmac":false}"#);
        let (_, uri, _) = built(&kv2::requests::ReadSecretRequest {
            mount: "team/kv".into(),
            path: "openai".into(),
            version: Some(3),
        });
        assert_eq!(
            uri,
            "http://127.0.0.1:8200/v1/team/kv/data/openai?version=3"
        );
        let (method, uri, _) = built(&kv2::requests::ListSecretsRequest {
            mount: "secret".into(),
            path: "keys".into(),
        });
        assert_eq!(
            (method.as_str(), uri.as_str()),
            ("LIST", "http://127.0.0.1:8200/v1/secret/metadata/keys")
        );
        let (_, uri, _) = built(&kv1::requests::GetSecretRequest {
            mount: "kv1".into(),
            path: "a%b".into(),
        });
        assert_eq!(uri, "http://127.0.0.1:8200/v1/kv1/a%25b");
        // vaultrs writes these two paths with a leading tab, which the URL parser drops.
        let (_, uri, body) = built(&token::requests::RenewTokenSelfRequest {
            increment: Some("60s".into()),
        });
        assert_eq!(uri, "http://127.0.0.1:8200/v1/auth/token/renew-self");
        assert_eq!(body, r#"{"increment":"60s"}"#);
        let (_, uri, _) = built(&token::requests::RevokeTokenSelfRequest {});
        assert_eq!(uri, "http://127.0.0.1:8200/v1/auth/token/revoke-self");
        let (_, uri, _) = built(&token::requests::LookupTokenSelfRequest {});
        assert_eq!(uri, "http://127.0.0.1:8200/v1/auth/token/lookup-self");
    }
}
