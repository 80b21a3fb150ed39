//! Messages to stderr: verbose notes and warnings. Never pass a secret value here.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns on `-v` notes for the rest of the run.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn is_verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// A `-v` note: what keywrap is doing (which config, which token source, which paths).
pub fn verbose(message: impl std::fmt::Display) {
    if is_verbose() {
        eprintln!("keywrap: {message}");
    }
}

/// A warning that is always shown.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("keywrap: warning: {message}");
}

/// A note that is always shown: what a long-running command (the proxy) is doing.
pub fn note(message: impl std::fmt::Display) {
    eprintln!("keywrap: {message}");
}
