//! Keeping secrets out of core dumps and away from debuggers of the same user.

use std::sync::OnceLock;

/// The core-file limit keywrap started with, restored for the child so that keywrap's own
/// hardening does not change how the child behaves.
static INHERITED_CORE_LIMIT: OnceLock<(u64, u64)> = OnceLock::new();

/// Disables core dumps of keywrap: `RLIMIT_CORE` 0 and, on Linux, not dumpable (which
/// also stops other processes of the same user from attaching a debugger or reading
/// `/proc/PID/mem`). Failure is not fatal: it is reported with `-v`.
pub fn disable_core_dumps() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_CORE) {
        let _ = INHERITED_CORE_LIMIT.set((soft, hard));
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
    }
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_dumpable(false);
    }
}

/// The core-file limit to give the child, if keywrap changed its own.
pub fn inherited_core_limit() -> Option<(u64, u64)> {
    INHERITED_CORE_LIMIT.get().copied()
}
