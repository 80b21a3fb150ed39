//! Routes: which upstream a request path goes to, and the header templates it gets.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use hyper::header::HeaderName;
use hyper::Uri;
use zeroize::Zeroizing;

use crate::secret::SecretValue;

/// A header value with `{NAME}` placeholders for secrets, e.g. `Bearer {OPENAI_API_KEY}`, or
/// with a reference in place of the name (`Bearer {secret/openai#api_key}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Secret(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                bail!("header template {text:?} has an unclosed '{{'");
            };
            let name = &rest[open + 1..open + close];
            if name.contains('#') {
                name.parse::<crate::reference::Reference>()
                    .with_context(|| format!("header template {text:?}"))?;
            } else {
                crate::reference::validate_env_name(name)
                    .map_err(|problem| anyhow::anyhow!("header template {text:?}: {problem}"))?;
            }
            parts.push(Part::Secret(name.to_string()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            bail!("header template {text:?} has a '}}' without '{{'");
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// The secret names the template uses.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Secret(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The header value with the secrets filled in; `values` has every name (checked at start).
    pub fn render(&self, values: &HashMap<String, SecretValue>) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Secret(name) => out.push_str(values[name].expose()),
            }
        }
        out
    }
}

/// An upstream base URL, split once so that building a request URI is one `format!`.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: String,
    authority: String,
    base_path: String,
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid upstream URL {url:?}"))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_string(),
            _ => bail!("upstream {url:?} must start with http:// or https://"),
        };
        let Some(authority) = uri.authority() else {
            bail!("upstream {url:?} has no host");
        };
        if uri.query().is_some() {
            bail!("upstream {url:?} must not have a query string");
        }
        Ok(Upstream {
            scheme,
            authority: authority.to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The upstream URI for the path after the route prefix (starting with `/`) and query.
    pub fn uri(
        &self,
        rest: &str,
        query: Option<&str>,
    ) -> Result<Uri, hyper::http::uri::InvalidUri> {
        let uri = match query {
            Some(query) => format!(
                "{}://{}{}{rest}?{query}",
                self.scheme, self.authority, self.base_path
            ),
            None => format!(
                "{}://{}{}{rest}",
                self.scheme, self.authority, self.base_path
            ),
        };
        uri.parse()
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// One route: requests under `prefix` go to `upstream` with `headers` injected.
#[derive(Debug, Clone)]
pub struct Route {
    /// `/openai`, or empty for the route that takes every path.
    pub prefix: String,
    pub upstream: Upstream,
    pub headers: Vec<(HeaderName, Template)>,
    /// See [`super::admission::estimate`].
    pub default_max_tokens: u64,
    /// Billing headers the client may send to this upstream.
    pub client_headers: Vec<HeaderName>,
}

/// The tokens a request is expected to ask for when its body does not say.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

impl Route {
    pub fn new(prefix: &str, upstream: &str, headers: Vec<(String, String)>) -> Result<Self> {
        let trimmed = prefix.trim_end_matches('/');
        if !prefix.starts_with('/') || trimmed.contains(['?', '#', '{', '}']) {
            bail!("route prefix {prefix:?} must be a path starting with '/'");
        }
        let headers = headers
            .into_iter()
            .map(|(name, template)| {
                let header = HeaderName::from_bytes(name.trim().as_bytes())
                    .with_context(|| format!("invalid header name {name:?}"))?;
                Ok((header, Template::parse(template.trim())?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Route {
            prefix: trimmed.to_string(),
            upstream: Upstream::parse(upstream)?,
            headers,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            client_headers: Vec::new(),
        })
    }

    /// The route's name in metrics, logs and key allow-lists.
    pub fn label(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }

    /// The rest of `path` after this route's prefix, if the route takes it.
    pub fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        if rest.is_empty() {
            Some("/")
        } else if rest.starts_with('/') {
            Some(rest)
        } else {
            None
        }
    }
}

/// Parses a `--header 'Name: template'` flag.
pub fn parse_header_flag(text: &str) -> Result<(String, String)> {
    let Some((name, value)) = text.split_once(':') else {
        bail!("--header {text:?}: expected 'Name: value', e.g. 'Authorization: Bearer {{OPENAI_API_KEY}}'");
    };
    Ok((name.trim().to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_secrets() {
        let template = Template::parse("Bearer {KEY}").unwrap();
        assert_eq!(template.names().collect::<Vec<_>>(), ["KEY"]);
        let values = HashMap::from([("KEY".to_string(), SecretValue::new("abc".into()))]);
        assert_eq!(template.render(&values).as_str(), "Bearer abc");
        assert!(Template::parse("Bearer {KEY").is_err());
        assert!(Template::parse("Bearer KEY}").is_err());
        assert!(Template::parse("{1X}").is_err());
        let inline = Template::parse("Bearer {secret/openai#api_key}").unwrap();
        assert_eq!(
            inline.names().collect::<Vec<_>>(),
            ["secret/openai#api_key"]
        );
        assert!(Template::parse("{secret/openai#}").is_err());
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let route = Route::new("/openai/", "https://api.openai.com/v1/", vec![]).unwrap();
        assert_eq!(route.strip("/openai/chat"), Some("/chat"));
        assert_eq!(route.strip("/openai"), Some("/"));
        assert_eq!(route.strip("/openaiX"), None);
        assert_eq!(
            route
                .upstream
                .uri("/chat", Some("a=1"))
                .unwrap()
                .to_string(),
            "https://api.openai.com/v1/chat?a=1"
        );
        let root = Route::new("/", "http://127.0.0.1:9", vec![]).unwrap();
        assert_eq!(root.strip("/x"), Some("/x"));
        assert_eq!(root.label(), "/");
    }
}
