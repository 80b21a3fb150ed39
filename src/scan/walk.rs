//! Scanning files and directories: a parallel walk that honours `.gitignore` and
//! `.keywrapignore`, and skips `.git`, binary files and files over the size limit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Result};
use ignore::{WalkBuilder, WalkState};

use super::suppress::IGNORE_FILE;
use super::{is_binary, Finding, Scanner};

/// What the walk looked at, for the summary and the benchmark.
#[derive(Debug, Default)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    /// Files that could not be read (each already warned about).
    pub errors: u64,
}

/// Scans every file under `paths` with `threads` threads.
pub fn scan_paths(
    scanner: &Scanner,
    paths: &[PathBuf],
    max_file_size: u64,
    threads: usize,
) -> Result<(Vec<Finding>, Totals)> {
    for path in paths {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                bail!("{}: no such file or directory", path.display())
            }
            Err(err) => bail!("{}: {err}", path.display()),
        };
        // A file named on the command line is skipped like any other, but not silently.
        if metadata.is_file() && metadata.len() > max_file_size {
            crate::log::warn(format_args!(
                "{} skipped: {:.1} MiB is over the {} MiB limit (--max-file-size)",
                path.display(),
                metadata.len() as f64 / f64::from(1 << 20),
                max_file_size >> 20
            ));
        }
    }
    let mut builder = WalkBuilder::new(&paths[0]);
    for path in &paths[1..] {
        builder.add(path);
    }
    builder
        .hidden(false)
        .require_git(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .threads(threads)
        .filter_entry(|entry| entry.file_name() != ".git");

    let findings = Mutex::new(Vec::new());
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let (findings_ref, files_ref, bytes_ref, errors_ref) = (&findings, &files, &bytes, &errors);
    builder.build_parallel().run(|| {
        let mut buffer = Vec::new();
        Box::new(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    crate::log::warn(format_args!("{err}"));
                    errors_ref.fetch_add(1, Ordering::Relaxed);
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.path();
            buffer.clear();
            match read_text(path, max_file_size, &mut buffer) {
                Ok(true) => {}
                Ok(false) => return WalkState::Continue,
                Err(err) => {
                    crate::log::warn(format_args!("cannot read {}: {err}", path.display()));
                    errors_ref.fetch_add(1, Ordering::Relaxed);
                    return WalkState::Continue;
                }
            }
            if buffer.len() as u64 > max_file_size || is_binary(&buffer) {
                return WalkState::Continue;
            }
            files_ref.fetch_add(1, Ordering::Relaxed);
            bytes_ref.fetch_add(buffer.len() as u64, Ordering::Relaxed);
            let found = scanner.scan(&display_path(path), &buffer, None);
            if !found.is_empty() {
                findings_ref
                    .lock()
                    .expect("no panics while holding the lock")
                    .extend(found);
            }
            WalkState::Continue
        })
    });
    let mut findings = findings
        .into_inner()
        .expect("no panics while holding the lock");
    findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok((
        findings,
        Totals {
            files: files.into_inner(),
            bytes: bytes.into_inner(),
            errors: errors.into_inner(),
        },
    ))
}

/// The path as the user would write it: without a leading `./`.
fn display_path(path: &Path) -> String {
    let path = path.strip_prefix(".").unwrap_or(path);
    path.to_string_lossy().into_owned()
}

/// Reads `path` into `buffer` unless it is larger than `max_file_size` or binary: `false`
/// then, after reading at most the first 64 KiB of a large file (a tree's images, archives
/// and build output are not read whole only to be skipped).
///
/// Four system calls for a source file of up to 64 KiB (open, a read of the whole file
/// into a buffer kept from file to file, the read that sees its end, close): `std::fs::read`
/// makes seven, and the size check of `ignore`'s walk one more. On a tree of small files
/// they are a third of the scan's time.
fn read_text(path: &Path, max_file_size: u64, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    let first = (SMALL_FILE as u64).min(max_file_size.saturating_add(1));
    buffer.reserve(first as usize + 1);
    (&mut file).take(first).read_to_end(buffer)?;
    if (buffer.len() as u64) < first {
        return Ok(true);
    }
    // A large file: its size decides, then whether it is text.
    let size = file.metadata()?.len();
    if size > max_file_size || is_binary(buffer) {
        return Ok(false);
    }
    buffer.reserve(
        usize::try_from(size)
            .unwrap_or(usize::MAX)
            .saturating_sub(buffer.len())
            + 1,
    );
    let limit = max_file_size
        .saturating_add(1)
        .saturating_sub(buffer.len() as u64);
    file.take(limit).read_to_end(buffer)?;
    Ok(true)
}

/// Files up to this size are read whole in one read, before any check.
const SMALL_FILE: usize = 64 << 10;
