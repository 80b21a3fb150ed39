//! `keywrap proxy`: serve the key-holding proxy, or manage its client keys.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::auth::lifecycle::TokenKeeper;
use crate::cli::{Cli, KeyCreateArgs, KeysCommand, OutputFormat, ProxyArgs, ProxyCommand};
use crate::config::{self, LoadedConfig};
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::proxy::config::{keys_path, ProxyConfig};
use crate::proxy::keys::{KeyPolicy, KeyRecord, KeyStore};
use crate::proxy::store::redis::RedisStore;
use crate::proxy::store::settings::StoreSettings;
use crate::secret::ExposeSecret;
use crate::session::Session;

pub fn run(cli: &Cli, args: &ProxyArgs) -> Result<ExitCode> {
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    if let Some(found) = &loaded {
        crate::log::verbose(format_args!("config {}", found.path.display()));
    }
    match &args.command {
        Some(ProxyCommand::Keys(command)) => keys(cli, args, &env, loaded.as_ref(), command),
        None => serve(cli, args, &env, loaded.as_ref()),
    }
}

fn serve(
    cli: &Cli,
    args: &ProxyArgs,
    env: &Environment,
    loaded: Option<&LoadedConfig>,
) -> Result<ExitCode> {
    let config = ProxyConfig::build(args, loaded, cli.connection.timeout)?;
    let identity = RunIdentity::detect(env, Some("proxy"));
    // Forwarding is CPU work per request: use every core unless told otherwise.
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.into());
    }
    let runtime = runtime.enable_all().build()?;
    let session = runtime.block_on(Session::open(
        super::session_inputs(cli, env, loaded),
        identity,
    ))?;
    // The proxy runs for days: it keeps any token alive, and revokes one it logged in for
    // when it stops.
    let mut keeper = runtime.block_on(TokenKeeper::for_daemon(
        &session.client,
        session.obtained.clone(),
    ));
    keeper.keep_alive();
    let served = runtime.block_on(crate::proxy::serve(config, session.client.clone()));
    drop(runtime);
    keeper.finish();
    served?;
    Ok(ExitCode::SUCCESS)
}

fn keys(
    cli: &Cli,
    args: &ProxyArgs,
    env: &Environment,
    loaded: Option<&LoadedConfig>,
    command: &KeysCommand,
) -> Result<ExitCode> {
    let path = keys_path(args, loaded);
    let identity = RunIdentity::detect(env, Some("proxy keys"));
    // Before the session opens: a store in an untrusted file stops here, with no login.
    let store = crate::proxy::config::store_settings(loaded)?;
    crate::runtime::runtime()?.block_on(async {
        let session = Session::open(super::session_inputs(cli, env, loaded), identity).await?;
        let outcome = manage_keys(&session, &path, store.as_ref(), command).await;
        session.close().await;
        outcome
    })
}

async fn manage_keys(
    session: &Session,
    path: &str,
    limits: Option<&StoreSettings>,
    command: &KeysCommand,
) -> Result<ExitCode> {
    let client = &session.client;
    let store = KeyStore::open(client, path).await?;
    match command {
        KeysCommand::Create(create) => {
            let key = store.create(client, &policy(create)).await?;
            println!("{}", key.expose_secret());
            crate::log::note(format_args!(
                "client key {} created; its hash is in {path}/{}. The key is shown only this once.",
                create.name, create.name
            ));
        }
        KeysCommand::List { format } => {
            let spend = Spend::open(client, limits, path).await?;
            let listing = store.list(client).await?;
            let mut records = listing.records;
            records.sort_by(|a, b| a.policy.name.cmp(&b.policy.name));
            if *format == OutputFormat::Json {
                let mut keys = Vec::new();
                for record in &records {
                    let spent = match record.policy.budget {
                        0 => None,
                        _ => Some(spend.of(&store, client, &record.policy.name).await?),
                    };
                    keys.push(key_json(record, spent));
                }
                for bad in &listing.bad {
                    keys.push(serde_json::json!({
                        "name": bad.name,
                        "bad": true,
                        "problem": bad.problem,
                    }));
                }
                println!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(ExitCode::SUCCESS);
            }
            let limit = |n: u64| {
                if n == 0 {
                    "-".to_string()
                } else {
                    n.to_string()
                }
            };
            let all = |list: &[String]| {
                if list.is_empty() {
                    "*".to_string()
                } else {
                    list.join(",")
                }
            };
            println!(
                "{:<20} {:<16} {:<20} {:>8} {:>10} {:>12} {:>12}  CREATED",
                "NAME", "ROUTES", "MODELS", "RPM", "TPM", "BUDGET", "SPENT"
            );
            for record in records {
                let p = &record.policy;
                // Spends are kept for keys with a budget only.
                let spent = if p.budget > 0 {
                    spend.of(&store, client, &p.name).await?.to_string()
                } else {
                    "-".to_string()
                };
                println!(
                    "{:<20} {:<16} {:<20} {:>8} {:>10} {:>12} {:>12}  {}",
                    p.name,
                    all(&p.routes),
                    all(&p.models),
                    limit(p.rpm),
                    limit(p.tpm),
                    limit(p.budget),
                    spent,
                    record.created
                );
            }
            for bad in &listing.bad {
                println!("{:<20} BAD: {}", bad.name, bad.problem);
            }
            if !listing.bad.is_empty() {
                crate::log::warn(format_args!(
                    "{} client key record(s) are malformed; running proxies refuse those keys. Revoke and create them again.",
                    listing.bad.len()
                ));
            }
        }
        KeysCommand::Revoke { name } => {
            if !store.revoke(client, name).await? {
                bail!("no client key named {name:?} under {path}");
            }
            if let Some(settings) = limits {
                // The store's spend goes with the key, like Vault's record.
                let shared = crate::proxy::store::connect(client, settings, path).await?;
                shared.forget_spent(name).await?;
            }
            crate::log::note(format_args!(
                "client key {name} revoked; running proxies refuse it at their next key reload"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `keys list` reads spends: the limits store when `[proxy] store` is set (the
/// source of truth), Vault's record otherwise.
enum Spend {
    Vault,
    Store(RedisStore),
}

impl Spend {
    async fn open(
        client: &crate::vault::VaultClient,
        settings: Option<&StoreSettings>,
        path: &str,
    ) -> Result<Spend> {
        Ok(match settings {
            Some(settings) => {
                Spend::Store(crate::proxy::store::connect(client, settings, path).await?)
            }
            None => Spend::Vault,
        })
    }

    async fn of(
        &self,
        keys: &KeyStore,
        client: &crate::vault::VaultClient,
        name: &str,
    ) -> Result<u64> {
        match self {
            Spend::Vault => Ok(keys.read_spent(client, name).await?.0),
            Spend::Store(store) => {
                let stored = store.spent(name).await?;
                // A store not seeded yet (no proxy started since it was emptied): Vault's record.
                Ok(stored.max(keys.read_spent(client, name).await?.0))
            }
        }
    }
}

/// One client key for `keys list --format json`: 0 limits (unlimited) and empty lists (all
/// routes, any model) are null, as the text table's "-" and "*".
fn key_json(record: &KeyRecord, spent: Option<u64>) -> serde_json::Value {
    let p = &record.policy;
    let limit = |n: u64| (n > 0).then_some(n);
    let list = |items: &[String]| (!items.is_empty()).then(|| items.to_vec());
    serde_json::json!({
        "name": p.name,
        "routes": list(&p.routes),
        "models": list(&p.models),
        "rpm": limit(p.rpm),
        "tpm": limit(p.tpm),
        "budget": limit(p.budget),
        "concurrency": limit(p.concurrency),
        "spent": spent,
        "created": record.created,
    })
}

fn policy(args: &KeyCreateArgs) -> KeyPolicy {
    KeyPolicy {
        name: args.name.clone(),
        routes: args.routes.clone(),
        models: args.models.clone(),
        rpm: args.rpm.unwrap_or(0),
        tpm: args.tpm.unwrap_or(0),
        budget: args.budget.unwrap_or(0),
        concurrency: args.concurrency.unwrap_or(0),
    }
}
