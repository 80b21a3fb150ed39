//! What git knows about the env file: whether it is ignored, and whether it was ever
//! committed (then its keys are in history and must be rotated).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The git side of one env file.
#[derive(Debug)]
pub struct GitState {
    /// The work tree holding the file; None outside a repository (or without git).
    pub root: Option<PathBuf>,
    pub ignored: bool,
    /// The file is in git's index: ignoring it does not stop git from committing it.
    pub tracked: bool,
    /// Commits that touched the file, newest first: `hash date author` lines.
    pub commits: Vec<String>,
}

fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
}

impl GitState {
    pub fn of(file: &Path, dir: &Path) -> GitState {
        let root = git(dir, &["rev-parse", "--show-toplevel"])
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let Some(root) = root else {
            return GitState {
                root: None,
                ignored: plain_dir_ignores(file, dir),
                tracked: false,
                commits: Vec::new(),
            };
        };
        let file_arg = file.to_string_lossy().into_owned();
        let ignored =
            git(dir, &["check-ignore", "-q", "--", &file_arg]).is_some_and(|o| o.status.success());
        let tracked = git(dir, &["ls-files", "--error-unmatch", "--", &file_arg])
            .is_some_and(|o| o.status.success());
        let commits = git(
            &root,
            &[
                "log",
                "--all",
                "--format=%h %ad %an",
                "--date=short",
                "--",
                &file_arg,
            ],
        )
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
        GitState {
            root: Some(root),
            ignored,
            tracked,
            commits,
        }
    }

    /// The .gitignore to add the file to, and the line that ignores exactly it.
    pub fn ignore_entry(&self, file: &Path, dir: &Path) -> (PathBuf, String) {
        let base = self.root.as_deref().unwrap_or(dir);
        let root = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
        let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let relative = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        (root.join(".gitignore"), format!("/{relative}"))
    }
}

/// Outside a repository there is no `git check-ignore`: look for the line we would add.
fn plain_dir_ignores(file: &Path, dir: &Path) -> bool {
    let Some(name) = file.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return false;
    };
    std::fs::read_to_string(dir.join(".gitignore")).is_ok_and(|text| {
        text.lines()
            .map(str::trim)
            .any(|line| line == name || line == format!("/{name}"))
    })
}
