//! `keywrap proxy`: an HTTP proxy that holds the real API key and gives clients their own.
//!
//! - [`config`] and [`routes`]: settings, routes and header templates.
//! - [`keys`] and [`auth`]: client keys in Vault (hashes only) and checking them.
//! - [`admission`]: requests and tokens per minute, budgets, requests in flight, with
//!   reservations; [`store`]: the same limits in Redis, shared by replicas; [`limits`]: one
//!   admission path over both; [`spend`]: budgets kept in Vault. [`paths`]: dot-segments resolved.
//! - [`forward`] and [`body`]: forwarding and streaming, with [`redact`] masking the key and
//!   [`usage`] reading token counts from answers; [`usage_endpoint`]: a client's own usage.
//! - [`credentials`] and [`watch`]: the injected headers and switching them on rotation.
//! - [`metrics`], [`access_log`] and [`record`]: what is known about each request;
//!   [`alerting`]: `[[proxy.alerts]]` checked in the background.
//! - [`cors`]: answers browsers on other origins may read.
//! - [`token`]: keeping the proxy's own Vault token alive.

pub mod access_log;
pub mod admission;
pub mod alerting;
pub mod auth;
pub mod body;
pub mod config;
pub mod connections;
pub mod cors;
pub mod credentials;
pub mod forward;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod paths;
pub mod record;
pub mod redact;
pub mod routes;
pub mod spend;
pub mod store;
pub mod usage;
pub mod usage_endpoint;
pub mod watch;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use self::config::ProxyConfig;
use self::credentials::CredentialStore;
use self::forward::UpstreamBody;
use self::keys::{KeyRing, KeyStore};
use self::limits::Limits;
use self::metrics::Metrics;
use crate::settings::TlsSettings;
use crate::vault::VaultClient;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long saving the budgets' spends may hold up the exit.
const FINAL_SAVE_DEADLINE: Duration = Duration::from_secs(5);

type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>;

/// What every request handler shares.
pub struct Shared {
    pub config: ProxyConfig,
    pub credentials: CredentialStore,
    pub keys: KeyRing,
    pub limits: Limits,
    pub metrics: Metrics,
    upstream: UpstreamClient,
}

/// Reads the secrets and client keys, then serves until SIGTERM or SIGINT.
pub async fn serve(config: ProxyConfig, client: VaultClient) -> Result<()> {
    let fd_limit = connections::raise_fd_limit();
    let resolved = crate::resolve::resolve(&client, &config.bindings).await?;
    for (address, read) in &resolved.reads {
        crate::log::verbose(format_args!(
            "read {address} (version {})",
            read.version.map_or("-".into(), |v| v.to_string())
        ));
    }
    let credentials = watch::starting_credentials(&config, &client, resolved).await?;
    let store = KeyStore::open(&client, &config.keys_path).await?;
    let keys = KeyRing::load(store, client.renewed_deadline()).await?;
    let upstream = upstream_client(&config)?;
    let limits = match &config.store {
        Some(settings) => {
            Limits::shared(store::connect(&client, settings, &config.keys_path).await?)
        }
        None => Limits::local(),
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let metrics_listener = match config.metrics {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot serve metrics on {address}"))?,
        ),
        None => None,
    };
    if !config.listen.ip().is_loopback() {
        crate::log::warn(format_args!(
            "the proxy listens on {}, beyond this machine; put TLS in front of it",
            config.listen
        ));
    }
    let shared = Arc::new(Shared {
        config,
        credentials: CredentialStore::new(credentials),
        keys,
        limits,
        metrics: Metrics::default(),
        upstream,
    });
    for route in &shared.config.routes {
        crate::log::note(format_args!(
            "proxy: http://{}{} -> {}",
            shared.config.listen,
            route.label(),
            route.upstream
        ));
    }
    if let Some(listener) = metrics_listener {
        crate::log::note(format_args!(
            "proxy: metrics at http://{}/metrics",
            listener.local_addr()?
        ));
        tokio::spawn(serve_metrics(listener, shared.clone()));
    }
    if let Err(err) = spend::save(&shared, &client, true).await {
        crate::log::warn(format_args!(
            "reading what budgeted keys spent (their budgets count from now): {err:#}"
        ));
    }
    let alerts = alerting::Alerting::open(&shared, &client)
        .await?
        .map(|alerting| tokio::spawn(alerting.run(shared.clone())));
    let saver = tokio::spawn(spend::keep_saving(shared.clone(), client.clone()));
    let watcher = tokio::spawn(watch::watch(shared.clone(), client.renewed_deadline()));
    let reloader = {
        let shared = shared.clone();
        tokio::spawn(async move { shared.keys.keep_fresh(shared.config.keys_reload).await })
    };
    let cap = connections::effective_cap(shared.config.max_connections, fd_limit);
    if cap < shared.config.max_connections {
        crate::log::warn(format_args!(
            "at most {cap} connections: the file descriptor limit allows no more (ulimit -n)"
        ));
    }
    let connections = connections::Connections::new(cap, shared.config.max_connections_per_address);
    accept(listener, shared.clone(), connections).await?;
    watcher.abort();
    reloader.abort();
    saver.abort();
    if let Some(alerts) = alerts {
        alerts.abort();
    }
    match tokio::time::timeout(FINAL_SAVE_DEADLINE, spend::save(&shared, &client, false)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => crate::log::warn(format_args!("saving what budgeted keys spent: {err:#}")),
        Err(_) => crate::log::warn("saving what budgeted keys spent: Vault did not answer in time"),
    }
    Ok(())
}

fn upstream_client(config: &ProxyConfig) -> Result<UpstreamClient> {
    let tls = crate::vault::tls::client_config(&TlsSettings {
        ca_cert: config.upstream_ca.clone(),
        ..TlsSettings::default()
    })
    .context("TLS set-up for the upstream")?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(config.connect_timeout));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(connector))
}

/// Accepts connections until a stop signal, then lets in-flight requests finish up to the deadline.
async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<connections::Connections>,
) -> Result<()> {
    let accept_failed = connections::Throttled::default();
    let turned_away = connections::Throttled::default();
    let graceful = GracefulShutdown::new();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot handle SIGTERM")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot handle SIGINT")?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        accept_failed.warn(format_args!("accepting a connection: {err}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let slot = match connections.open(peer.ip()) {
                    Ok(slot) => slot,
                    Err(full) => {
                        turned_away.warn(format_args!(
                            "connection from {} closed: {}",
                            peer.ip(),
                            match full {
                                connections::Full::Total => "the proxy has max_connections open",
                                connections::Full::Address => "that address has max_connections_per_address open",
                            }
                        ));
                        drop(stream);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let first_byte = shared.config.first_byte_timeout;
                let shared = shared.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    // A connection that sends nothing is closed soon (slowloris).
                    let mut byte = [0u8; 1];
                    match tokio::time::timeout(first_byte, stream.peek(&mut byte)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                    let service =
                        service_fn(move |request| forward::handle(shared.clone(), request));
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                });
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    drop(listener);
    let deadline = shared.config.shutdown_deadline;
    crate::log::note(format_args!(
        "proxy: stopping; letting requests in flight finish (up to {}s)",
        deadline.as_secs_f64()
    ));
    tokio::select! {
        _ = graceful.shutdown() => crate::log::note("proxy: stopped"),
        _ = tokio::time::sleep(deadline) => crate::log::warn("proxy: shutdown deadline passed; dropping the requests still in flight"),
    }
    Ok(())
}

/// Serves `/metrics` on its own listener.
async fn serve_metrics(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let shared = shared.clone();
            async move {
                // `/` too: whoever types the address into a browser gets the metrics.
                let response = if matches!(request.uri().path(), "/metrics" | "/") {
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(
                            shared.metrics.render() + &shared.limits.render_metrics(),
                        )))
                } else {
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n")))
                };
                Ok::<_, Infallible>(response.expect("a valid metrics response"))
            }
        });
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
