//! Supervising the child: an event loop over signals, the child's exit and restart
//! requests, forwarding each signal exactly once.
//!
//! A signal the terminal generated (Ctrl-C, Ctrl-\, a window resize, a hang-up) already
//! reached the whole foreground process group, the child included: forwarding it would
//! deliver it twice. The kernel marks those as sent by itself (`SI_KERNEL`), while a
//! `kill` from another process is marked as sent by a user, so only the latter is
//! forwarded. The exception is a child on keywrap's pseudo-terminal: it is in a session of
//! its own, so the real terminal's signals reach only keywrap and are all passed on.
//!
//! Without a controlling terminal (a CI job, a service, a container without `-t`) no
//! terminal sends signals, but supervisors do send them to a whole process group (GitLab
//! Runner cancelling a job, `timeout`): a child in keywrap's group would get each of them
//! twice. There the child leads a process group of its own, so only keywrap is reached,
//! and keywrap passes each signal on to that whole group (the child and anything it
//! started), the way the group signal would have reached them.

use std::process::{Child, ExitStatus};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::signal::*;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::{Cause, Origin, Sent};

use crate::secret::SecretValue;

/// The signals keywrap passes on to the child.
pub const FORWARDED: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

/// Signals that mean "stop": after one, keywrap restarts nothing and exits with the
/// child's status.
const STOPPING: &[i32] = &[SIGINT, SIGTERM, SIGHUP, SIGQUIT];

/// What the supervisor reacts to.
#[derive(Debug)]
pub enum Event {
    Signal(Origin),
    /// SIGCHLD: the child may have exited.
    ChildChanged,
    /// A watched secret has a new version; these are the new values.
    NewValues(Vec<(String, SecretValue)>),
}

/// How the child is attached, which changes what is forwarded.
pub struct Attachment<'a> {
    /// The child runs on keywrap's pseudo-terminal, in its own session.
    pub own_terminal: bool,
    /// The child leads its own process group: signals go to that group.
    pub own_group: bool,
    /// Called on SIGWINCH instead of forwarding it (copies the window size to the pty).
    pub on_resize: Option<&'a dyn Fn()>,
}

/// Why [`Supervisor::supervise`] returned.
#[derive(Debug)]
pub enum Outcome {
    Exited(ExitStatus),
    NewValues(Vec<(String, SecretValue)>),
}

/// How a restart backoff ended.
#[derive(Debug)]
pub enum Paused {
    Elapsed,
    Stopped,
    NewValues(Vec<(String, SecretValue)>),
}

/// Catches the forwarded signals (so they no longer end keywrap) and SIGCHLD on a thread
/// that feeds one event channel. Install it before spawning so no signal falls between
/// spawn and supervision.
pub struct Supervisor {
    events: Receiver<Event>,
    sender: Sender<Event>,
    handle: Handle,
    stopping: bool,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.handle.close();
    }
}

impl Supervisor {
    pub fn install() -> Result<Self> {
        let mut wanted = FORWARDED.to_vec();
        wanted.push(SIGCHLD);
        let mut signals =
            SignalsInfo::<WithOrigin>::new(&wanted).context("cannot install signal handlers")?;
        let handle = signals.handle();
        let (sender, events) = channel();
        let to_loop = sender.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    let event = if origin.signal == SIGCHLD {
                        Event::ChildChanged
                    } else {
                        Event::Signal(origin)
                    };
                    if to_loop.send(event).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the signal thread")?;
        Ok(Supervisor {
            events,
            sender,
            handle,
            stopping: false,
        })
    }

    /// Where other threads (the secret watcher) send their events.
    pub fn sender(&self) -> Sender<Event> {
        self.sender.clone()
    }

    /// True once keywrap was asked to stop (INT, TERM, HUP, QUIT): restart nothing more.
    pub fn stopping(&self) -> bool {
        self.stopping
    }

    /// Runs the event loop until the child exits (it is then reaped) or new values arrive
    /// (it is then still running; see [`Supervisor::stop`]).
    pub fn supervise(&mut self, child: &mut Child, attachment: &Attachment) -> Result<Outcome> {
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the child")? {
                return Ok(Outcome::Exited(status));
            }
            match self.events.recv().context("the signal thread ended")? {
                Event::Signal(origin) => self.on_signal(child, &origin, attachment),
                Event::ChildChanged => {}
                Event::NewValues(values) if !self.stopping => {
                    return Ok(Outcome::NewValues(values))
                }
                Event::NewValues(_) => {}
            }
        }
    }

    /// Stops the child gracefully for a restart: `signal`, then KILL after `timeout`.
    /// Signals that arrive meanwhile are handled as usual.
    pub fn stop(
        &mut self,
        child: &mut Child,
        signal: Signal,
        timeout: Duration,
        attachment: &Attachment,
    ) -> Result<ExitStatus> {
        send(child, signal, attachment);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the child")? {
                return Ok(status);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Signal(origin)) => self.on_signal(child, &origin, attachment),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    crate::log::warn(format_args!(
                        "the command did not stop within {}s of {signal}; killing it",
                        timeout.as_secs_f64()
                    ));
                    send(child, Signal::SIGKILL, attachment);
                    return child.wait().context("cannot wait for the child");
                }
                Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the signal thread ended"),
            }
        }
    }

    /// Waits `pause` with no child running (a restart backoff), ending early when keywrap
    /// is asked to stop or new values arrive.
    pub fn pause(&mut self, pause: Duration) -> Paused {
        let deadline = Instant::now() + pause;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Signal(origin)) if STOPPING.contains(&origin.signal) => {
                    self.stopping = true;
                    return Paused::Stopped;
                }
                Ok(Event::NewValues(values)) => return Paused::NewValues(values),
                Ok(_) => {}
                Err(_) => return Paused::Elapsed,
            }
        }
    }

    fn on_signal(&mut self, child: &Child, origin: &Origin, attachment: &Attachment) {
        if STOPPING.contains(&origin.signal) {
            self.stopping = true;
        }
        if origin.signal == SIGWINCH {
            if let Some(resize) = attachment.on_resize {
                resize();
                return;
            }
        }
        if attachment.own_terminal || attachment.own_group || should_forward(origin) {
            if let Ok(signal) = Signal::try_from(origin.signal) {
                send(child, signal, attachment);
            }
        }
    }
}

/// Sends `signal` to the child, or to its whole process group when it leads one.
fn send(child: &Child, signal: Signal, attachment: &Attachment) {
    let pid = Pid::from_raw(child.id() as i32);
    if attachment.own_group {
        let _ = nix::sys::signal::killpg(pid, signal);
    } else {
        let _ = kill(pid, signal);
    }
}

/// True when keywrap has no controlling terminal: then nothing needs the child in
/// keywrap's process group, and a signal sent to that group must not reach it directly.
pub fn child_needs_own_group() -> bool {
    !has_controlling_terminal()
}

#[cfg(target_os = "linux")]
fn has_controlling_terminal() -> bool {
    // Field 7 of /proc/self/stat (`tty_nr`) is 0 without one; the fields after the
    // command name (which may hold spaces) start at the last ')'.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 1..];
            after_name.split_whitespace().nth(4)?.parse::<i64>().ok()
        })
        .is_none_or(|tty| tty != 0)
}

#[cfg(not(target_os = "linux"))]
fn has_controlling_terminal() -> bool {
    std::fs::File::open("/dev/tty").is_ok()
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
