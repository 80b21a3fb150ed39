//! The trust store: the keywrap.toml files the user accepted, each by canonical path with the
//! SHA-256 of the content accepted. One small text file, `sha256sum` style
//! (`<64 hex digits>  <path>` per line), under the user's config directory. It holds no
//! secret, and it is the one file keywrap writes on its own.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The store's file name, under `$XDG_CONFIG_HOME/keywrap/` (else `~/.config/keywrap/`).
pub const FILE_NAME: &str = "trusted";

const HEADER: &str = "# keywrap trust store: the keywrap.toml files you accepted, as SHA-256 of the content and path.\n# No secrets. Change it with `keywrap trust PATH` and `keywrap untrust PATH`.\n";

/// One accepted file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lower-case hex SHA-256 of the content that was accepted.
    pub digest: String,
    /// The canonical path of the file.
    pub path: PathBuf,
}

/// The store as read from disk.
#[derive(Debug)]
pub struct Store {
    file: PathBuf,
    entries: Vec<Entry>,
}

/// Where the store lives: `$XDG_CONFIG_HOME/keywrap/trusted` when that is an absolute path
/// (as the XDG spec requires), else `$HOME/.config/keywrap/trusted`.
pub fn location(xdg_config_home: Option<&OsStr>, home: Option<&OsStr>) -> Result<PathBuf> {
    let base = match (xdg_config_home.map(Path::new), home.map(Path::new)) {
        (Some(xdg), _) if xdg.is_absolute() => xdg.to_path_buf(),
        (_, Some(home)) if home.is_absolute() => home.join(".config"),
        _ => bail!(
            "cannot find your config directory for the trust store: set HOME or XDG_CONFIG_HOME"
        ),
    };
    Ok(base.join("keywrap").join(FILE_NAME))
}

/// The hex SHA-256 of a file's content, as the store records it.
pub fn digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Reads the store at `file`; a missing file is an empty store. A store that another
    /// user owns or may write is ignored (with a warning): it could vouch for anything.
    pub fn open(file: PathBuf) -> Result<Store> {
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", file.display())),
        };
        let mut store = Store {
            file,
            entries: Vec::new(),
        };
        if bytes.is_empty() {
            return Ok(store);
        }
        if let Some(problem) = unsafe_owner_or_mode(&store.file) {
            crate::log::warn(format_args!(
                "ignoring the trust store {}: {problem}; remove it and trust your files again",
                store.file.display()
            ));
            return Ok(store);
        }
        for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            match parse_line(line) {
                Some(entry) => store.entries.push(entry),
                None => crate::log::warn(format_args!(
                    "{}:{}: not a trust entry (expected HEX-SHA256, two spaces, a path); skipped",
                    store.file.display(),
                    number + 1
                )),
            }
        }
        Ok(store)
    }

    /// The store's file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for a canonical path.
    pub fn lookup(&self, path: &Path) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// Records `path` with `digest`, replacing what was recorded for it.
    pub fn insert(&mut self, path: &Path, digest: &str) -> Result<()> {
        if path.as_os_str().as_bytes().contains(&b'\n') {
            bail!("cannot trust a file whose path contains a line break");
        }
        self.remove(path);
        self.entries.push(Entry {
            digest: digest.to_string(),
            path: path.to_path_buf(),
        });
        Ok(())
    }

    /// Forgets `path`; false when it was not recorded.
    pub fn remove(&mut self, path: &Path) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.path != path);
        self.entries.len() != before
    }

    /// Writes the store: its directory is created 0700 and the file is written 0600 from
    /// the start (a new file, renamed over the old one), so no other user can read or
    /// change it at any moment.
    pub fn save(&self) -> Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut text = HEADER.as_bytes().to_vec();
        for entry in &self.entries {
            text.extend_from_slice(entry.digest.as_bytes());
            text.extend_from_slice(b"  ");
            text.extend_from_slice(entry.path.as_os_str().as_bytes());
            text.push(b'\n');
        }
        let temp = dir.join(format!(
            ".{FILE_NAME}.{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let written = (|| -> Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)
                .with_context(|| format!("cannot create {}", temp.display()))?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.file).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    temp.display(),
                    self.file.display()
                )
            })
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let (digest, rest) = line.split_at_checked(64)?;
    let path = rest.strip_prefix(b"  ")?;
    let digest = std::str::from_utf8(digest).ok()?;
    if !digest.bytes().all(|b| b.is_ascii_hexdigit()) || path.is_empty() {
        return None;
    }
    Some(Entry {
        digest: digest.to_ascii_lowercase(),
        path: PathBuf::from(OsStr::from_bytes(path)),
    })
}

/// Why the store must not be believed: another owner, or writable by group or others.
fn unsafe_owner_or_mode(file: &Path) -> Option<String> {
    let metadata = std::fs::metadata(file).ok()?;
    if metadata.uid() != nix::unistd::geteuid().as_raw() {
        return Some(format!("it belongs to uid {}, not to you", metadata.uid()));
    }
    if metadata.mode() & 0o022 != 0 {
        return Some(format!(
            "others may write it (mode {:o})",
            metadata.mode() & 0o777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_location_follows_xdg_then_home() {
        let at = |xdg: Option<&str>, home: Option<&str>| {
            location(xdg.map(OsStr::new), home.map(OsStr::new)).map(|p| p.display().to_string())
        };
        assert_eq!(at(Some("/x"), Some("/h")).unwrap(), "/x/keywrap/trusted");
        assert_eq!(
            at(Some("relative"), Some("/h")).unwrap(),
            "/h/.config/keywrap/trusted"
        );
        assert_eq!(at(None, Some("/h")).unwrap(), "/h/.config/keywrap/trusted");
        assert!(at(None, None).is_err());
    }

    #[test]
    fn entries_round_trip_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config/keywrap/trusted");
        let mut store = Store::open(file.clone()).unwrap();
        assert!(store.entries().is_empty());
        let path = Path::new("/repo/with  two spaces/keywrap.toml");
        store.insert(path, &digest(b"a")).unwrap();
        store
            .insert(Path::new("/other/keywrap.toml"), &digest(b"b"))
            .unwrap();
        store.insert(path, &digest(b"c")).unwrap();
        store.save().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);

        let mut again = Store::open(file.clone()).unwrap();
        assert_eq!(again.entries().len(), 2);
        assert_eq!(again.lookup(path).unwrap().digest, digest(b"c"));
        assert!(again.remove(path));
        assert!(!again.remove(path));
        again.save().unwrap();
        assert_eq!(Store::open(file).unwrap().entries().len(), 1);
        assert!(store.insert(Path::new("/a\nb"), "00").is_err());
    }

    #[test]
    fn a_store_others_may_write_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("trusted");
        let mut store = Store::open(file.clone()).unwrap();
        store
            .insert(Path::new("/repo/keywrap.toml"), &digest(b"a"))
            .unwrap();
        store.save().unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(Store::open(file).unwrap().entries().is_empty());
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
