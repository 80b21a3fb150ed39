//! Supervising the child: forwarding signals exactly once and waiting for it.
//!
//! A signal the terminal generated (Ctrl-C, Ctrl-\, a window resize, a hang-up) already
//! reached the whole foreground process group, the child included: forwarding it would
//! deliver it twice. The kernel marks those as sent by itself (`SI_KERNEL`), while a
//! `kill` from another process is marked as sent by a user, so only the latter is
//! forwarded.

use std::process::{Child, ExitStatus};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::signal::*;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::{Cause, Origin, Sent};

/// The signals keywrap passes on to the child.
pub const FORWARDED: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

/// Catches the forwarded signals (so they no longer end keywrap) and SIGCHLD. Install it
/// before spawning so no signal falls between spawn and supervision.
pub struct Supervisor {
    signals: SignalsInfo<WithOrigin>,
}

impl Supervisor {
    pub fn install() -> Result<Self> {
        let mut wanted = FORWARDED.to_vec();
        wanted.push(SIGCHLD);
        let signals =
            SignalsInfo::<WithOrigin>::new(&wanted).context("cannot install signal handlers")?;
        Ok(Supervisor { signals })
    }

    /// Forwards signals to `child` until it exits; returns its status. Nothing is left
    /// behind: the child is reaped here.
    pub fn wait(&mut self, child: &mut Child) -> Result<ExitStatus> {
        let pid = Pid::from_raw(child.id() as i32);
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the child")? {
                return Ok(status);
            }
            for origin in self.signals.wait() {
                if origin.signal != SIGCHLD && should_forward(&origin) {
                    if let Ok(signal) = Signal::try_from(origin.signal) {
                        let _ = kill(pid, signal);
                    }
                }
            }
        }
    }
}

/// True for signals sent by a process (`kill`), false for those the terminal generated.
fn should_forward(origin: &Origin) -> bool {
    match origin.cause {
        Cause::Kernel => false,
        // macOS reports terminal signals as sent by "process 0".
        Cause::Sent(Sent::User) => origin.process.as_ref().is_none_or(|p| p.pid != 0),
        _ => true,
    }
}
