//! `keywrap hook install|uninstall`: a git pre-commit hook running `keywrap scan --staged`.
//!
//! An existing hook is kept: it is renamed to `pre-commit.keywrap-chained` and run first,
//! and `uninstall` puts it back. keywrap recognises its own hook by a marker line and
//! never removes or overwrites a hook without it (unless `install --force`).

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::cli::HookCommand;

/// The line that marks a hook as keywrap's.
const MARKER: &str = "# keywrap-managed-hook";
/// Where a hook that was there before keywrap's is kept.
const CHAINED: &str = "pre-commit.keywrap-chained";

pub fn run(command: &HookCommand) -> Result<ExitCode> {
    let dir = hooks_dir()?;
    match command {
        HookCommand::Install { force } => install(&dir, *force)?,
        HookCommand::Uninstall => uninstall(&dir)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The repository's hooks directory (honours `core.hooksPath`).
fn hooks_dir() -> Result<PathBuf> {
    let output = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .output()
        .context("cannot run git (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "not in a git repository: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim_end());
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(cwd.join(path))
}

/// The hook script: the chained hook first, then the scan of what is being committed.
fn script() -> Result<String> {
    let exe = std::env::current_exe().context("cannot find keywrap's own path")?;
    let quoted = exe.to_string_lossy().replace('\'', r"'\''");
    Ok(format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # Installed by `keywrap hook install`; `keywrap hook uninstall` removes it.\n\
         # Blocks commits that add API keys or other secrets (`keywrap scan --staged`).\n\
         chained=\"$(dirname \"$0\")/{CHAINED}\"\n\
         if [ -x \"$chained\" ]; then\n    \"$chained\" \"$@\" || exit $?\nfi\n\
         keywrap='{quoted}'\n\
         [ -x \"$keywrap\" ] || keywrap=keywrap\n\
         exec \"$keywrap\" scan --staged\n"
    ))
}

fn is_ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l == MARKER))
}

fn write_hook(path: &Path) -> Result<()> {
    std::fs::write(path, script()?).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn install(dir: &Path, force: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let hook = dir.join("pre-commit");
    let chained = dir.join(CHAINED);
    if !exists(&hook) {
        write_hook(&hook)?;
        eprintln!("keywrap: installed {}", hook.display());
    } else if is_ours(&hook) {
        write_hook(&hook)?;
        eprintln!("keywrap: updated {}", hook.display());
    } else if !exists(&chained) {
        std::fs::rename(&hook, &chained)
            .with_context(|| format!("cannot move {} aside", hook.display()))?;
        write_hook(&hook)?;
        eprintln!(
            "keywrap: installed {}; the hook that was there is kept as {} and runs first",
            hook.display(),
            chained.display()
        );
    } else if force {
        write_hook(&hook)?;
        eprintln!("keywrap: replaced {} (--force)", hook.display());
    } else {
        bail!(
            "{} is another tool's hook and {} is taken, so it cannot be kept; \
             `keywrap hook install --force` replaces it",
            hook.display(),
            chained.display()
        );
    }
    Ok(())
}

fn uninstall(dir: &Path) -> Result<()> {
    let hook = dir.join("pre-commit");
    let chained = dir.join(CHAINED);
    if !exists(&hook) {
        eprintln!("keywrap: no pre-commit hook in {}", dir.display());
        return Ok(());
    }
    if !is_ours(&hook) {
        bail!("{} is not keywrap's hook; left alone", hook.display());
    }
    std::fs::remove_file(&hook).with_context(|| format!("cannot remove {}", hook.display()))?;
    match std::fs::rename(&chained, &hook) {
        Ok(()) => eprintln!(
            "keywrap: removed keywrap's hook; restored the previous one to {}",
            hook.display()
        ),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            eprintln!("keywrap: removed {}", hook.display());
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot restore {}", chained.display()));
        }
    }
    Ok(())
}
