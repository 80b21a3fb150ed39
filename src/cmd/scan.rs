//! `keywrap scan`: find keys in files, git history, staged changes or standard input.

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use crate::bindings;
use crate::cli::{Cli, ScanArgs};
use crate::config::{self, LoadedConfig};
use crate::environment::Environment;
use crate::error::{SilentExit, USAGE_OR_IO};
use crate::identity::RunIdentity;
use crate::scan::matcher::Matcher;
use crate::scan::report::{self, Format};
use crate::scan::suppress::{self, Baseline};
use crate::scan::vault::{VaultValues, MIN_LENGTH};
use crate::scan::walk::{self, Totals};
use crate::scan::{git, rules, Finding, Scanner};
use crate::session::Session;

/// Exit status when something was found.
const FOUND: u8 = 1;

pub fn run(cli: &Cli, args: &ScanArgs) -> Result<ExitCode> {
    let loaded = config::locate(cli.config.as_deref())?;
    let mut rule_set = rules::builtin();
    if let Some(config) = &loaded {
        rules::merge(&mut rule_set, config.file.rules.clone())
            .with_context(|| format!("in {}", config.path.display()))?;
    }
    for path in &args.rules {
        rules::merge(&mut rule_set, rules::load(path)?)?;
    }
    if args.list_rules {
        list_rules(&rule_set, args.format)?;
        return Ok(ExitCode::SUCCESS);
    }
    let scanner = Scanner {
        matcher: Matcher::new(&rule_set)?,
        vault: if args.vault {
            Some(vault_values(cli, loaded.as_ref())?)
        } else {
            None
        },
    };

    let started = Instant::now();
    let (findings, totals) = collect(&scanner, args)?;
    report_speed(&totals, started);

    // A new baseline holds everything found now, including what an old one accepted.
    if let Some(path) = &args.write_baseline {
        Baseline::from_findings(&findings).write(path)?;
        eprintln!(
            "keywrap: wrote {} fingerprint(s) to {}; scan with --baseline {} to report only new findings",
            findings.len(),
            path.display(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let findings = match &args.baseline {
        Some(path) => Baseline::load(path)?.filter(findings),
        None => findings,
    };

    let stdout = std::io::stdout();
    let color = args.format == Format::Text
        && stdout.is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut out = stdout.lock();
    report::write(&mut out, args.format, &findings, &scanner.matcher, color)
        .and_then(|()| out.flush())
        .context("cannot write the report")?;

    if findings.is_empty() {
        if totals.errors > 0 {
            crate::log::warn(format_args!(
                "{} file(s) could not be read, so the scan is incomplete",
                totals.errors
            ));
            return Err(SilentExit(USAGE_OR_IO).into());
        }
        return Ok(ExitCode::SUCCESS);
    }
    print_advice(&findings, args.staged);
    Ok(ExitCode::from(FOUND))
}

/// `--list-rules`: what each rule finds, for people (text) or programs (JSON).
fn list_rules(rule_set: &[rules::Rule], format: Format) -> Result<()> {
    // Compiled first, so a rule that cannot run is an error here too.
    Matcher::new(rule_set)?;
    let builtin: std::collections::BTreeMap<String, String> = rules::builtin()
        .into_iter()
        .map(|r| (r.id, r.regex))
        .collect();
    let origin = |rule: &rules::Rule| match builtin.get(&rule.id) {
        Some(regex) if *regex == rule.regex => "built-in",
        _ => "user",
    };
    let mut out = std::io::stdout().lock();
    match format {
        Format::Text => {
            let width = rule_set.iter().map(|r| r.id.len()).max().unwrap_or(0);
            for rule in rule_set {
                let marker = if origin(rule) == "user" {
                    "  (user rule)"
                } else {
                    ""
                };
                let description = crate::scan::escape_controls(&rule.description);
                writeln!(out, "{:width$}  {description}{marker}", rule.id)?;
            }
        }
        Format::Json => {
            let list: Vec<serde_json::Value> = rule_set
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "description": r.description,
                        "origin": origin(r),
                        "keywords": r.keywords,
                        "regex": r.regex,
                        "entropy": r.entropy,
                        "prefix": r.prefix,
                        "multiline": r.multiline,
                        "fallback": r.fallback,
                        "decode": r.decode.map(|_| "base64"),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        Format::Sarif => {
            bail!("--list-rules prints text or json (SARIF lists the rules in every report)")
        }
    }
    out.flush().context("cannot write the rule list")
}

/// Runs the scan that the arguments ask for.
fn collect(scanner: &Scanner, args: &ScanArgs) -> Result<(Vec<Finding>, Totals)> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let max_file_size = args.max_file_size.saturating_mul(1 << 20);
    if args.stdin {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("cannot read standard input")?;
        let totals = Totals {
            files: 1,
            bytes: data.len() as u64,
            errors: 0,
        };
        return Ok((scanner.scan("<stdin>", &data, None), totals));
    }
    if args.git || args.staged {
        if args.paths.len() > 1 {
            bail!("--git and --staged take one directory of the repository, not several paths");
        }
        let dir = args
            .paths
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("."));
        let top = git::toplevel(&dir)?;
        let ignore = suppress::ignore_file(&top)?;
        return if args.git {
            git::scan_history(scanner, &top, ignore.as_ref(), max_file_size, threads)
        } else {
            git::scan_staged(scanner, &top, ignore.as_ref(), max_file_size, threads)
        };
    }
    if args.pre_commit {
        let paths = hook_files(&args.paths)?;
        if paths.is_empty() {
            return Ok((Vec::new(), Totals::default()));
        }
        return walk::scan_paths(scanner, &paths, max_file_size, threads);
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    walk::scan_paths(scanner, &paths, max_file_size, threads)
}

/// The files a hook framework passed, less those the repository's .keywrapignore lists
/// (a file named on the command line is otherwise scanned even if ignored, but the
/// framework names every tracked file with `--all-files`).
fn hook_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let Some(first) = paths.first() else {
        return Ok(Vec::new());
    };
    let start = first
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let top = git::toplevel(start)?;
    let Some(ignore) = suppress::ignore_file(&top)? else {
        return Ok(paths.to_vec());
    };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let top = top.canonicalize().unwrap_or(top);
    Ok(paths
        .iter()
        .filter(|path| {
            let absolute = cwd.join(path);
            let absolute = absolute.canonicalize().unwrap_or(absolute);
            match absolute.strip_prefix(&top) {
                Ok(relative) => !suppress::is_ignored(&ignore, &relative.to_string_lossy()),
                Err(_) => true,
            }
        })
        .cloned()
        .collect())
}

/// Resolves keywrap.toml's references and keeps only keyed hashes of the values.
fn vault_values(cli: &Cli, loaded: Option<&LoadedConfig>) -> Result<VaultValues> {
    let bindings = bindings::collect(loaded, &[])?;
    if bindings.is_empty() {
        bail!(
            "--vault: nothing to look for (no {} with [env] references found)",
            config::FILE_NAME
        );
    }
    let env = Environment::from_process();
    let identity = RunIdentity::detect(&env, Some("keywrap-scan"));
    let resolved = crate::runtime::runtime()?.block_on(async {
        let session = Session::open(super::session_inputs(cli, &env, loaded), identity).await?;
        let resolved = crate::resolve::resolve(&session.client, &bindings).await;
        session.close().await;
        anyhow::Ok(resolved?)
    })?;
    let labelled = resolved
        .values
        .into_iter()
        .map(|(name, value)| {
            let reference = bindings
                .iter()
                .find(|b| b.name == name)
                .map(|b| b.reference.to_string())
                .unwrap_or_default();
            (format!("{name} ({reference})"), value)
        })
        .collect();
    let (values, skipped) = VaultValues::new(labelled);
    for label in skipped {
        crate::log::warn(format_args!(
            "--vault: {label} is shorter than {MIN_LENGTH} characters; not looked for"
        ));
    }
    crate::log::verbose(format_args!(
        "--vault: looking for {} value(s)",
        bindings.len()
    ));
    Ok(values)
}

/// `-v`: how much was scanned and how fast.
fn report_speed(totals: &Totals, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let megabytes = totals.bytes as f64 / 1e6;
    crate::log::verbose(format_args!(
        "scanned {} file(s), {megabytes:.1} MB in {seconds:.3} s ({:.0} MB/s)",
        totals.files,
        megabytes / seconds.max(1e-9)
    ));
}

/// What to do about the findings: on stderr, so reports on stdout stay machine-readable.
fn print_advice(findings: &[Finding], staged: bool) {
    let files: std::collections::BTreeSet<&str> =
        findings.iter().map(|f| f.file.as_str()).collect();
    let mut err = std::io::stderr().lock();
    let what = if staged { "commit blocked: " } else { "" };
    let _ = writeln!(
        err,
        "keywrap: {what}{} secret(s) found in {} file(s).\n\
         Move each key into Vault and reference it instead of writing it down:\n  \
           keywrap import .env --to secret/myapp   # a dotenv file's keys into Vault, references into keywrap.toml\n  \
           keywrap exec -- your-command            # runs it with the keys from Vault in its environment only\n\
         A key that was ever pushed or shared must be rotated as well.\n\
         Not a secret? Put `keywrap:allow` in a comment on its line, or list the file in .keywrapignore.",
        findings.len(),
        files.len()
    );
    if staged {
        let _ = writeln!(err, "Then `git add` the changed files and commit again.");
    }
}

/// Turns a scan or hook failure into exit status 2 after printing it.
pub fn exit_two(err: anyhow::Error) -> Result<ExitCode> {
    if err.downcast_ref::<SilentExit>().is_none() {
        eprintln!("keywrap: error: {err:#}");
    }
    // A keywrap.toml setting refused for want of trust is 125 in every command.
    if err
        .chain()
        .any(|cause| cause.is::<crate::trust::NotTrusted>())
    {
        return Err(SilentExit(crate::error::KEYWRAP_FAILED).into());
    }
    Err(SilentExit(USAGE_OR_IO).into())
}

/// Whether a command line (without the program name) names the `scan` or `hook`
/// subcommand, skipping global options and their values.
pub fn is_scan_command_line(args: impl Iterator<Item = OsString>) -> bool {
    let command = Cli::command();
    let takes_value = |flag: &str| {
        command.get_arguments().any(|arg| {
            let named = arg.get_long() == Some(flag.trim_start_matches("--"))
                || (flag.len() == 2 && arg.get_short() == flag.chars().nth(1));
            named && arg.get_action().takes_values()
        })
    };
    let mut args = args.map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            return false;
        }
        if arg.starts_with('-') {
            if !arg.contains('=') && takes_value(&arg) {
                args.next();
            }
            continue;
        }
        return arg == "scan" || arg == "hook";
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> bool {
        is_scan_command_line(args.iter().map(OsString::from))
    }

    #[test]
    fn finds_the_subcommand_past_global_options() {
        assert!(line(&["scan", "--bogus"]));
        assert!(line(&["--config", "scan.toml", "hook", "install"]));
        assert!(line(&["-v", "--address=x", "scan"]));
        assert!(!line(&["--config", "scan", "exec"]));
        assert!(!line(&["exec", "--", "scan"]));
    }
}
