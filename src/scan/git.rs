//! Scanning git objects: every blob in history once (`--git`), or the index (`--staged`).
//!
//! Blobs are listed with `git rev-list --objects --all`, attributed to the first commit
//! that introduced them (`git log --reverse --raw`), and read through one
//! `git cat-file --batch` process while worker threads scan them. A key that was committed
//! and removed later is in exactly one blob, scanned once however many commits hold it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};

use anyhow::{bail, Context, Result};
use ignore::gitignore::Gitignore;

use super::suppress::is_ignored;
use super::walk::Totals;
use super::{is_binary, Finding, Provenance, Scanner};

/// One blob to scan: its id, a path it has, and where it came from.
struct Blob {
    id: String,
    path: String,
    provenance: Option<Provenance>,
}

/// Runs git in `dir` and returns its standard output.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run git (is it installed?)")?;
    if !output.status.success() {
        bail!(
            "git {} failed in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// The top level of the work tree holding `dir`.
pub fn toplevel(dir: &Path) -> Result<PathBuf> {
    let out = git(dir, &["rev-parse", "--show-toplevel"])
        .with_context(|| format!("{} is not in a git repository", dir.display()))?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim_end()))
}

/// Every blob reachable from any ref, each once, with the commit that introduced it.
pub fn scan_history(
    scanner: &Scanner,
    repo: &Path,
    ignore: Option<&Gitignore>,
    max_file_size: u64,
    threads: usize,
) -> Result<(Vec<Finding>, Totals)> {
    let introduced = first_commits(repo)?;
    let listing = git(
        repo,
        &[
            "rev-list",
            "--objects",
            "--all",
            "--filter=object:type=blob",
        ],
    )?;
    let mut blobs = Vec::new();
    for line in String::from_utf8_lossy(&listing).lines() {
        let Some((id, path)) = line.split_once(' ') else {
            continue;
        };
        if ignore.is_some_and(|ignore| is_ignored(ignore, path)) {
            continue;
        }
        blobs.push(Blob {
            id: id.to_string(),
            path: path.to_string(),
            provenance: introduced.get(id).cloned(),
        });
    }
    scan_blobs(scanner, repo, blobs, max_file_size, threads)
}

/// What `git commit` would commit now: the index's version of each added or changed file.
pub fn scan_staged(
    scanner: &Scanner,
    repo: &Path,
    ignore: Option<&Gitignore>,
    max_file_size: u64,
    threads: usize,
) -> Result<(Vec<Finding>, Totals)> {
    let raw = git(
        repo,
        &[
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-abbrev",
            "--no-renames",
            "--diff-filter=ACMT",
        ],
    )?;
    // -z raw output: ":old-mode new-mode old-id new-id status" NUL path NUL, repeated.
    let mut fields = raw.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut blobs = Vec::new();
    while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
        let meta = String::from_utf8_lossy(meta);
        let Some(id) = meta.split(' ').nth(3) else {
            bail!("unexpected `git diff --raw` output: {meta}");
        };
        let path = String::from_utf8_lossy(path).into_owned();
        if ignore.is_some_and(|ignore| is_ignored(ignore, &path)) {
            continue;
        }
        blobs.push(Blob {
            id: id.to_string(),
            path,
            provenance: None,
        });
    }
    scan_blobs(scanner, repo, blobs, max_file_size, threads)
}

/// Blob id → the first commit (oldest first, all refs) whose diff adds it.
fn first_commits(repo: &Path) -> Result<HashMap<String, Provenance>> {
    let log = git(
        repo,
        &[
            "log",
            "--all",
            "--reverse",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--format=commit %H%x09%an <%ae>%x09%aI",
        ],
    )?;
    let mut introduced = HashMap::new();
    let mut current: Option<Provenance> = None;
    for line in String::from_utf8_lossy(&log).lines() {
        if let Some(header) = line.strip_prefix("commit ") {
            let mut parts = header.splitn(3, '\t');
            current = Some(Provenance {
                commit: parts.next().unwrap_or_default().to_string(),
                author: parts.next().unwrap_or_default().to_string(),
                date: parts.next().unwrap_or_default().to_string(),
            });
        } else if let (Some(meta), Some(commit)) = (line.strip_prefix(':'), &current) {
            let mut parts = meta.split_whitespace();
            if let (Some(id), Some(status)) = (parts.nth(3), parts.next()) {
                if !status.starts_with('D') {
                    introduced
                        .entry(id.to_string())
                        .or_insert_with(|| commit.clone());
                }
            }
        }
    }
    Ok(introduced)
}

/// Reads the blobs through `git cat-file --batch` and scans them on `threads` workers.
fn scan_blobs(
    scanner: &Scanner,
    repo: &Path,
    blobs: Vec<Blob>,
    max_file_size: u64,
    threads: usize,
) -> Result<(Vec<Finding>, Totals)> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run git cat-file")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let ids: Vec<String> = blobs.iter().map(|b| b.id.clone()).collect();

    let findings = Mutex::new(Vec::new());
    let mut totals = Totals::default();
    let (sender, receiver) = mpsc::sync_channel::<(usize, Vec<u8>)>(threads * 4);
    let receiver = Mutex::new(receiver);
    let read_result = std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            // A broken pipe here means cat-file died; the reader reports that.
            let mut writer = std::io::BufWriter::new(&mut stdin);
            for id in &ids {
                if writeln!(writer, "{id}").is_err() {
                    return;
                }
            }
            let _ = writer.flush();
            drop(writer);
            drop(stdin);
        });
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let next = receiver
                    .lock()
                    .expect("no panics while holding the lock")
                    .recv();
                let Ok((index, data)) = next else {
                    return;
                };
                let blob = &blobs[index];
                let found = scanner.scan(&blob.path, &data, blob.provenance.as_ref());
                if !found.is_empty() {
                    findings
                        .lock()
                        .expect("no panics while holding the lock")
                        .extend(found);
                }
            });
        }
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let mut header = String::new();
        for index in 0..blobs.len() {
            header.clear();
            reader
                .read_line(&mut header)
                .context("reading git cat-file output")?;
            let mut parts = header.split_whitespace();
            let (Some(_), Some(kind), Some(size)) = (parts.next(), parts.next(), parts.next())
            else {
                bail!("git cat-file: {}", header.trim());
            };
            let size: u64 = size.parse().context("git cat-file: bad object size")?;
            let mut data = Vec::with_capacity(size.min(max_file_size) as usize);
            (&mut reader).take(size).read_to_end(&mut data)?;
            let mut newline = [0u8; 1];
            reader.read_exact(&mut newline)?;
            if kind != "blob" || size > max_file_size || is_binary(&data) {
                continue;
            }
            totals.files += 1;
            totals.bytes += size;
            if sender.send((index, data)).is_err() {
                break;
            }
        }
        drop(sender);
        Ok(())
    });
    let status = child.wait().context("waiting for git cat-file")?;
    read_result?;
    if !status.success() {
        bail!("git cat-file failed in {}", repo.display());
    }
    let mut findings = findings
        .into_inner()
        .expect("no panics while holding the lock");
    findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok((findings, totals))
}
