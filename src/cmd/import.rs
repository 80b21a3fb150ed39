//! `keywrap import FILE --to PATH`: plan, ask, write to Vault and verify, then rewrite the
//! local files. The safety order is described in [`crate::import`].

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::cli::{Cli, ImportArgs};
use crate::config;
use crate::environment::Environment;
use crate::identity::RunIdentity;
use crate::import::files::{self, Change};
use crate::import::git::GitState;
use crate::import::{self, Layout, Output, Sorted};
use crate::scan::matcher::Matcher;
use crate::scan::rules;
use crate::session::Session;

pub fn run(cli: &Cli, args: &ImportArgs) -> Result<ExitCode> {
    let (env_path, dir) = import::env_file(&args.file)?;
    let loaded = config::locate(cli.config.as_deref())?;
    let mut rule_set = rules::builtin();
    if let Some(config) = &loaded {
        rules::merge(&mut rule_set, config.file.rules.clone())
            .with_context(|| format!("in {}", config.path.display()))?;
    }
    let matcher = Matcher::new(&rule_set)?;
    let layout = if args.split {
        Layout::Split
    } else {
        Layout::Single
    };
    let output = if args.env_refs {
        Output::EnvRefs
    } else {
        Output::Config
    };
    let original = std::fs::read_to_string(&env_path)
        .with_context(|| format!("cannot read {}", env_path.display()))?;
    let sorted = import::sort(&env_path, &original, &matcher, &args.to, layout)?;
    let git = GitState::of(&env_path, &dir);

    // Every local change is computed (and checked) now, before Vault is touched.
    let mut changes = Vec::new();
    let mut described = Vec::new();
    if !git.ignored {
        let (gitignore, pattern) = git.ignore_entry(&env_path, &dir);
        let before = Change::read_original(&gitignore)?;
        let text = before
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        described.push(format!("{}: add {pattern}", gitignore.display()));
        changes.push(Change {
            new: files::add_ignore(text.as_deref(), &pattern).into_bytes(),
            path: gitignore,
            original: before,
        });
    }
    if !sorted.moved.is_empty() {
        if output == Output::Config {
            // No keywrap.toml found means a new one next to the env file.
            let (target, before) = match cli.config.clone().or_else(|| config::discover(&dir)) {
                Some(found) => {
                    let before = Change::read_original(&found)?;
                    (found, before)
                }
                None => (dir.join(config::FILE_NAME), None),
            };
            let text = match &before {
                Some(bytes) => Some(
                    String::from_utf8(bytes.clone())
                        .with_context(|| format!("{} is not UTF-8", target.display()))?,
                ),
                None => None,
            };
            let new =
                files::add_references(&target, text.as_deref(), &sorted.moved, args.overwrite)?;
            let verb = if before.is_some() {
                "add"
            } else {
                "create with"
            };
            described.push(format!(
                "{}: {verb} {} reference(s) under [env]",
                target.display(),
                sorted.moved.len()
            ));
            changes.push(Change {
                path: target,
                original: before,
                new: new.into_bytes(),
            });
        }
        let what = match output {
            Output::Config => "become comments",
            Output::EnvRefs => "become vault:// references",
        };
        let lines: Vec<String> = sorted.moved.iter().map(|m| m.line.to_string()).collect();
        described.push(format!(
            "{}: line(s) {} {what}; other lines unchanged",
            env_path.display(),
            lines.join(", ")
        ));
        changes.push(Change {
            new: files::rewrite_env(&original, &sorted.moved, output).into_bytes(),
            path: env_path.clone(),
            original: Some(original.clone().into_bytes()),
        });
    }

    print_plan(&env_path, &args.to, &sorted, &described, args.dry_run)?;
    report_history(&env_path, &git, &sorted);
    if args.dry_run {
        println!("dry run: nothing was written to Vault or to disk");
        return Ok(ExitCode::SUCCESS);
    }
    if sorted.moved.is_empty() && changes.is_empty() {
        eprintln!("keywrap: nothing to import from {}", env_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes && !confirm()? {
        bail!("import cancelled; nothing was written to Vault or to disk");
    }

    if !sorted.moved.is_empty() {
        let env = Environment::from_process();
        let identity = RunIdentity::detect(&env, Some("keywrap-import"));
        let runtime = super::runtime()?;
        let session = runtime
            .block_on(Session::open(
                cli.session_inputs(&env, loaded.as_ref()),
                identity,
            ))
            .map_err(|err| {
                // A refusal for want of trust says so itself, in one line.
                if err.is::<crate::trust::NotTrusted>() {
                    err
                } else {
                    err.context("cannot reach Vault; no local file was changed")
                }
            })?;
        let written = runtime.block_on(import::vault::write_all(
            &session.client,
            &sorted.moved,
            args.overwrite,
        ));
        runtime.block_on(session.close());
        written?;
    }
    files::apply(&changes)?;
    eprintln!(
        "keywrap: imported {} secret(s) from {} into Vault and verified them; {} file(s) updated",
        sorted.moved.len(),
        env_path.display(),
        changes.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The plan on stdout: names, references, line numbers and files; never a value.
fn print_plan(
    env_path: &Path,
    to: &str,
    sorted: &Sorted,
    files: &[String],
    dry_run: bool,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let heading = if dry_run { "would import" } else { "import" };
    writeln!(out, "{heading} {} -> {to}", env_path.display())?;
    for m in &sorted.moved {
        writeln!(
            out,
            "  move {} (line {}) -> {} ({})",
            m.name,
            m.line,
            m.reference(),
            m.reason
        )?;
    }
    for k in &sorted.kept {
        writeln!(out, "  keep {} (line {}): {}", k.name, k.line, k.why)?;
    }
    if !files.is_empty() {
        writeln!(out, "files:")?;
        for line in files {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// Says whether the file is in git history, and so whether its keys must be rotated.
fn report_history(env_path: &Path, git: &GitState, sorted: &Sorted) {
    let file = env_path.display();
    if git.root.is_none() {
        eprintln!("keywrap: {file} is not in a git repository, so it was never committed there");
        return;
    }
    let Some(first) = git.commits.last() else {
        eprintln!("keywrap: {file} was never committed (no commit in any branch touches it)");
        return;
    };
    eprintln!(
        "keywrap: warning: {file} was committed: {} commit(s) touch it, the first {first}",
        git.commits.len()
    );
    if !sorted.moved.is_empty() {
        let example = sorted.moved[0].reference();
        eprintln!(
            "keywrap: warning: the keys in it are in git history: rotate them at their providers, then `keywrap rotate {example}` (and the others)"
        );
    }
}

/// Asks y/N on the terminal: stdin when it is one, else /dev/tty when stderr is a terminal
/// (so `keywrap import ... < file` still asks); refuses without a terminal.
fn confirm() -> Result<bool> {
    let question = "Write these secrets to Vault and rewrite the files above? [y/N] ";
    let answer = if std::io::stdin().is_terminal() {
        eprint!("{question}");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    } else if std::io::stderr().is_terminal() {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context("no terminal to ask on; pass --yes to import without asking")?;
        (&tty).write_all(question.as_bytes())?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        line
    } else {
        bail!("no terminal to confirm on; review the plan (--dry-run) and pass --yes; nothing was written to Vault or to disk");
    };
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
