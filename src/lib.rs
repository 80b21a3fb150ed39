//! keywrap: run a program with API keys from Vault or OpenBao in its environment only.
//!
//! The binary (`main.rs`) is a thin shell over this library so that integration tests and
//! the binary share one implementation. Where things live:
//!
//! - [`cli`]: the command-line definition; [`cmd`]: one module per subcommand.
//! - [`reference`]: the `[vault://]PATH[?version=N]#FIELD` syntax.
//! - [`config`]: `keywrap.toml`; [`settings`]: connection settings (flags > env > file).
//! - [`resolve`]: turns a set of references into secret values (this is where `exec` reads Vault).
//! - [`vault`]: the HTTP client for Vault/OpenBao (TLS, retries, audit headers, KV v1/v2).
//! - [`child`]: resolving, starting and supervising the child process (output plumbing, restarts).
//! - [`lifecycle`]: key age policy, rotation and overlap; [`audit_report`]: reading Vault's audit log.
//! - [`mask`]: the output filter; [`dotenv`]: env files; [`watch`]: `--watch` version polling.
//! - [`proxy`]: `keywrap proxy`, the key-holding HTTP proxy with client keys and limits.
//! - [`scan`]: finding keys in files, git history and staged changes.
//! - [`import`]: moving a dotenv file's secrets into Vault, leaving references.
//! - [`trust`]: which keywrap.toml files may set what could send a token or a file elsewhere.
//!
//! Layers, top to bottom; a module uses its own layer and those below, never one above
//! (`tests/architecture.rs` checks it):
//!
//! 1. command: [`cli`] (arguments only) and [`cmd`] (one module per subcommand).
//! 2. features: [`alerts`], [`audit_report`], [`child`], [`import`], [`lifecycle`], [`mask`],
//!    [`proxy`], [`scan`], [`watch`].
//! 3. Vault and auth: [`vault`], [`auth`], [`session`], [`resolve`].
//! 4. primitives: [`config`], [`alert_settings`], [`settings`], [`trust`], [`dotenv`],
//!    [`bindings`], [`reference`], [`secret`], [`environment`], [`identity`], [`duration`], [`timestamp`],
//!    [`runtime`], [`log`], [`redact`], [`error`], ...
//!
//! The one exception: [`proxy`] builds its settings from `cli::ProxyArgs`.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod alert_settings;
pub mod alerts;
pub mod audit_report;
pub mod auth;
pub mod bindings;
pub mod child;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod dotenv;
pub mod duration;
pub mod environment;
pub mod error;
pub mod hardening;
pub mod identity;
pub mod import;
pub mod lifecycle;
pub mod log;
pub mod mask;
pub mod proxy;
pub mod redact;
pub mod reference;
pub mod resolve;
pub mod runtime;
pub mod scan;
pub mod secret;
pub mod session;
pub mod settings;
#[allow(unsafe_code)]
pub mod sys;
pub mod table;
pub mod timestamp;
pub mod trust;
pub mod usage_error;
pub mod vault;
pub mod watch;
