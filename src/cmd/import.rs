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
    let mut sorted = import::sort(&env_path, &original, &matcher, &args.to, layout)?;
    let git = GitState::of(&env_path, &dir);
    leftovers(&env_path, &mut sorted, args, layout)?;

    // Every local change is computed (and checked) now, before Vault is touched.
    let mut changes = Vec::new();
    let mut trusted_config = None;
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
            let listed = listed_env_file(&target, &env_path, &sorted);
            let new = files::add_references(
                &target,
                text.as_deref(),
                &sorted.moved,
                listed.as_deref(),
                args.overwrite,
            )?;
            let verb = if before.is_some() {
                "add"
            } else {
                "create with"
            };
            let listing = listed
                .as_ref()
                .map(|file| format!(", {file} in env_files"))
                .unwrap_or_default();
            described.push(format!(
                "{}: {verb} {} reference(s) under [env]{listing}",
                target.display(),
                sorted.moved.iter().filter(|m| m.active).count()
            ));
            trusted_config = Some((target.clone(), before.clone(), new.clone()));
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
    if git.tracked {
        let relative = git
            .root
            .as_deref()
            .and_then(|root| env_path.strip_prefix(root).ok())
            .unwrap_or(&env_path);
        crate::log::warn(format_args!(
            "{} is tracked by git: the .gitignore line does not untrack it, and the next commit would still hold its new contents; run `git rm --cached {}` and commit (the file stays on disk)",
            env_path.display(),
            crate::trust::shell_quote(relative)
        ));
    }
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
        let runtime = crate::runtime::runtime()?;
        let session = runtime
            .block_on(Session::open(
                super::session_inputs(cli, &env, loaded.as_ref()),
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
    if let Some((path, Some(before), new)) = trusted_config {
        keep_trust(&path, &before, new.as_bytes());
    }
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

/// Warns about the secrets the import would leave in plaintext and moves them too with
/// `--move-leftovers`, or when the user says so on a terminal (never asked with `--yes`
/// or `--dry-run`).
fn leftovers(
    env_path: &Path,
    sorted: &mut Sorted,
    args: &ImportArgs,
    layout: Layout,
) -> Result<()> {
    if sorted.leftovers.is_empty() {
        return Ok(());
    }
    for leftover in &sorted.leftovers {
        crate::log::warn(format_args!(
            "{}: {}; the import leaves it in plaintext",
            env_path.display(),
            leftover.describe()
        ));
    }
    let count = sorted.leftovers.len();
    let take = args.move_leftovers
        || (!args.yes
            && !args.dry_run
            && ask(&format!("Move {count} of these to Vault as well? [y/N] "))? == Some(true));
    if take {
        sorted.move_leftovers(&args.to, layout);
    } else {
        eprintln!("keywrap: pass --move-leftovers to move them to Vault as well");
    }
    Ok(())
}

/// The env file as keywrap.toml's `env_files` should list it (relative to keywrap.toml) when
/// plain settings stay in it, so `keywrap exec` alone still gives them to the command; None
/// when nothing stays, or when the env file is outside keywrap.toml's directory (an entry
/// there would need trust; `--env-file` names it instead).
fn listed_env_file(config: &Path, env_path: &Path, sorted: &Sorted) -> Option<String> {
    if sorted.kept.is_empty() {
        return None;
    }
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let config_dir = real(
        config
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
    match real(env_path).strip_prefix(&config_dir) {
        Ok(relative) => Some(relative.to_string_lossy().into_owned()),
        Err(_) => {
            crate::log::warn(format_args!(
                "{} is outside {}'s directory: run `keywrap exec --env-file {}` for the plain settings left in it",
                env_path.display(),
                config.display(),
                env_path.display()
            ));
            None
        }
    }
}

/// A keywrap.toml the user trusted stays trusted after the import's own edit: the content
/// that was trusted is replaced by the content the import wrote. A file that was not
/// trusted stays untrusted.
fn keep_trust(path: &Path, before: &[u8], after: &[u8]) {
    let Ok(canonical) = std::fs::canonicalize(path) else {
        return;
    };
    let Ok(location) = crate::trust::store_location() else {
        return;
    };
    let Ok(mut store) = crate::trust::store::Store::open(location) else {
        return;
    };
    let was = store
        .lookup(&canonical)
        .is_some_and(|e| e.digest == crate::trust::store::digest(before));
    if !was {
        return;
    }
    let outcome = store
        .insert(&canonical, &crate::trust::store::digest(after))
        .and_then(|()| store.save());
    if let Err(err) = outcome {
        crate::log::warn(format_args!(
            "{} was trusted, but the edited file could not be recorded ({err:#}); run `keywrap trust {}`",
            path.display(),
            crate::trust::shell_quote(&canonical)
        ));
    }
}

/// Asks y/N before anything is written; refuses without a terminal.
fn confirm() -> Result<bool> {
    match ask("Write these secrets to Vault and rewrite the files above? [y/N] ")? {
        Some(answer) => Ok(answer),
        None => bail!("no terminal to confirm on; review the plan (--dry-run) and pass --yes; nothing was written to Vault or to disk"),
    }
}

/// Asks `question` on the terminal: stdin when it is one, else /dev/tty when stderr is a
/// terminal (so `keywrap import ... < file` still asks). None without a terminal.
fn ask(question: &str) -> Result<Option<bool>> {
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
        return Ok(None);
    };
    Ok(Some(matches!(
        answer.trim(),
        "y" | "Y" | "yes" | "YES" | "Yes"
    )))
}
