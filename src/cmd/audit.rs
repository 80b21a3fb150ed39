//! `keywrap audit setup`: make Vault's audit log show keywrap's identifying headers.

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;

use crate::cli::{AuditCommand, Cli};
use crate::config;
use crate::environment::Environment;
use crate::identity::{RunIdentity, AUDITED_HEADERS};
use crate::session::Session;

pub fn run(cli: &Cli, command: &AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Setup => setup(cli),
    }
}

fn setup(cli: &Cli) -> Result<ExitCode> {
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    let identity = RunIdentity::detect(&env, None);
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let session = Session::open(cli.session_inputs(&env, loaded.as_ref()), identity).await?;
        let outcome = register_headers(&session).await;
        session.close().await;
        outcome
    })?;
    println!("Vault's audit log now records these headers on every request keywrap makes.");
    Ok(ExitCode::SUCCESS)
}

async fn register_headers(session: &Session) -> Result<()> {
    for header in AUDITED_HEADERS {
        let path = format!(
            "sys/config/auditing/request-headers/{}",
            header.to_ascii_lowercase()
        );
        let response = session
            .client
            .post(&path, &json!({ "hmac": false }))
            .await?;
        match response.status.as_u16() {
            200 | 204 => println!("audited in clear: {header}"),
            403 => bail!(
                "permission denied registering {header}: the token needs \"sudo\" and \"update\" on sys/config/auditing/request-headers/*"
            ),
            status => bail!(
                "Vault answered {status} registering {header}: {}",
                crate::auth::one_line(&response.errors())
            ),
        }
    }
    Ok(())
}
