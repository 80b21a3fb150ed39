//! Trust in a keywrap.toml. The file is found by walking up from the current directory, so
//! it comes with whatever repository was just cloned. Until the user trusts it, keywrap
//! still takes its references and harmless settings, but not the ones that could send the
//! Vault token, a login credential or a local file somewhere else (the Vault address, TLS
//! files, namespace, `[auth]` files and variables, env files outside the file's directory,
//! proxy upstreams). Those are checked where their value would be used
//! ([`TrustGate::require`], [`Gated::get`]); a value given by a flag or an environment
//! variable never needs trust.
//!
//! A file is trusted when `keywrap trust` recorded its canonical path with the SHA-256 of
//! this content ([`store`]), when `KEYWRAP_TRUST` names it (CI), or when the user says yes on
//! a terminal. A changed file is untrusted again.

pub mod store;

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Names keywrap.toml files trusted for this run (colon-separated paths, relative to the
/// current directory): how a CI job trusts its repository's own file.
pub const TRUST_VARIABLE: &str = "KEYWRAP_TRUST";

/// What a decision about a file needs from the process, captured when the file is located.
#[derive(Debug, Clone)]
pub struct TrustInputs {
    /// The trust store's file, or why there is none.
    pub store: Result<PathBuf, String>,
    pub trust_variable: Option<OsString>,
    pub cwd: PathBuf,
    /// stdin and stderr are terminals: a question can be asked and answered.
    pub interactive: bool,
}

impl TrustInputs {
    pub fn from_process() -> Self {
        TrustInputs {
            store: store_location().map_err(|e| e.to_string()),
            trust_variable: std::env::var_os(TRUST_VARIABLE).filter(|v| !v.is_empty()),
            cwd: std::env::current_dir().unwrap_or_default(),
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }
}

/// The trust store of this process's user (`XDG_CONFIG_HOME`, else `HOME`).
pub fn store_location() -> anyhow::Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    store::location(var("XDG_CONFIG_HOME").as_deref(), var("HOME").as_deref())
}

/// Why a file is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `keywrap trust` recorded this content.
    Recorded,
    /// `KEYWRAP_TRUST` names it.
    Variable,
    /// The user said yes on the terminal (and it was recorded).
    Accepted,
    /// The caller vouched for it (a file keywrap wrote itself, tests).
    Assumed,
}

/// Why a file is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never trusted.
    New,
    /// Trusted once, with other content.
    Changed,
    /// The user said no on the terminal.
    Declined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Undecided,
    Trusted(Basis),
    Untrusted(Refusal),
}

/// A setting that was refused: which, in which file, and how to accept it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.message())]
pub struct NotTrusted {
    pub setting: String,
    pub file: PathBuf,
    pub refusal: Refusal,
    /// The flag or variable that gives the same setting without trust.
    pub instead: String,
    /// `KEYWRAP_TRUST` is set but names other files.
    pub variable_elsewhere: bool,
}

impl NotTrusted {
    fn message(&self) -> String {
        let why = match self.refusal {
            Refusal::New => "the file is not trusted (it came with the code, and this setting could send your Vault token or files elsewhere)",
            Refusal::Changed => "the file changed since you trusted it",
            Refusal::Declined => "you did not trust the file",
        };
        let variable = if self.variable_elsewhere {
            format!(" ({TRUST_VARIABLE} names other files)")
        } else {
            String::new()
        };
        let instead = if self.instead.is_empty() {
            String::new()
        } else {
            format!(", or give it with {} instead", self.instead)
        };
        format!(
            "{} in {} is not used: {why}{variable}; review the file, then run `keywrap trust {}`{instead}",
            self.setting,
            display_path(&self.file),
            shell_quote(&self.file)
        )
    }
}

/// The trust decision for one loaded keywrap.toml, made once, when a setting first needs it.
#[derive(Debug)]
pub struct TrustGate {
    path: PathBuf,
    digest: String,
    /// The file's settings that need trust, shown when asking.
    needs: Vec<String>,
    /// None for a file parsed without locating it: it is never trusted unless assumed.
    inputs: Option<TrustInputs>,
    state: Mutex<State>,
}

impl TrustGate {
    pub fn new(
        path: PathBuf,
        digest: String,
        needs: Vec<String>,
        inputs: Option<TrustInputs>,
    ) -> Self {
        TrustGate {
            path,
            digest,
            needs,
            inputs,
            state: Mutex::new(State::Undecided),
        }
    }

    /// Marks the file trusted for this run without asking or recording.
    pub fn assume_trusted(&self) {
        *self.lock() = State::Trusted(Basis::Assumed);
    }

    /// The SHA-256 of the content this gate decides about.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Why the file is trusted, if it is, deciding without asking.
    pub fn basis(&self) -> Option<Basis> {
        let mut state = self.lock();
        if *state == State::Undecided {
            *state = self.decide();
        }
        match *state {
            State::Trusted(basis) => Some(basis),
            _ => None,
        }
    }

    /// Ok when `setting` (from this file) may be used: the file is trusted, or the user
    /// trusts it now on the terminal. `instead` names the flag or variable that would give
    /// the setting without trust.
    pub fn require(&self, setting: &str, instead: &str) -> Result<(), NotTrusted> {
        let mut state = self.lock();
        if *state == State::Undecided {
            *state = self.decide();
        }
        let refusal = match *state {
            State::Trusted(_) => return Ok(()),
            State::Untrusted(refusal) => refusal,
            State::Undecided => Refusal::New,
        };
        let interactive = self.inputs.as_ref().is_some_and(|i| i.interactive);
        if refusal != Refusal::Declined && interactive {
            if self.ask(refusal) {
                self.record();
                *state = State::Trusted(Basis::Accepted);
                return Ok(());
            }
            *state = State::Untrusted(Refusal::Declined);
            return Err(self.refused(setting, instead, Refusal::Declined));
        }
        Err(self.refused(setting, instead, refusal))
    }

    fn refused(&self, setting: &str, instead: &str, refusal: Refusal) -> NotTrusted {
        NotTrusted {
            setting: setting.to_string(),
            file: self.path.clone(),
            refusal,
            instead: instead.to_string(),
            variable_elsewhere: self
                .inputs
                .as_ref()
                .is_some_and(|i| i.trust_variable.is_some()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decide(&self) -> State {
        let Some(inputs) = &self.inputs else {
            return State::Untrusted(Refusal::New);
        };
        let Ok(canonical) = std::fs::canonicalize(&self.path) else {
            return State::Untrusted(Refusal::New);
        };
        if let Some(list) = &inputs.trust_variable {
            let named = std::env::split_paths(list)
                .filter(|p| !p.as_os_str().is_empty())
                .any(|p| std::fs::canonicalize(inputs.cwd.join(p)).is_ok_and(|p| p == canonical));
            if named {
                crate::log::verbose(format_args!(
                    "{} trusted by {TRUST_VARIABLE}",
                    self.path.display()
                ));
                return State::Trusted(Basis::Variable);
            }
        }
        let store = match &inputs.store {
            Ok(file) => store::Store::open(file.clone()),
            Err(problem) => Err(anyhow::anyhow!("{problem}")),
        };
        match store {
            Ok(store) => match store.lookup(&canonical) {
                Some(entry) if entry.digest == self.digest => {
                    crate::log::verbose(format_args!(
                        "{} trusted (recorded in {})",
                        self.path.display(),
                        store.file().display()
                    ));
                    State::Trusted(Basis::Recorded)
                }
                Some(_) => State::Untrusted(Refusal::Changed),
                None => State::Untrusted(Refusal::New),
            },
            Err(err) => {
                crate::log::warn(format_args!("trust store: {err:#}"));
                State::Untrusted(Refusal::New)
            }
        }
    }

    /// Shows the settings that need trust and asks y/N on stdin.
    fn ask(&self, refusal: Refusal) -> bool {
        let mut err = std::io::stderr().lock();
        let state = match refusal {
            Refusal::Changed => "changed since you trusted it",
            _ => "not trusted yet",
        };
        let _ = writeln!(
            err,
            "keywrap: {} is {state}. It came with the code; these settings in it can send your Vault token or local files elsewhere:",
            display_path(&self.path)
        );
        for need in &self.needs {
            let _ = writeln!(err, "  {need}");
        }
        let _ = write!(
            err,
            "Trust this file (until it changes; `keywrap untrust` undoes it)? [y/N] "
        );
        let _ = err.flush();
        drop(err);
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES")
    }

    /// Records the accepted content; a failure leaves it trusted for this run only.
    fn record(&self) {
        let outcome = (|| -> anyhow::Result<PathBuf> {
            let inputs = self
                .inputs
                .as_ref()
                .expect("only located files are asked about");
            let file = inputs.store.clone().map_err(anyhow::Error::msg)?;
            let canonical = std::fs::canonicalize(&self.path)?;
            let mut store = store::Store::open(file)?;
            store.insert(&canonical, &self.digest)?;
            store.save()?;
            Ok(store.file().to_path_buf())
        })();
        match outcome {
            Ok(file) => crate::log::note(format_args!(
                "trusted {} (recorded in {})",
                display_path(&self.path),
                file.display()
            )),
            Err(err) => crate::log::warn(format_args!(
                "trusted for this run only: cannot record it: {err:#}"
            )),
        }
    }
}

/// A setting's value. One that came from keywrap.toml is handed out only once that file is
/// trusted ([`Gated::get`]); one from a flag or the environment always is.
#[derive(Debug, Clone)]
pub struct Gated<T> {
    value: T,
    from_file: Option<FileOrigin>,
}

#[derive(Debug, Clone)]
struct FileOrigin {
    setting: &'static str,
    instead: &'static str,
    gate: Arc<TrustGate>,
}

impl<T: Default> Default for Gated<T> {
    fn default() -> Self {
        Gated::given(T::default())
    }
}

impl<T> Gated<T> {
    /// A value from a flag, the environment or a default: no trust needed.
    pub fn given(value: T) -> Self {
        Gated {
            value,
            from_file: None,
        }
    }

    /// A value from keywrap.toml, behind that file's gate.
    pub fn from_file(
        value: T,
        setting: &'static str,
        instead: &'static str,
        gate: Arc<TrustGate>,
    ) -> Self {
        Gated {
            value,
            from_file: Some(FileOrigin {
                setting,
                instead,
                gate,
            }),
        }
    }

    /// The value, to read a file or send it: needs trust when it came from keywrap.toml.
    pub fn get(&self) -> Result<&T, NotTrusted> {
        if let Some(origin) = &self.from_file {
            origin.gate.require(origin.setting, origin.instead)?;
        }
        Ok(&self.value)
    }

    /// The value for what needs no trust: whether it is set, naming it in a message,
    /// keeping a variable it names from the child. Never to read, open or send it.
    pub fn unchecked(&self) -> &T {
        &self.value
    }
}

/// A path for a message: control characters escaped, so a hostile directory name cannot
/// rewrite the terminal.
pub fn display_path(path: &Path) -> String {
    escape_controls(&path.display().to_string())
}

fn escape_controls(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// A path as a shell word, for a command to copy.
pub fn shell_quote(path: &Path) -> String {
    let text = display_path(path);
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain && !text.is_empty() {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(dir: &Path, trust_variable: Option<&str>) -> TrustInputs {
        TrustInputs {
            store: Ok(dir.join("config/keywrap/trusted")),
            trust_variable: trust_variable.map(OsString::from),
            cwd: dir.to_path_buf(),
            interactive: false,
        }
    }

    fn gate(dir: &Path, text: &str, trust_variable: Option<&str>) -> TrustGate {
        let path = dir.join("repo/keywrap.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        TrustGate::new(
            path,
            store::digest(text.as_bytes()),
            Vec::new(),
            Some(inputs(dir, trust_variable)),
        )
    }

    fn record(dir: &Path, text: &str) {
        let mut store = store::Store::open(dir.join("config/keywrap/trusted")).unwrap();
        let path = std::fs::canonicalize(dir.join("repo/keywrap.toml")).unwrap();
        store
            .insert(&path, &store::digest(text.as_bytes()))
            .unwrap();
        store.save().unwrap();
    }

    #[test]
    fn untrusted_files_are_refused_in_one_line_naming_setting_file_and_command() {
        let dir = tempfile::tempdir().unwrap();
        let gate = gate(dir.path(), "[vault]\n", None);
        let err = gate
            .require("[vault] address", "--address or VAULT_ADDR")
            .unwrap_err();
        let message = err.to_string();
        assert_eq!(err.refusal, Refusal::New);
        assert!(!message.contains('\n'), "{message}");
        assert!(message.starts_with("[vault] address in /"), "{message}");
        assert!(
            message.contains("repo/keywrap.toml is not used"),
            "{message}"
        );
        assert!(message.contains("`keywrap trust /"), "{message}");
        assert!(message.contains("VAULT_ADDR"), "{message}");
    }

    #[test]
    fn recorded_content_is_trusted_and_a_change_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let same = gate(dir.path(), "[vault]\n", None);
        record(dir.path(), "[vault]\n");
        assert!(same.require("[vault] address", "").is_ok());
        assert_eq!(same.basis(), Some(Basis::Recorded));
        let changed = gate(dir.path(), "[vault]\n# changed\n", None);
        let err = changed.require("[vault] address", "").unwrap_err();
        assert_eq!(err.refusal, Refusal::Changed);
        assert!(err.to_string().contains("changed since you trusted it"));
    }

    #[test]
    fn the_variable_trusts_the_files_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let named = gate(dir.path(), "x = 1\n", Some("/nowhere:repo/keywrap.toml"));
        assert_eq!(named.basis(), Some(Basis::Variable));
        let other = gate(dir.path(), "x = 1\n", Some("other/keywrap.toml"));
        let err = other.require("[vault] address", "").unwrap_err();
        assert!(err.to_string().contains("KEYWRAP_TRUST names other files"));
    }

    #[test]
    fn gated_values_from_flags_need_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Arc::new(gate(dir.path(), "", None));
        assert_eq!(Gated::given(3).get().unwrap(), &3);
        let from_file = Gated::from_file(4, "[auth] jwt_file", "--jwt-file", Arc::clone(&gate));
        assert!(from_file.get().is_err());
        assert_eq!(from_file.unchecked(), &4);
        gate.assume_trusted();
        assert_eq!(from_file.get().unwrap(), &4);
    }

    #[test]
    fn paths_in_messages_are_escaped_and_quoted() {
        assert_eq!(shell_quote(Path::new("/a/b.toml")), "/a/b.toml");
        assert_eq!(
            shell_quote(Path::new("/a b/it's\x1b[2J")),
            "'/a b/it'\\''s\\u{1b}[2J'"
        );
    }
}
