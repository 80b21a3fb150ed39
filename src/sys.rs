//! The only `unsafe` code in keywrap: set-up that must run in the forked child between
//! `fork` and `exec`. Keep it small; every block says why it is sound.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child (a) get SIGTERM if keywrap dies without stopping it (Linux), so it is
/// never left running unsupervised, and (b) start with the core-file limit keywrap
/// inherited, not the zero keywrap set for itself.
pub fn prepare_child(command: &mut Command, core_limit: Option<(u64, u64)>) {
    let parent = std::process::id();
    // SAFETY: `pre_exec` closures run in the forked child, where only async-signal-safe
    // work is allowed. This one allocates nothing and makes only raw system calls
    // (prctl, getppid, setrlimit) through nix's thin wrappers; the captured values are
    // plain integers copied into the closure.
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)?;
                // keywrap may have died between fork and prctl: then stop right here.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    return Err(std::io::Error::other(
                        "keywrap exited before the child started",
                    ));
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = parent;
            if let Some((soft, hard)) = core_limit {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_CORE,
                    soft,
                    hard,
                )?;
            }
            Ok(())
        });
    }
}

/// Makes the child the leader of a new session whose controlling terminal is its
/// descriptor `fd` (keywrap's pseudo-terminal), so job control, line editing and Ctrl-C
/// work inside it.
pub fn controlling_terminal(command: &mut Command, fd: i32) {
    // SAFETY: runs in the forked child; setsid and ioctl are async-signal-safe system
    // calls, nothing is allocated, and `fd` is the pty slave that `Command` dup'ed there.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(fd, nix::libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The window size of the terminal on `fd`, if it is one.
pub fn window_size(fd: std::os::fd::BorrowedFd) -> Option<nix::pty::Winsize> {
    use std::os::fd::AsRawFd;
    let mut size = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` struct through the pointer, which points at
    // a live, correctly typed local; `fd` is borrowed, so it is open for the call.
    let result = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut size) };
    (result == 0).then_some(size)
}

/// Sets the window size of the terminal on `fd` (the kernel then sends SIGWINCH to its
/// foreground process group).
pub fn set_window_size(fd: std::os::fd::BorrowedFd, size: &nix::pty::Winsize) {
    use std::os::fd::AsRawFd;
    // SAFETY: TIOCSWINSZ only reads one `winsize` struct through the pointer, which points
    // at a live value; `fd` is borrowed, so it is open for the call.
    unsafe {
        nix::libc::ioctl(
            fd.as_raw_fd(),
            nix::libc::TIOCSWINSZ,
            size as *const nix::pty::Winsize,
        );
    }
}
