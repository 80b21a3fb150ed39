//! `keywrap status`: each key's current version, age and state against its max_age, and
//! where its rotation stands. Reads metadata only (`GET mount/metadata/path`), never a value.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::bindings::{self, Binding, Origin};
use crate::cli::{Cli, StatusArgs, StatusFormat};
use crate::config::{self, LoadedConfig};
use crate::duration;
use crate::environment::Environment;
use crate::error::{SilentExit, KEYWRAP_FAILED};
use crate::identity::RunIdentity;
use crate::lifecycle::policy::{self, AgeState};
use crate::lifecycle::rotation::{self, RotationState};
use crate::session::Session;
use crate::timestamp::Timestamp;
use crate::vault::kv::{self, KvVersion};
use crate::vault::versions::{self, Metadata};
use crate::vault::VaultClient;

/// One line of the report.
#[derive(Debug, Serialize)]
struct Row {
    name: Option<String>,
    reference: String,
    version: Option<u64>,
    created: Option<String>,
    age: Option<String>,
    age_seconds: Option<u64>,
    max_age: String,
    max_age_seconds: u64,
    /// ok, rotate soon, overdue, unknown (KV v1), or error.
    state: String,
    rotation: String,
    /// From the last recorded rotation's custom metadata.
    rotated_at: Option<String>,
    rotated_by: Option<String>,
    needs_attention: bool,
    error: Option<String>,
}

pub fn run(cli: &Cli, args: &StatusArgs) -> Result<ExitCode> {
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    let targets = targets(loaded.as_ref(), args)?;
    if targets.is_empty() {
        bail!("nothing to check: give REFs or add [env] references to keywrap.toml");
    }
    let identity = RunIdentity::detect(&env, Some("keywrap-status"));
    let runtime = crate::runtime::runtime()?;
    let session = runtime.block_on(Session::open(
        super::session_inputs(cli, &env, loaded.as_ref()),
        identity,
    ))?;
    let now = Timestamp::now();
    let rows = runtime.block_on(async {
        let rows = rows(&session.client, loaded.as_ref(), &targets, now).await;
        session.close().await;
        rows
    })?;
    let text = match args.format {
        StatusFormat::Json => serde_json::to_string_pretty(&rows)? + "\n",
        StatusFormat::Text => table(&rows),
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // `| head` closed the pipe: the reader has what it wanted; the status still counts.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(err).context("cannot write the status");
        }
        _ => {}
    }
    if rows.iter().any(|r| r.error.is_some()) {
        return Err(SilentExit(KEYWRAP_FAILED).into());
    }
    if args.check
        && rows
            .iter()
            .any(|r| r.state == AgeState::Overdue.to_string())
    {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The bindings to check: the given REFs, else keywrap.toml's. A given REF written exactly
/// as a keywrap.toml reference is that entry, with its name and its own max_age; any other
/// is named by nothing and gets the `[policy]` max_age.
fn targets(
    config: Option<&LoadedConfig>,
    args: &StatusArgs,
) -> Result<Vec<(Option<String>, Binding)>> {
    let configured: Vec<Binding> = bindings::collect(config, &[])?;
    if !args.references.is_empty() {
        return Ok(args
            .references
            .iter()
            .map(
                |reference| match configured.iter().find(|b| b.reference == *reference) {
                    Some(entry) => (Some(entry.name.clone()), entry.clone()),
                    None => (
                        None,
                        Binding {
                            name: String::new(),
                            reference: reference.clone(),
                            origin: Origin::Flag,
                        },
                    ),
                },
            )
            .collect());
    }
    Ok(configured
        .into_iter()
        .map(|b| (Some(b.name.clone()), b))
        .collect())
}

async fn rows(
    client: &VaultClient,
    config: Option<&LoadedConfig>,
    targets: &[(Option<String>, Binding)],
    now: Timestamp,
) -> Result<Vec<Row>> {
    let mut cache: BTreeMap<String, Result<Option<Metadata>, String>> = BTreeMap::new();
    let mut rows = Vec::new();
    for (name, binding) in targets {
        let options = policy::options_for(config, binding)?;
        let path = &binding.reference.path;
        if !cache.contains_key(path) {
            let metadata = match kv::find_mount(client, path).await {
                // KV v1 keeps no versions or times: nothing to judge, nothing wrong.
                Ok(mount) if mount.version == KvVersion::V1 => Ok(None),
                Ok(mount) => versions::metadata(client, &mount, path)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            cache.insert(path.clone(), metadata);
        }
        let mut row = Row {
            name: name.clone(),
            reference: binding.reference.to_string(),
            version: None,
            created: None,
            age: None,
            age_seconds: None,
            max_age: duration::format(options.max_age),
            max_age_seconds: options.max_age.as_secs(),
            state: "error".into(),
            rotation: "-".into(),
            rotated_at: None,
            rotated_by: None,
            needs_attention: false,
            error: None,
        };
        match &cache[path] {
            Err(problem) => row.error = Some(problem.clone()),
            Ok(None) => {
                row.state = "unknown".into();
                row.rotation = "KV v1: no versions, no age".into();
            }
            Ok(Some(metadata)) => {
                let version = binding
                    .reference
                    .version
                    .unwrap_or(metadata.current_version);
                row.version = Some(version);
                let state = RotationState::of(metadata);
                row.needs_attention = state.needs_attention();
                row.rotation = state.to_string();
                row.rotated_at = metadata.custom.get(rotation::ROTATED_AT).cloned();
                row.rotated_by = metadata.custom.get(rotation::ROTATED_BY).cloned();
                match metadata.versions.get(&version) {
                    None => row.error = Some(format!("version {version} does not exist")),
                    Some(info) if !info.readable() => {
                        row.error = Some(format!(
                            "version {version} is {}",
                            if info.destroyed {
                                "destroyed"
                            } else {
                                "deleted"
                            }
                        ))
                    }
                    Some(info) => match info.created {
                        None => row.error = Some("Vault gave no creation time".into()),
                        Some(created) => {
                            let age = now.since(created);
                            row.created = Some(created.to_rfc3339());
                            row.age = Some(duration::format(age));
                            row.age_seconds = Some(age.as_secs());
                            row.state = policy::age_state(age, options.max_age).to_string();
                        }
                    },
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn table(rows: &[Row]) -> String {
    let show_names = rows.iter().any(|r| r.name.is_some());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut line = Vec::new();
            if show_names {
                line.push(r.name.clone().unwrap_or_default());
            }
            line.extend([
                r.reference.clone(),
                r.version.map_or("-".into(), |v| v.to_string()),
                r.created.clone().unwrap_or_else(|| "-".into()),
                r.age.clone().unwrap_or_else(|| "-".into()),
                r.max_age.clone(),
                r.state.clone(),
                match &r.error {
                    Some(problem) => problem.clone(),
                    None => r.rotation.clone(),
                },
            ]);
            line
        })
        .collect();
    let mut header = Vec::new();
    if show_names {
        header.push("NAME");
    }
    header.extend([
        "REFERENCE",
        "VERSION",
        "CREATED",
        "AGE",
        "MAX AGE",
        "STATE",
        "ROTATION",
    ]);
    let header: Vec<String> = header.into_iter().map(String::from).collect();
    let mut text = String::new();
    crate::table::render(&header, &cells, &mut text);
    text
}
