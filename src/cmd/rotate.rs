//! `keywrap rotate`: write a new version of a key, and `--finish` to end the overlap.
//! The order of writes, and why a stop between any two loses nothing, is in
//! [`crate::lifecycle::rotation`].

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tokio::runtime::Runtime;

use crate::cli::{Cli, RotateArgs};
use crate::config;
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::lifecycle::hooks::{self, Hook};
use crate::lifecycle::rotation::{self, RotationState};
use crate::reference::Reference;
use crate::secret::SecretValue;
use crate::session::Session;
use crate::timestamp::Timestamp;
use crate::vault::kv::{self, Mount};
use crate::vault::versions::{self, Metadata, Removal, VersionError};
use crate::vault::VaultClient;

pub fn run(cli: &Cli, args: &RotateArgs) -> Result<ExitCode> {
    if args.reference.version.is_some() {
        bail!(
            "{}: rotate the latest version; remove ?version=",
            args.reference
        );
    }
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    let identity = RunIdentity::detect(&env, Some("keywrap-rotate"));
    let runtime = crate::runtime::runtime()?;
    let session = runtime.block_on(Session::open(
        super::session_inputs(cli, &env, loaded.as_ref()),
        identity,
    ))?;
    let outcome = rotate(&runtime, &session, args, &env);
    runtime.block_on(session.close());
    outcome
}

fn rotate(
    runtime: &Runtime,
    session: &Session,
    args: &RotateArgs,
    env: &Environment,
) -> Result<ExitCode> {
    let reference = &args.reference;
    let client = &session.client;
    let mount = runtime.block_on(kv::find_mount(client, &reference.path))?;
    let metadata = runtime
        .block_on(versions::metadata(client, &mount, &reference.path))
        .with_context(|| format!("cannot read the metadata of {}", reference.path))?;
    let actor = rotation::actor(&session.identity);
    let hook = Hook {
        env,
        run_id: &session.identity.correlation_id,
        strip: &session.strip,
    };
    if args.finish {
        let removal = if args.destroy {
            Removal::Destroy
        } else {
            Removal::Delete
        };
        runtime.block_on(finish(
            client,
            &mount,
            reference,
            &metadata,
            removal,
            args.revoke_with.as_deref(),
            &hook,
        ))?;
        return Ok(ExitCode::SUCCESS);
    }

    let target = Target {
        client,
        mount: &mount,
        reference,
        actor,
    };
    if let RotationState::Unrecorded {
        from,
        written,
        field,
        by,
    } = RotationState::of(&metadata)
    {
        runtime.block_on(target.complete(&metadata, from, written, field, by))?;
        eprintln!("keywrap: completed the interrupted rotation of {reference}: version {written} replaces {from}; no new key was read");
        println!("{written}");
        return Ok(ExitCode::SUCCESS);
    }

    let current = metadata.current_version;
    if !metadata.current().is_some_and(|v| v.readable()) {
        bail!("{reference}: the current version {current} is deleted or destroyed, so its other fields cannot be carried over; undelete it (`vault kv undelete -versions={current}`) or write the secret with `vault kv put`");
    }
    if let RotationState::Overlap { previous, .. } = RotationState::of(&metadata) {
        crate::log::warn(format_args!(
            "the last rotation's overlap was never ended: version {previous} stays readable after this one (end it with `keywrap rotate --finish` first, or `vault kv delete -versions={previous} {}`)",
            reference.path
        ));
    }
    // Read before making the key, so a failure here costs no key at the provider.
    let mut fields = runtime
        .block_on(kv::read(client, &mount, &reference.path, Some(current)))?
        .fields;
    let Some(old) = fields.get(&reference.field) else {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        bail!(
            "{reference}: version {current} has no field \"{}\" to rotate (its fields: {}); a typo here would add a field the program never reads",
            reference.field,
            names.join(", ")
        );
    };
    let new_value = match &args.generate_with {
        Some(command) => hooks::generate(command, &hook)?,
        None => hooks::read_stdin()?,
    };
    if old.expose() == new_value.expose() {
        bail!("{reference}: the new key equals the current one; nothing was written");
    }
    fields.insert(reference.field.clone(), new_value);
    let unstored = if args.generate_with.is_some() {
        "; the key made by --generate-with was not stored, so revoke it at the provider"
    } else {
        ""
    };
    let written = runtime.block_on(target.write(current, fields, unstored))?;
    eprintln!("keywrap: rotated {reference}: version {written} is current; version {current} stays readable until `keywrap rotate --finish {reference}`");
    println!("{written}");
    Ok(ExitCode::SUCCESS)
}

/// The secret one rotation works on, and who rotates it.
struct Target<'a> {
    client: &'a VaultClient,
    mount: &'a Mount,
    reference: &'a Reference,
    actor: String,
}

impl Target<'_> {
    fn path(&self) -> &str {
        &self.reference.path
    }

    /// Steps 2 to 4 of [`crate::lifecycle::rotation`]: marker, check-and-set write, record.
    /// Returns the new version.
    async fn write(
        &self,
        current: u64,
        fields: BTreeMap<String, SecretValue>,
        unstored: &str,
    ) -> Result<u64> {
        let (client, mount, reference) = (self.client, self.mount, self.reference);
        // A generator can take a while: start from the metadata as it is now, and stop
        // before writing anything if another rotation landed meanwhile.
        let fresh = versions::metadata(client, mount, self.path()).await?;
        if fresh.current_version != current {
            let conflict = VersionError::Conflict {
                path: self.path().to_string(),
                expected: current,
            };
            return Err(anyhow::Error::new(conflict).context(format!(
                "{reference}: version {} appeared while the new key was made{unstored}",
                fresh.current_version
            )));
        }
        let now = Timestamp::now();
        let marked =
            rotation::with_marker(&fresh.custom, current, &reference.field, &self.actor, now);
        versions::set_custom_metadata(client, mount, self.path(), &marked).await?;
        let written = match versions::write_cas(client, mount, self.path(), &fields, current).await
        {
            Ok(version) => version,
            Err(err) => {
                // A lost race leaves the metadata to the winner; any other failure puts it back.
                if !matches!(err, VersionError::Conflict { .. }) {
                    let _ =
                        versions::set_custom_metadata(client, mount, self.path(), &fresh.custom)
                            .await;
                }
                return Err(anyhow::Error::new(err).context(format!(
                    "{reference}: the new version was not written; version {current} stays current{unstored}"
                )));
            }
        };
        drop(fields);
        let record = rotation::with_record(
            &fresh.custom,
            current,
            written,
            &reference.field,
            &self.actor,
            Timestamp::now(),
        );
        versions::set_custom_metadata(client, mount, self.path(), &record)
            .await
            .with_context(|| format!("{reference}: version {written} was written but the rotation was not recorded; rerun `keywrap rotate {reference}` to record it (no new key is needed)"))?;
        Ok(written)
    }

    /// Step 4 alone, for a rotation that stopped after writing its version: the record gets
    /// the version's creation time and the user who started the rotation.
    async fn complete(
        &self,
        metadata: &Metadata,
        from: u64,
        written: u64,
        field: String,
        by: String,
    ) -> Result<()> {
        let at = metadata
            .versions
            .get(&written)
            .and_then(|v| v.created)
            .unwrap_or_else(Timestamp::now);
        let field = if field.is_empty() {
            self.reference.field.clone()
        } else {
            field
        };
        let by = if by.is_empty() {
            self.actor.clone()
        } else {
            by
        };
        let record = rotation::with_record(&metadata.custom, from, written, &field, &by, at);
        versions::set_custom_metadata(self.client, self.mount, self.path(), &record).await?;
        Ok(())
    }
}

async fn finish(
    client: &VaultClient,
    mount: &Mount,
    reference: &Reference,
    metadata: &Metadata,
    removal: Removal,
    revoke_with: Option<&str>,
    hook: &Hook<'_>,
) -> Result<()> {
    let previous = match RotationState::of(metadata) {
        RotationState::Overlap { previous, .. } => previous,
        RotationState::Finished { previous, .. } => {
            let info = metadata.versions.get(&previous);
            let destroyed = info.is_none_or(|v| v.destroyed);
            if removal == Removal::Destroy && !destroyed {
                previous
            } else {
                eprintln!("keywrap: the overlap of {reference} was already ended (version {previous} removed)");
                return Ok(());
            }
        }
        state @ (RotationState::NotWritten { .. } | RotationState::Unrecorded { .. }) => {
            bail!("{reference}: {state}")
        }
        RotationState::Never | RotationState::WrittenOutside { .. } => {
            bail!("{reference}: no rotation by keywrap is recorded for the current version, so there is no overlap to end; rotate with `keywrap rotate`")
        }
    };
    if let Some(command) = revoke_with {
        let old = old_value(client, mount, reference, previous).await?;
        hooks::revoke(command, hook, &old)?;
        eprintln!("keywrap: revoked the key of version {previous}");
    }
    versions::remove_version(client, mount, &reference.path, previous, removal).await?;
    eprintln!(
        "keywrap: {} version {previous} of {}; the overlap is over",
        removal.past_tense(),
        reference.path
    );
    Ok(())
}

async fn old_value(
    client: &VaultClient,
    mount: &Mount,
    reference: &Reference,
    version: u64,
) -> Result<SecretValue> {
    let mut secret = kv::read(client, mount, &reference.path, Some(version))
        .await
        .with_context(|| format!("cannot read version {version} to revoke it"))?;
    secret.fields.remove(&reference.field).with_context(|| {
        format!(
            "version {version} of {} has no field \"{}\" to revoke",
            reference.path, reference.field
        )
    })
}
