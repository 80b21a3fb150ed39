//! The proxy's settings, from flags over keywrap.toml `[proxy]` over defaults, validated once.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::access_log::LogFormat;
use super::cors::Cors;
use super::routes::{self, Route};
use crate::bindings::{self, Binding};
use crate::cli::ProxyArgs;
use crate::config::{LoadedConfig, ProxyOverlap, ProxyRoute, ProxySection, Seconds};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_KEYS_PATH: &str = "secret/keywrap/proxy-keys";

/// Request bodies up to this size (with a Content-Length) are read before forwarding, so
/// they can be checked (model allow-lists) and sent again (retries, the 401 overlap retry).
/// Larger or chunked uploads stream through.
pub const MAX_BUFFERED_BODY: u64 = 1 << 20;

/// Connections open at once, and from one client address (see docs/proxy.md).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_MAX_PER_ADDRESS: usize = 512;

/// Everything `keywrap proxy` runs with.
#[derive(Debug)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub metrics: Option<SocketAddr>,
    /// Longest prefix first, so the first match is the most specific.
    pub routes: Vec<Route>,
    /// The secrets the routes' headers use.
    pub bindings: Vec<Binding>,
    pub keys_path: String,
    pub allow_anonymous: bool,
    /// How long after a switch a 401 is retried with the previous key: `None` is off,
    /// `Duration::MAX` until the next switch.
    pub overlap: Option<Duration>,
    pub connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub retries: u32,
    pub upstream_ca: Option<PathBuf>,
    pub keys_reload: Duration,
    pub watch_interval: Duration,
    pub shutdown_deadline: Duration,
    pub access_log: LogFormat,
    pub cors: Cors,
    /// `[proxy] store`: limits shared across replicas; `None` keeps them in process.
    pub store: Option<super::store::settings::StoreSettings>,
    /// `[[proxy.alerts]]`.
    pub alerts: Vec<crate::alerts::AlertRule>,
    /// Host headers accepted besides the listen address's own forms.
    pub allowed_hosts: Vec<String>,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub first_byte_timeout: Duration,
}

/// The client-key path from `--keys-path`, `[proxy] keys_path` or the default.
pub fn keys_path(args: &ProxyArgs, file: Option<&LoadedConfig>) -> String {
    args.keys_path
        .clone()
        .or_else(|| file.and_then(|f| f.file.proxy.keys_path.clone()))
        .unwrap_or_else(|| DEFAULT_KEYS_PATH.to_string())
        .trim_matches('/')
        .to_string()
}

/// `[proxy] store` of the config file, parsed: for `keys list`, which shows the store's spend.
pub fn store_settings(
    file: Option<&LoadedConfig>,
) -> Result<Option<super::store::settings::StoreSettings>> {
    let Some(file) = file else {
        return Ok(None);
    };
    let section = &file.file.proxy;
    if section.store.is_some() {
        let setting = crate::config::PROXY_STORE;
        file.require_trust(setting.key, setting.instead)?;
    }
    section
        .store
        .as_deref()
        .map(|url| {
            super::store::settings::StoreSettings::parse(
                url,
                section.store_password.as_deref(),
                section.store_failure.as_deref(),
            )
        })
        .transpose()
}

impl ProxyConfig {
    /// `timeout` is the global `--timeout`: given to `keywrap proxy`, it is meant for the
    /// upstream as much as for Vault, so it is the upstream timeout unless one is set.
    pub fn build(
        args: &ProxyArgs,
        file: Option<&LoadedConfig>,
        timeout: Option<Duration>,
    ) -> Result<Self> {
        let empty = ProxySection::default();
        let section = file.map_or(&empty, |f| &f.file.proxy);
        // Upstreams receive the keys: a keywrap.toml's own need trust (crate::trust).
        if let Some(file) = file.filter(|_| args.upstream.is_none() && !section.routes.is_empty()) {
            let setting = crate::config::PROXY_UPSTREAMS;
            file.require_trust(setting.key, setting.instead)?;
        }
        let upstream_ca = match (&args.upstream_ca, &section.upstream_ca, file) {
            (Some(flag), _, _) => Some(flag.clone()),
            (None, Some(path), Some(file)) => {
                let setting = crate::config::UPSTREAM_CA;
                file.require_trust(setting.key, setting.instead)?;
                Some(file.resolve_path(path))
            }
            _ => None,
        };
        let (routes, route_listen) = routes_from(args, section)?;
        let bindings = bindings_for(&routes, file, args)?;
        let seconds = |flag: Option<Duration>,
                       value: &Option<Seconds>,
                       default: u64,
                       name: &str|
         -> Result<Duration> {
            match (flag, value) {
                (Some(flag), _) => Ok(flag),
                (None, Some(value)) => to_duration(value)
                    .map_err(|problem| anyhow::anyhow!("[proxy] {name}: {problem}")),
                (None, None) => Ok(Duration::from_secs(default)),
            }
        };
        let overlap = overlap(args, section, file, &bindings)?;
        let access_log = args
            .access_log
            .as_deref()
            .or(section.access_log.as_deref())
            .map_or(Ok(LogFormat::Text), str::parse)?;
        Ok(ProxyConfig {
            listen: address(
                args.listen
                    .as_deref()
                    .or(section.listen.as_deref())
                    .or(route_listen.as_deref())
                    .unwrap_or(DEFAULT_LISTEN),
            )?,
            metrics: args
                .metrics
                .as_deref()
                .or(section.metrics.as_deref())
                .map(address)
                .transpose()?,
            routes,
            bindings,
            keys_path: keys_path(args, file),
            allow_anonymous: args.allow_anonymous || section.allow_anonymous.unwrap_or(false),
            overlap,
            connect_timeout: seconds(
                args.connect_timeout,
                &section.connect_timeout,
                10,
                "connect_timeout",
            )?,
            upstream_timeout: match (&section.upstream_timeout, timeout) {
                (None, Some(timeout)) => args.upstream_timeout.unwrap_or(timeout),
                _ => seconds(
                    args.upstream_timeout,
                    &section.upstream_timeout,
                    600,
                    "upstream_timeout",
                )?,
            },
            retries: args.retries.or(section.retries).unwrap_or(2),
            upstream_ca,
            keys_reload: seconds(args.keys_reload, &section.keys_reload, 10, "keys_reload")?,
            watch_interval: seconds(
                args.watch_interval,
                &section.watch_interval,
                2,
                "watch_interval",
            )?,
            shutdown_deadline: seconds(
                args.shutdown_deadline,
                &section.shutdown_deadline,
                30,
                "shutdown_deadline",
            )?,
            access_log,
            cors: Cors::new(if args.cors_origins.is_empty() {
                section.cors_origins.clone()
            } else {
                args.cors_origins.clone()
            }),
            store: store_settings(file)?,
            alerts: {
                if let Some(file) = file.filter(|_| !section.alerts.is_empty()) {
                    let setting = crate::config::PROXY_ALERTS;
                    file.require_trust(setting.key, setting.instead)?;
                }
                section
                    .alerts
                    .iter()
                    .enumerate()
                    .map(|(i, alert)| alert.validate(i + 1))
                    .collect::<Result<_>>()?
            },
            allowed_hosts: if args.allowed_hosts.is_empty() {
                section.allowed_hosts.clone()
            } else {
                args.allowed_hosts.clone()
            }
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
            max_connections: args
                .max_connections
                .or(section.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                .max(1),
            max_connections_per_address: args
                .max_connections_per_address
                .or(section.max_connections_per_address)
                .unwrap_or(DEFAULT_MAX_PER_ADDRESS)
                .max(1),
            first_byte_timeout: seconds(
                args.first_byte_timeout,
                &section.first_byte_timeout,
                5,
                "first_byte_timeout",
            )?,
        })
    }

    /// Whether a request's `Host` names this proxy: the listen address (`localhost` too when
    /// it is loopback; any IP address when it listens on all of them) or an allowed host.
    /// A name a web page controls (DNS rebinding) is not.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.allowed_hosts.contains(&host) {
            return true;
        }
        let port = self.listen.port();
        let (name, given_port) = match host.rsplit_once(':') {
            Some((name, p)) if !name.is_empty() && !p.contains(']') => (name, p.parse().ok()),
            _ => (host.as_str(), Some(80)),
        };
        if given_port != Some(port) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let ip = self.listen.ip();
        match name.parse::<std::net::IpAddr>() {
            Ok(given) => given == ip || ip.is_unspecified(),
            Err(_) => name == "localhost" && (ip.is_loopback() || ip.is_unspecified()),
        }
    }

    /// The route that takes `path`, and the rest of the path after its prefix.
    pub fn route_for<'a>(&self, path: &'a str) -> Option<(usize, &Route, &'a str)> {
        self.routes
            .iter()
            .enumerate()
            .find_map(|(index, route)| route.strip(path).map(|rest| (index, route, rest)))
    }
}

/// `IP:PORT`, `HOST:PORT` (an IPv4 address preferred, as `localhost` means 127.0.0.1 to
/// most clients) or a bare `PORT` on loopback.
fn address(text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map(Iterator::collect)
        .unwrap_or_default();
    resolved
        .iter()
        .find(|a| a.is_ipv4())
        .or(resolved.first())
        .copied()
        .with_context(|| {
            format!("invalid address {text:?}: expected IP:PORT, HOST:PORT or PORT, e.g. 127.0.0.1:8787")
        })
}

fn to_duration(value: &Seconds) -> Result<Duration, String> {
    match value {
        Seconds::Number(n) if *n > 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(*n)),
        Seconds::Number(n) => Err(format!("{n} is not a positive number of seconds")),
        Seconds::Text(text) => crate::duration::parse_seconds(text),
    }
}

/// The overlap from `--overlap [DURATION]`, else `[proxy] overlap`, else the longest
/// `overlap` window of the injected secrets' `[env]` entries (with `previous`): the
/// project already says how long the previous key stays valid after a rotation.
fn overlap(
    args: &ProxyArgs,
    section: &ProxySection,
    file: Option<&LoadedConfig>,
    bindings: &[Binding],
) -> Result<Option<Duration>> {
    if let Some(flag) = &args.overlap {
        return match flag.as_str() {
            "on" | "true" => Ok(Some(Duration::MAX)),
            "off" | "false" => Ok(None),
            text => crate::duration::parse_seconds(text)
                .map(Some)
                .map_err(|problem| anyhow::anyhow!("--overlap: {problem}")),
        };
    }
    match &section.overlap {
        Some(ProxyOverlap::Switch(on)) => return Ok(on.then_some(Duration::MAX)),
        Some(ProxyOverlap::Window(window)) => {
            return to_duration(window)
                .map(Some)
                .map_err(|problem| anyhow::anyhow!("[proxy] overlap: {problem}"))
        }
        None => {}
    }
    let mut window = None;
    for binding in bindings {
        let options = crate::lifecycle::policy::options_for(file, binding)?;
        if let Some((_, overlap)) = options.previous {
            window = window.max(Some(overlap));
        }
    }
    Ok(window)
}

/// A route's `prefix`, or the prefix and address its `listen` gives.
fn route_place(route: &ProxyRoute) -> Result<(String, Option<String>)> {
    match (&route.prefix, route.listen.as_deref()) {
        (Some(prefix), None) => Ok((prefix.clone(), None)),
        (None, Some(listen)) if listen.starts_with('/') => Ok((listen.to_string(), None)),
        (prefix, Some(listen)) => {
            let (address, path) = match listen.find('/') {
                Some(at) => (&listen[..at], Some(&listen[at..])),
                None => (listen, None),
            };
            let prefix = match (prefix, path) {
                (Some(_), Some(_)) => bail!(
                    "[[proxy.routes]] listen = {listen:?} and prefix both give a prefix: keep one"
                ),
                (Some(prefix), None) => prefix.clone(),
                (None, Some(path)) => path.to_string(),
                (None, None) => "/".to_string(),
            };
            Ok((prefix, Some(address.to_string())))
        }
        (None, None) => bail!(
            "[[proxy.routes]] needs prefix = \"/PATH\" (upstream {:?})",
            route.upstream
        ),
    }
}

/// The routes, longest prefix first, and the address the routes' `listen` named.
fn routes_from(args: &ProxyArgs, section: &ProxySection) -> Result<(Vec<Route>, Option<String>)> {
    let mut route_listen: Option<String> = None;
    let mut routes = match &args.upstream {
        Some(upstream) => {
            let mut headers = args
                .headers
                .iter()
                .map(|h| routes::parse_header_flag(h))
                .collect::<Result<Vec<_>>>()?;
            // One secret and no --header: the common case, a bearer key.
            if let ([secret], true) = (args.secrets.as_slice(), headers.is_empty()) {
                headers.push((
                    "Authorization".to_string(),
                    format!("Bearer {{{}}}", secret.name),
                ));
            }
            let mut route = Route::new("/", upstream, headers)?;
            if let Some(tokens) = args.default_max_tokens {
                route.default_max_tokens = tokens;
            }
            vec![route]
        }
        None => section
            .routes
            .iter()
            .map(|r| {
                let (prefix, listen) = route_place(r)?;
                if let Some(listen) = listen {
                    match &route_listen {
                        Some(other) if *other != listen => bail!(
                            "[[proxy.routes]] listen on {other} and {listen}: the proxy serves one address; give the routes one"
                        ),
                        _ => route_listen = Some(listen),
                    }
                }
                let headers = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut route = Route::new(&prefix, &r.upstream, headers)
                    .with_context(|| format!("[[proxy.routes]] prefix {prefix:?}"))?;
                if let Some(tokens) = r.default_max_tokens.or(args.default_max_tokens) {
                    route.default_max_tokens = tokens;
                }
                route.client_headers = r
                    .client_headers
                    .iter()
                    .map(|name| {
                        hyper::header::HeaderName::from_bytes(name.trim().as_bytes())
                            .with_context(|| format!("[[proxy.routes]] prefix {prefix:?}: invalid client_headers name {name:?}"))
                    })
                    .collect::<Result<_>>()?;
                Ok(route)
            })
            .collect::<Result<Vec<_>>>()?,
    };
    if routes.is_empty() {
        bail!("no routes: give --upstream URL, or add [[proxy.routes]] to keywrap.toml");
    }
    let mut seen = BTreeSet::new();
    for route in &routes {
        if !seen.insert(route.prefix.clone()) {
            bail!("two routes have the prefix {:?}", route.label());
        }
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    Ok((routes, route_listen))
}

/// The bindings the header templates name; each name must be in `[env]` or a `--secret`,
/// or be a reference itself.
fn bindings_for(
    routes: &[Route],
    file: Option<&LoadedConfig>,
    args: &ProxyArgs,
) -> Result<Vec<Binding>> {
    let mut available = bindings::collect(file, &args.secrets)?;
    let mut used = BTreeSet::new();
    for route in routes {
        for (header, template) in &route.headers {
            for name in template.names() {
                if !available.iter().any(|b| b.name == name) && name.contains('#') {
                    // Checked when the template was parsed.
                    let reference = name.parse().map_err(|err| anyhow::anyhow!("{err}"))?;
                    available.push(Binding {
                        name: name.to_string(),
                        reference,
                        origin: bindings::Origin::Flag,
                    });
                }
                if !available.iter().any(|b| b.name == name) {
                    bail!(
                        "header {header} of route {} uses {{{name}}}, which is neither in [env] nor given with --secret",
                        route.label()
                    );
                }
                used.insert(name.to_string());
            }
        }
    }
    Ok(available
        .into_iter()
        .filter(|b| used.contains(&b.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn build(flags: &[&str], file: &str) -> Result<ProxyConfig> {
        let cli = Cli::parse_from(["keywrap", "proxy"].iter().chain(flags));
        let Command::Proxy(args) = cli.command else {
            panic!("not proxy")
        };
        let loaded =
            LoadedConfig::parse(Path::new("keywrap.toml"), file.to_string())?.assume_trusted();
        ProxyConfig::build(&args, Some(&loaded), cli.connection.timeout)
    }

    const FILE: &str = "[env]\nKEY = \"secret/openai#api_key\"\nOTHER = \"secret/x#y\"\n\n\
        [proxy]\nlisten = \"127.0.0.1:9000\"\nretries = 5\n\n\
        [[proxy.routes]]\nprefix = \"/a\"\nupstream = \"https://a.example\"\nheaders = { Authorization = \"Bearer {KEY}\" }\n\n\
        [[proxy.routes]]\nprefix = \"/a/b\"\nupstream = \"https://b.example\"\n";

    #[test]
    fn an_untrusted_files_upstreams_are_refused_and_flags_need_no_trust() {
        let cli = Cli::parse_from(["keywrap", "proxy"]);
        let Command::Proxy(args) = cli.command else {
            panic!("not proxy")
        };
        let loaded = LoadedConfig::parse(Path::new("keywrap.toml"), FILE.to_string()).unwrap();
        let err = ProxyConfig::build(&args, Some(&loaded), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("[[proxy.routes]] upstream in keywrap.toml is not used"),
            "{err}"
        );
        let cli = Cli::parse_from(["keywrap", "proxy", "--upstream", "https://mine.example"]);
        let Command::Proxy(args) = cli.command else {
            panic!("not proxy")
        };
        assert!(ProxyConfig::build(&args, Some(&loaded), None).is_ok());
    }

    #[test]
    fn flags_override_the_file_and_routes_prefer_longer_prefixes() {
        let config = build(&["--listen", "127.0.0.1:9100"], FILE).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(config.retries, 5);
        assert_eq!(config.keys_path, DEFAULT_KEYS_PATH);
        assert_eq!(
            config.watch_interval,
            Duration::from_secs(2),
            "a rotated key is picked up within seconds"
        );
        assert_eq!(
            config
                .route_for("/a/b/c")
                .map(|(_, r, rest)| (r.label(), rest)),
            Some(("/a/b", "/c"))
        );
        assert_eq!(
            config
                .route_for("/a/c")
                .map(|(_, r, rest)| (r.label(), rest)),
            Some(("/a", "/c"))
        );
        assert!(config.route_for("/z").is_none());
        let names: Vec<&str> = config.bindings.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["KEY"], "only the secrets the headers use are read");
    }

    #[test]
    fn an_upstream_flag_replaces_the_routes() {
        let config = build(
            &[
                "--upstream",
                "http://127.0.0.1:1",
                "--header",
                "X-Key: {OTHER}",
            ],
            FILE,
        )
        .unwrap();
        assert_eq!(config.routes.len(), 1);
        assert_eq!(config.routes[0].label(), "/");
        assert_eq!(config.bindings[0].name, "OTHER");
        let defaulted = build(
            &["--upstream", "http://127.0.0.1:1", "-s", "K=secret/k#v"],
            "",
        )
        .unwrap();
        assert_eq!(
            defaulted.routes[0].headers[0].0.as_str(),
            "authorization",
            "one secret and no --header: Authorization: Bearer {{K}}"
        );
        assert_eq!(defaulted.bindings[0].name, "K");
    }

    #[test]
    fn times_take_seconds_or_durations_and_addresses_take_hosts_and_ports() {
        let config = build(
            &["--upstream-timeout", "2m", "--overlap", "1h", "--listen", "localhost:9100"],
            "[env]\nKEY = \"secret/openai#api_key\"\n\n[proxy]\nkeys_reload = 2\nshutdown_timeout = \"5s\"\n\n\
             [[proxy.routes]]\nlisten_prefix = \"/a\"\nupstream = \"https://a.example\"\n",
        )
        .unwrap();
        assert_eq!(config.upstream_timeout, Duration::from_secs(120));
        assert_eq!(config.keys_reload, Duration::from_secs(2));
        assert_eq!(config.shutdown_deadline, Duration::from_secs(5));
        assert_eq!(config.overlap, Some(Duration::from_secs(3600)));
        assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(config.routes[0].label(), "/a");
        let bare = build(&["--overlap", "--metrics", "9464"], FILE).unwrap();
        assert_eq!(bare.overlap, Some(Duration::MAX));
        assert_eq!(bare.metrics.unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(build(&[], FILE).unwrap().overlap, None);
        let timeout = build(&["--timeout", "3"], FILE).unwrap();
        assert_eq!(
            timeout.upstream_timeout,
            Duration::from_secs(3),
            "--timeout is the upstream's too"
        );
        assert_eq!(
            build(&[], FILE).unwrap().upstream_timeout,
            Duration::from_secs(600)
        );
        assert!(crate::duration::parse_seconds("soon").is_err());
    }

    #[test]
    fn a_routes_listen_gives_its_prefix_and_the_address() {
        let route = |listen: &str| {
            format!("[[proxy.routes]]\nlisten = \"{listen}\"\nupstream = \"https://a.example\"\n")
        };
        let config = build(&[], &route("/a")).unwrap();
        assert_eq!(config.routes[0].label(), "/a");
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        let config = build(&[], &route("127.0.0.1:9200/b")).unwrap();
        assert_eq!(config.routes[0].label(), "/b");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9200");
        let config = build(&["--listen", "127.0.0.1:9300"], &route("127.0.0.1:9200")).unwrap();
        assert_eq!(config.routes[0].label(), "/");
        assert_eq!(config.listen.to_string(), "127.0.0.1:9300", "the flag wins");
        let two = format!("{}{}", route("127.0.0.1:9200/a"), route("127.0.0.1:9201/b"));
        assert!(build(&[], &two).is_err());
    }

    #[test]
    fn unknown_secret_names_are_refused() {
        let err = build(
            &[
                "--upstream",
                "http://127.0.0.1:1",
                "--header",
                "X-Key: {NOPE}",
            ],
            FILE,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("{NOPE}, which is neither in [env] nor given with --secret"),
            "{err}"
        );
        let err = build(&[], "").unwrap_err();
        assert!(err.to_string().starts_with("no routes"), "{err}");
    }
}
