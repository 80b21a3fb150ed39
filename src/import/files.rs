//! The local side of an import: the new texts of the env file, keywrap.toml and .gitignore,
//! and writing them so that nothing is lost.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::{Moved, Output};

/// The env file with each moved entry's lines replaced by one line; every other byte kept.
pub fn rewrite_env(text: &str, moved: &[Moved], output: Output) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len());
    let mut number = 1;
    while number <= lines.len() {
        let Some(entry) = moved.iter().find(|m| m.line == number) else {
            out.push_str(lines[number - 1]);
            number += 1;
            continue;
        };
        let first = lines[number - 1];
        let last = lines[entry.end_line.min(lines.len()) - 1];
        let ending = if last.ends_with("\r\n") {
            "\r\n"
        } else if last.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        let indent = &first[..first.len() - first.trim_start().len()];
        let reference = entry.reference();
        if !entry.active {
            // A key in a comment: the comment says where it went, in both layouts.
            out.push_str(&format!(
                "{indent}# {} (commented out) moved to Vault: {reference}{ending}",
                entry.name
            ));
            number = entry.end_line.max(number) + 1;
            continue;
        }
        match output {
            Output::Config => out.push_str(&format!(
                "{indent}# {} moved to Vault: {reference} (see keywrap.toml){ending}",
                entry.name
            )),
            Output::EnvRefs => {
                let export = if first.trim_start().starts_with("export ") {
                    "export "
                } else {
                    ""
                };
                out.push_str(&format!(
                    "{indent}{export}{}=vault://{reference}{ending}",
                    entry.name
                ));
            }
        }
        number = entry.end_line.max(number) + 1;
    }
    out
}

/// keywrap.toml with `NAME = "REF"` under `[env]`, comments and layout kept, and `env_file`
/// (relative to keywrap.toml) in `env_files` unless listed, so that `exec` alone still gives
/// the command the plain settings left in it. An entry that already names another reference
/// is an error unless `overwrite`.
pub fn add_references(
    path: &Path,
    existing: Option<&str>,
    moved: &[Moved],
    env_file: Option<&str>,
    overwrite: bool,
) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = existing
        .unwrap_or("")
        .parse()
        .with_context(|| format!("cannot parse {}", path.display()))?;
    if !doc.contains_key("env") {
        doc.insert("env", toml_edit::Item::Table(toml_edit::Table::new()));
    }
    let env = doc["env"]
        .as_table_like_mut()
        .ok_or_else(|| anyhow!("{}: [env] is not a table", path.display()))?;
    let mut clashes = Vec::new();
    for entry in moved.iter().filter(|m| m.active) {
        let reference = entry.reference();
        if let Some(current) = env.get(&entry.name) {
            let current_ref = current
                .as_str()
                .or_else(|| current.get("ref").and_then(|r| r.as_str()));
            if current_ref != Some(reference.as_str()) && !overwrite {
                clashes.push(entry.name.clone());
                continue;
            }
        }
        env.insert(&entry.name, toml_edit::value(reference));
    }
    if !clashes.is_empty() {
        bail!(
            "{} already binds {} to another reference; pass --overwrite to replace, or edit it first",
            path.display(),
            clashes.join(", ")
        );
    }
    if let Some(env_file) = env_file {
        add_env_file(&mut doc, path, env_file)?;
    }
    let text = doc.to_string();
    // The result must still be a keywrap.toml keywrap can load.
    crate::config::LoadedConfig::parse(path, text.clone())?;
    Ok(text)
}

/// `env_files = [..., "env_file"]` at the top of the document, unless listed already. A
/// comment heading the file stays above it.
fn add_env_file(doc: &mut toml_edit::DocumentMut, path: &Path, env_file: &str) -> Result<()> {
    let normal = |p: &str| p.trim_start_matches("./").to_string();
    if !doc.contains_key("env_files") {
        let heading = first_table_heading(doc);
        doc.insert("env_files", toml_edit::value(toml_edit::Array::new()));
        if let (Some(heading), Some(mut key)) = (heading, doc.key_mut("env_files")) {
            key.leaf_decor_mut().set_prefix(heading);
        }
    }
    let list = doc["env_files"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("{}: env_files is not a list", path.display()))?;
    if !list
        .iter()
        .any(|v| v.as_str().map(normal) == Some(normal(env_file)))
    {
        list.push(env_file);
    }
    Ok(())
}

/// Takes the comment above the first table when the document has no top-level key (that
/// comment heads the file), leaving a blank line in its place.
fn first_table_heading(doc: &mut toml_edit::DocumentMut) -> Option<String> {
    let root = doc.as_table_mut();
    if root.iter().any(|(_, item)| item.is_value()) {
        return None;
    }
    let table = root
        .iter_mut()
        .filter_map(|(_, item)| item.as_table_mut())
        .min_by_key(|table| table.position().unwrap_or(isize::MAX))?;
    let heading = table
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    table.decor_mut().set_prefix("\n");
    Some(heading).filter(|h| !h.trim().is_empty())
}

/// `.gitignore` text with `pattern` appended on its own line.
pub fn add_ignore(existing: Option<&str>, pattern: &str) -> String {
    let mut text = existing.unwrap_or("").to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(pattern);
    text.push('\n');
    text
}

/// One file to rewrite: its new contents and the original to restore (None: it is new).
pub struct Change {
    pub path: PathBuf,
    pub original: Option<Vec<u8>>,
    pub new: Vec<u8>,
}

impl Change {
    /// Reads the current contents of `path` (None when it does not exist).
    pub fn read_original(path: &Path) -> Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Applies the changes in order; if one fails, puts back every file already changed and
/// says which were restored.
pub fn apply(changes: &[Change]) -> Result<()> {
    for (index, change) in changes.iter().enumerate() {
        if let Err(err) = replace(&change.path, &change.new) {
            let mut restored = Vec::new();
            let mut lost = Vec::new();
            for done in changes[..index].iter().rev() {
                let outcome = match &done.original {
                    Some(bytes) => replace(&done.path, bytes),
                    None => std::fs::remove_file(&done.path).map_err(anyhow::Error::from),
                };
                match outcome {
                    Ok(()) => restored.push(done.path.display().to_string()),
                    Err(_) => lost.push(done.path.display().to_string()),
                }
            }
            let mut message = format!("cannot rewrite {}", change.path.display());
            if restored.is_empty() && lost.is_empty() {
                message.push_str("; no local file was changed");
            }
            if !restored.is_empty() {
                message.push_str(&format!("; restored the original {}", restored.join(", ")));
            }
            if !lost.is_empty() {
                message.push_str(&format!(
                    "; COULD NOT restore {} (its original contents were not written back)",
                    lost.join(", ")
                ));
            }
            message.push_str("; the values are in Vault, so rerunning the import is safe");
            return Err(err.context(message));
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so
/// `path` holds either the old or the new contents, never a mix. The temporary file is
/// created 0600 (no other user can open it while it is written) and given the original's
/// permissions (a new file: 0666 less the umask) only once its contents are complete.
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.keywrap-import-{}", std::process::id()));
    let permissions = match std::fs::metadata(path) {
        Ok(metadata) => metadata.permissions(),
        Err(_) => std::fs::Permissions::from_mode(0o666 & !umask()),
    };
    let written = (|| -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        file.set_permissions(permissions)?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The process's umask, read from /proc (setting it to read it would race other threads);
/// the usual 022 where /proc does not say.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::classify::Reason;
    use crate::secret::SecretValue;

    fn moved(name: &str, line: usize, end_line: usize) -> Moved {
        Moved {
            name: name.into(),
            line,
            end_line,
            value: SecretValue::new("x".into()),
            reason: Reason::Name,
            path: "secret/app".into(),
            field: name.into(),
            active: true,
        }
    }

    #[test]
    fn env_rewrite_keeps_other_lines_byte_for_byte() {
        let text = "# top\nA=1  # note\nexport TOKEN=\"multi\nline\"\r\nB='x'";
        let out = rewrite_env(text, &[moved("TOKEN", 3, 4)], Output::EnvRefs);
        assert_eq!(
            out,
            "# top\nA=1  # note\nexport TOKEN=vault://secret/app#TOKEN\r\nB='x'"
        );
        let out = rewrite_env(text, &[moved("TOKEN", 3, 4)], Output::Config);
        assert!(out.contains("# TOKEN moved to Vault: secret/app#TOKEN (see keywrap.toml)\r\n"));
    }

    #[test]
    fn references_go_under_env_keeping_comments() {
        let path = Path::new("keywrap.toml");
        let text = "# settings\n[vault]\naddress = \"http://127.0.0.1:8200\" # dev\n";
        let out = add_references(path, Some(text), &[moved("TOKEN", 1, 1)], None, false).unwrap();
        assert!(out.starts_with(text), "{out}");
        assert!(out.contains("[env]\nTOKEN = \"secret/app#TOKEN\""), "{out}");
        let clash = "[env]\nTOKEN = \"secret/other#t\"\n";
        let err =
            add_references(path, Some(clash), &[moved("TOKEN", 1, 1)], None, false).unwrap_err();
        assert!(err.to_string().contains("TOKEN"));
        assert!(add_references(path, Some(clash), &[moved("TOKEN", 1, 1)], None, true).is_ok());
    }

    #[test]
    fn the_env_file_is_listed_once_in_env_files() {
        let path = Path::new("keywrap.toml");
        let out = add_references(
            path,
            Some("[env]\nA = \"s/a#b\"\n"),
            &[moved("TOKEN", 1, 1)],
            Some(".env"),
            false,
        )
        .unwrap();
        assert!(
            out.starts_with("env_files = [\".env\"]\n\n[env]\n"),
            "{out}"
        );
        let headed =
            add_references(path, Some("# my config\n[env]\n"), &[], Some(".env"), false).unwrap();
        assert_eq!(headed, "# my config\nenv_files = [\".env\"]\n\n[env]\n");
        let created =
            add_references(path, None, &[moved("TOKEN", 1, 1)], Some(".env"), false).unwrap();
        assert_eq!(
            created,
            "env_files = [\".env\"]\n\n[env]\nTOKEN = \"secret/app#TOKEN\"\n"
        );
        let again = add_references(
            path,
            Some(&out),
            &[moved("TOKEN", 1, 1)],
            Some("./.env"),
            false,
        )
        .unwrap();
        assert_eq!(again, out);
        let other = add_references(path, Some(&out), &[], Some("conf/app.env"), false).unwrap();
        assert!(
            other.starts_with("env_files = [\".env\", \"conf/app.env\"]\n"),
            "{other}"
        );
        let mut commented = moved("OLD", 2, 2);
        commented.active = false;
        let out = add_references(path, None, &[commented], None, false).unwrap();
        assert!(
            !out.contains("OLD"),
            "a commented-out key gets no reference: {out}"
        );
    }

    #[test]
    fn ignore_lines_are_appended() {
        assert_eq!(add_ignore(None, "/.env"), "/.env\n");
        assert_eq!(add_ignore(Some("target"), "/.env"), "target\n/.env\n");
    }
}
