//! The only `unsafe` code in keywrap: set-up that must run in the forked child between
//! `fork` and `exec`. Keep it small; every block says why it is sound.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child (a) get SIGTERM if keywrap dies without stopping it (Linux), so it is
/// never left running unsupervised, and (b) start with the core-file limit keywrap
/// inherited, not the zero keywrap set for itself.
pub fn prepare_child(command: &mut Command, core_limit: Option<(u64, u64)>) {
    // SAFETY: `pre_exec` closures run in the forked child, where only async-signal-safe
    // work is allowed. This one allocates nothing and makes only raw system calls
    // (prctl, getppid, kill, setrlimit) through nix's thin wrappers; the captured values
    // are plain integers copied into the closure.
    let parent = std::process::id();
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
                // keywrap may have died between fork and prctl: then stop right here.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    return Err(std::io::Error::other("keywrap exited before the child started"));
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = parent;
            if let Some((soft, hard)) = core_limit {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, soft, hard)?;
            }
            Ok(())
        });
    }
}
