//! The headers each route injects, rendered from one set of secret versions, and the values
//! to mask in answers. A request takes the current set when it starts and keeps it, so a
//! key switch never changes a request in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::header::{HeaderName, HeaderValue};

use super::redact::Patterns;
use super::routes::Route;
use crate::reference::SecretAddress;
use crate::resolve::Resolved;
use crate::secret::SecretValue;

/// Header name and value pairs for one route.
pub type HeaderSet = Vec<(HeaderName, HeaderValue)>;

/// One generation of injected credentials.
pub struct Credentials {
    routes: Vec<HeaderSet>,
    previous: Option<Vec<HeaderSet>>,
    /// When this generation replaced the previous one.
    switched: Instant,
    values: HashMap<String, SecretValue>,
    /// The current and previous values, masked in answers.
    pub patterns: Arc<Patterns>,
    /// The KV v2 version each secret was read at.
    pub versions: BTreeMap<SecretAddress, Option<u64>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Renders every route's headers from `resolved`; `before` is the generation it replaces.
    pub fn build(
        routes: &[Route],
        resolved: Resolved,
        before: Option<&Credentials>,
    ) -> Result<Self> {
        let values: HashMap<String, SecretValue> = resolved.values.into_iter().collect();
        let rendered = render(routes, &values)?;
        let mut patterns: Vec<&str> = values.values().map(SecretValue::expose).collect();
        if let Some(before) = before {
            patterns.extend(before.values.values().map(SecretValue::expose));
        }
        let patterns = Arc::new(Patterns::new(patterns));
        let versions = resolved
            .reads
            .into_iter()
            .map(|(address, read)| (address, read.version))
            .collect();
        Ok(Credentials {
            routes: rendered,
            previous: before.map(|b| b.routes.clone()),
            switched: Instant::now(),
            values,
            patterns,
            versions,
        })
    }

    /// The same generation, as if it had replaced the previous one at `at` (a proxy that
    /// starts during an overlap window counts the window from the rotation).
    pub fn switched_at(mut self, at: Instant) -> Self {
        self.switched = at;
        self
    }

    pub fn headers(&self, route: usize) -> &HeaderSet {
        &self.routes[route]
    }

    /// The headers of the generation before, for the one retry after a 401, while the
    /// overlap `window` after the switch lasts.
    pub fn previous_headers(&self, route: usize, window: Duration) -> Option<&HeaderSet> {
        let previous = &self.previous.as_ref()?[route];
        (previous != &self.routes[route] && self.switched.elapsed() < window).then_some(previous)
    }
}

fn render(routes: &[Route], values: &HashMap<String, SecretValue>) -> Result<Vec<HeaderSet>> {
    routes
        .iter()
        .map(|route| {
            route
                .headers
                .iter()
                .map(|(name, template)| {
                    let text = template.render(values);
                    let mut value = HeaderValue::from_str(&text).with_context(|| {
                        format!("the secret in header {name} of route {} has characters a header cannot carry", route.label())
                    })?;
                    value.set_sensitive(true);
                    Ok((name.clone(), value))
                })
                .collect()
        })
        .collect()
}

/// The current generation, swapped whole on rotation.
pub struct CredentialStore(RwLock<Arc<Credentials>>);

impl CredentialStore {
    pub fn new(credentials: Credentials) -> Self {
        CredentialStore(RwLock::new(Arc::new(credentials)))
    }

    pub fn current(&self) -> Arc<Credentials> {
        self.0.read().expect("credentials lock").clone()
    }

    pub fn replace(&self, credentials: Credentials) {
        *self.0.write().expect("credentials lock") = Arc::new(credentials);
    }
}
