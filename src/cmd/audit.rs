//! `keywrap audit setup`: make Vault's audit log show keywrap's identifying headers.
//! `keywrap audit report`: read that log back (see [`crate::audit_report`]).

use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use crate::vault::endpoints::AuditedHeaderRequest;
use anyhow::{bail, Context, Result};

use crate::audit_report::pattern::PathPattern;
use crate::audit_report::progress::Progress;
use crate::audit_report::{self, output, Filters};
use crate::cli::{AlertFormat, AuditCommand, Cli, ReportArgs, ReportFormat};
use crate::config;
use crate::environment::Environment;
use crate::identity::{RunIdentity, AUDITED_HEADERS};
use crate::secret::SecretValue;
use crate::session::Session;
use crate::timestamp::Timestamp;

pub fn run(cli: &Cli, command: &AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Setup => setup(cli),
        AuditCommand::Report(args) => report(cli, args),
    }
}

fn setup(cli: &Cli) -> Result<ExitCode> {
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    let identity = RunIdentity::detect(&env, None);
    let runtime = crate::runtime::runtime()?;
    runtime.block_on(async {
        let session =
            Session::open(super::session_inputs(cli, &env, loaded.as_ref()), identity).await?;
        let outcome = register_headers(&session).await;
        session.close().await;
        outcome
    })?;
    println!("Vault's audit log now records these headers on every request keywrap makes.");
    Ok(ExitCode::SUCCESS)
}

async fn register_headers(session: &Session) -> Result<()> {
    for header in AUDITED_HEADERS {
        let request = AuditedHeaderRequest {
            header: header.to_ascii_lowercase(),
            hmac: false,
        };
        let response = session.client.call(&request).await?;
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

/// Reads in large blocks: the log is read once, front to back.
const READ_BUFFER: usize = 4 << 20;

fn report(cli: &Cli, args: &ReportArgs) -> Result<ExitCode> {
    // Before the work: a webhook that cannot be read fails the run at once.
    let webhook = alert_webhook(cli, args)?;
    let now = Timestamp::now();
    let filters = Filters {
        path: args.path.as_deref().map(PathPattern::new),
        since: args
            .since
            .as_deref()
            .map(|t| parse_time(t, now, "--since"))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t, now, "--until"))
            .transpose()?,
        host: args.host.clone(),
        flagged_only: args.flagged,
    };
    let name = args.log.display().to_string();
    let (reader, size): (Box<dyn std::io::Read>, Option<u64>) = if name == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&args.log)
            .with_context(|| format!("cannot open the audit log {name}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut progress = Progress::new(size);
    let report = audit_report::scan(
        BufReader::with_capacity(READ_BUFFER, reader),
        &filters,
        |done| progress.update(done),
    )
    .with_context(|| format!("cannot read the audit log {name}"))?;
    progress.finish();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let written = match args.format {
        ReportFormat::Text => output::text(&report, &mut out),
        ReportFormat::Json => output::json(&report, &mut out),
        ReportFormat::Csv => output::csv(&report, &mut out),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        // `| head` closed the pipe: the reader has what it wanted.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(err) => return Err(err).context("cannot write the report"),
    }
    if let Some(url) = webhook {
        send_alerts(&report, url.expose(), args.alert_format)?;
    }
    if report.stats.reads == 0 && report.stats.lines > 0 {
        crate::log::warn(format_args!(
            "no reads of secrets in {name} ({} lines); is it a Vault/OpenBao file audit log?",
            report.stats.lines
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`/`--until`: RFC 3339, a date, or an age (`24h` means 24 hours ago).
fn parse_time(text: &str, now: Timestamp, flag: &str) -> Result<Timestamp> {
    if let Some(time) = Timestamp::parse(text) {
        return Ok(time);
    }
    match crate::duration::parse(text) {
        Ok(age) => Ok(now.minus(age)),
        Err(_) => bail!("{flag} {text:?}: write a time (2026-11-30T12:00:00Z), a date (2026-11-30) or an age (24h, 7d)"),
    }
}

/// The webhook URL from `--alert REF` (read from Vault) or `--alert-env NAME`. A URL given
/// to `--alert` itself is refused: it would sit in the process list and shell history.
fn alert_webhook(cli: &Cli, args: &ReportArgs) -> Result<Option<SecretValue>> {
    if let Some(name) = &args.alert_env {
        let url = std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .with_context(|| format!("--alert-env {name}: that environment variable is not set"))?;
        return Ok(Some(SecretValue::new(url)));
    }
    let Some(text) = &args.alert else {
        return Ok(None);
    };
    if text.contains("://") {
        bail!("--alert takes a reference to the webhook URL in Vault (PATH#FIELD), not the URL itself (not shown); or name an environment variable with --alert-env");
    }
    let reference = text
        .parse::<crate::reference::Reference>()
        .map_err(|err| anyhow::anyhow!("--alert: {err}"))?;
    let env = Environment::from_process();
    let loaded = config::locate(cli.config.as_deref())?;
    let identity = RunIdentity::detect(&env, Some("audit report"));
    let binding = crate::bindings::Binding {
        name: "alert".into(),
        reference,
        origin: crate::bindings::Origin::Flag,
    };
    let runtime = crate::runtime::runtime()?;
    let value = runtime.block_on(async {
        let session =
            Session::open(super::session_inputs(cli, &env, loaded.as_ref()), identity).await?;
        let resolved =
            crate::resolve::resolve(&session.client, std::slice::from_ref(&binding)).await;
        session.close().await;
        let mut resolved = resolved.context("reading the --alert webhook URL")?;
        anyhow::Ok(resolved.values.remove(0).1)
    })?;
    Ok(Some(value))
}

/// Sends the anomalies the report shows, once each (see [`audit_report::alerts`]).
fn send_alerts(report: &audit_report::Report, url: &str, format: AlertFormat) -> Result<()> {
    let format = match format {
        AlertFormat::Slack => crate::alerts::Format::Slack,
        AlertFormat::Json => crate::alerts::Format::Json,
    };
    let alerts = audit_report::alerts::anomalies(report);
    let alerter = crate::alerts::Alerter {
        sender: crate::alerts::Sender::new(url, format)?,
        dedup: crate::alerts::MemoryDedup::default(),
    };
    let runtime = crate::runtime::runtime()?;
    let sent = runtime.block_on(async {
        let mut sent = 0;
        for alert in &alerts {
            if alerter
                .fire(alert, std::time::Duration::from_secs(3600))
                .await?
            {
                sent += 1;
            }
        }
        anyhow::Ok(sent)
    })?;
    crate::log::verbose(format_args!("sent {sent} alerts"));
    eprintln!(
        "keywrap: sent {sent} alert{} to the webhook",
        if sent == 1 { "" } else { "s" }
    );
    Ok(())
}
