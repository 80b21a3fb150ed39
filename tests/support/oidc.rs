//! A stand-in OIDC provider on 127.0.0.1 for what cannot be reached from here: GitHub's and
//! GitLab's token issuers. It serves the discovery document and JWKS that OpenBao's `jwt`
//! auth method fetches from an `oidc_discovery_url`, and GitHub Actions' ID-token request
//! endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`), minting tokens with the claims a test sets.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use super::jwt::{now, JwtIssuer};
use super::stub::Stub;

/// The bearer token the ID-token endpoint requires (`ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
pub const REQUEST_TOKEN: &str = "fake-actions-request-token";

pub struct OidcProvider {
    stub: Stub,
    issuer: Arc<JwtIssuer>,
    claims: Arc<Mutex<Value>>,
}

impl OidcProvider {
    pub fn start() -> OidcProvider {
        let issuer = Arc::new(JwtIssuer::new());
        let claims = Arc::new(Mutex::new(json!({})));
        let url: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
        let stub = {
            let (issuer, claims, url) = (issuer.clone(), claims.clone(), url.clone());
            Stub::start(move |request| {
                let base = url.get().cloned().unwrap_or_default();
                let path = request.target.split('?').next().unwrap_or_default();
                match path {
                    "/.well-known/openid-configuration" => (
                        200,
                        json!({
                            "issuer": base,
                            "jwks_uri": format!("{base}/jwks"),
                            "authorization_endpoint": format!("{base}/authorize"),
                            "response_types_supported": ["id_token"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["ES256"],
                        })
                        .to_string(),
                    ),
                    "/jwks" => (200, json!({ "keys": [issuer.jwk()] }).to_string()),
                    "/token" => {
                        let bearer = format!("Bearer {REQUEST_TOKEN}");
                        if request.header("authorization") != Some(bearer.as_str()) {
                            return (401, "{}".into());
                        }
                        let audience = request
                            .target
                            .split("audience=")
                            .nth(1)
                            .map(percent_decode)
                            .unwrap_or_default();
                        let mut token_claims = claims.lock().unwrap().clone();
                        token_claims["aud"] = json!(audience);
                        let jwt = issuer.sign(&with_times(&base, token_claims));
                        (200, json!({ "count": 1, "value": jwt }).to_string())
                    }
                    _ => (404, "{}".into()),
                }
            })
        };
        url.set(stub.url.clone()).unwrap();
        OidcProvider {
            stub,
            issuer,
            claims,
        }
    }

    /// The issuer URL (also the discovery URL).
    pub fn url(&self) -> &str {
        &self.stub.url
    }

    /// The claims of the tokens the ID-token endpoint mints (`aud` is the requested audience).
    pub fn set_claims(&self, claims: Value) {
        *self.claims.lock().unwrap() = claims;
    }

    /// A token with these claims, issued now by this provider (as GitLab's `id_tokens`).
    pub fn sign(&self, claims: Value) -> String {
        self.issuer.sign(&with_times(self.url(), claims))
    }
}

fn with_times(issuer: &str, mut claims: Value) -> Value {
    let now = now();
    claims["iss"] = json!(issuer);
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now - 5);
    claims["exp"] = json!(now + 300);
    claims
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let hex = std::str::from_utf8(hex).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
