//! Scanning git objects: every blob in history once (`--git`), or the index (`--staged`).
//!
//! Blobs are listed with `git rev-list --objects --all`, attributed to the first commit
//! that introduced them (`git log --reverse --raw`), and read through one
//! `git cat-file --batch` process while worker threads scan them. A key that was committed
//! and removed later is in exactly one blob, scanned once however many commits hold it;
//! a key kept while the rest of its file changed is in several blobs, and reported once,
//! at the first commit that added it.
//!
//! `--staged` scans each staged file whole (a key may span lines, and line numbers are the
//! file's) but reports only findings on the lines the staged diff adds, so editing a file
//! that already holds a committed key does not report that key again.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Range;
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
    /// For `--staged`: the lines (1-based, end exclusive) the staged diff adds; findings
    /// elsewhere in the file were committed before. `None`: every line counts.
    added: Option<Vec<Range<usize>>>,
}

impl Blob {
    /// Whether a finding in this blob is on a line that counts.
    fn reports(&self, finding: &Finding) -> bool {
        self.added.as_ref().is_none_or(|added| {
            added
                .iter()
                .any(|lines| lines.start <= finding.end_line && finding.line < lines.end)
        })
    }
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
            added: None,
        });
    }
    let (findings, totals) = scan_blobs(scanner, repo, blobs, max_file_size, threads)?;
    Ok((first_of_each(findings, &introduced), totals))
}

/// Each key in each file as the earliest commit holding it has it. A key that stayed in a
/// file while other lines changed is in every version of the file, but it leaked once.
fn first_of_each(
    mut findings: Vec<Finding>,
    introduced: &HashMap<String, Provenance>,
) -> Vec<Finding> {
    let order: HashMap<&str, usize> = introduced
        .values()
        .map(|p| (p.commit.as_str(), p.sequence))
        .collect();
    let sequence = |f: &Finding| {
        f.commit
            .as_deref()
            .and_then(|c| order.get(c).copied())
            .unwrap_or(usize::MAX)
    };
    let mut first: HashMap<String, usize> = HashMap::new();
    for finding in &findings {
        let seen = first
            .entry(finding.fingerprint.clone())
            .or_insert(usize::MAX);
        *seen = (*seen).min(sequence(finding));
    }
    findings.retain(|f| first.get(&f.fingerprint) == Some(&sequence(f)));
    findings
}

/// What `git commit` would commit now: the index's version of each added or changed file,
/// with findings only on the lines the commit adds.
pub fn scan_staged(
    scanner: &Scanner,
    repo: &Path,
    ignore: Option<&Gitignore>,
    max_file_size: u64,
    threads: usize,
) -> Result<(Vec<Finding>, Totals)> {
    // Both listings come from the same diff (same options), so they name the same files
    // in the same order: the raw one gives each file's path and staged blob, the patch
    // (without context lines) the lines each one adds.
    const DIFF: [&str; 6] = [
        "diff",
        "--cached",
        "-M",
        "--diff-filter=ACMRT",
        "--no-ext-diff",
        "--no-color",
    ];
    let raw = git(repo, &[&DIFF[..], &["--raw", "-z", "--no-abbrev"]].concat())?;
    let patch = git(repo, &[&DIFF[..], &["-U0", "--no-textconv"]].concat())?;
    let files = parse_raw(&raw)?;
    let added = added_lines(&patch);
    if added.len() != files.len() {
        bail!(
            "`git diff --cached` listed {} file(s) but showed changes for {}",
            files.len(),
            added.len()
        );
    }
    let blobs = files
        .into_iter()
        .zip(added)
        .filter(|((_, path), _)| !ignore.is_some_and(|ignore| is_ignored(ignore, path)))
        .map(|((id, path), added)| Blob {
            id,
            path,
            provenance: None,
            added: Some(added),
        })
        .collect();
    scan_blobs(scanner, repo, blobs, max_file_size, threads)
}

/// `git diff --raw -z` output: each file's new blob id and path.
fn parse_raw(raw: &[u8]) -> Result<Vec<(String, String)>> {
    // ":old-mode new-mode old-id new-id status" NUL path NUL, with a second path
    // (the new one) after renames and copies.
    let mut fields = raw.split(|&b| b == 0).filter(|f| !f.is_empty());
    let mut files = Vec::new();
    while let Some(meta) = fields.next() {
        let meta = String::from_utf8_lossy(meta);
        let parts: Vec<&str> = meta.split(' ').collect();
        let (Some(id), Some(status)) = (parts.get(3), parts.get(4)) else {
            bail!("unexpected `git diff --raw` output: {meta}");
        };
        let paths = if status.starts_with(['R', 'C']) { 2 } else { 1 };
        let Some(path) = fields.nth(paths - 1) else {
            bail!("unexpected `git diff --raw` output: no path after {meta}");
        };
        files.push((id.to_string(), String::from_utf8_lossy(path).into_owned()));
    }
    Ok(files)
}

/// For each file of a `git diff -U0` patch, in order, the new-side line ranges its hunks
/// add. Every file has a `diff --git` line, and with no context lines each hunk's new side
/// is exactly the added lines; content lines start with `+`, `-` or `\`, so neither header
/// is ever mistaken for content.
fn added_lines(patch: &[u8]) -> Vec<Vec<Range<usize>>> {
    let mut files: Vec<Vec<Range<usize>>> = Vec::new();
    for line in patch.split(|&b| b == b'\n') {
        if line.starts_with(b"diff --git ") {
            files.push(Vec::new());
        } else if let (Some(hunk), Some(file)) = (line.strip_prefix(b"@@ "), files.last_mut()) {
            if let Some(lines) = hunk_new_side(hunk) {
                file.push(lines);
            }
        }
    }
    files
}

/// The new side of a hunk header's "-a,b +c,d @@": lines c to c+d (d defaults to 1).
fn hunk_new_side(hunk: &[u8]) -> Option<Range<usize>> {
    let text = std::str::from_utf8(hunk).ok()?;
    let new = text.split(' ').find_map(|part| part.strip_prefix('+'))?;
    let (start, count) = match new.split_once(',') {
        Some((start, count)) => (start.parse().ok()?, count.parse().ok()?),
        None => (new.parse().ok()?, 1),
    };
    (count > 0).then_some(start..start + count)
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
    for (sequence, line) in String::from_utf8_lossy(&log).lines().enumerate() {
        if let Some(header) = line.strip_prefix("commit ") {
            let mut parts = header.splitn(3, '\t');
            current = Some(Provenance {
                commit: parts.next().unwrap_or_default().to_string(),
                author: parts.next().unwrap_or_default().to_string(),
                date: parts.next().unwrap_or_default().to_string(),
                sequence,
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
                let mut found = scanner.scan(&blob.path, &data, blob.provenance.as_ref());
                found.retain(|finding| blob.reports(finding));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_per_file_from_a_zero_context_patch() {
        let patch = b"diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n\
            @@ -2,0 +3,2 @@ def f():\n+++ b/not-a-header\n+x\n@@ -9 +10,0 @@\n-gone\n\
            diff --git a/b.bin b/b.bin\nBinary files a/b.bin and b/b.bin differ\n\
            diff --git a/new.py b/new.py\nnew file mode 100644\n@@ -0,0 +1 @@\n+k\n";
        let lines: Vec<Vec<(usize, usize)>> = added_lines(patch)
            .iter()
            .map(|file| file.iter().map(|r| (r.start, r.end)).collect())
            .collect();
        assert_eq!(lines, [vec![(3, 5)], vec![], vec![(1, 2)]]);
    }

    #[test]
    fn raw_records_take_the_new_path_of_a_rename() {
        let zero = "0".repeat(40);
        let raw = format!(
            ":100644 100644 {zero} {} M\0a b.py\0:100644 100644 {zero} {} R087\0old.py\0new.py\0",
            "1".repeat(40),
            "2".repeat(40)
        );
        let files = parse_raw(raw.as_bytes()).unwrap();
        assert_eq!(
            files,
            [
                ("1".repeat(40), "a b.py".to_string()),
                ("2".repeat(40), "new.py".to_string())
            ]
        );
    }
}
