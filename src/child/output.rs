//! Where the child's output goes: straight to keywrap's own stdout/stderr, or through
//! keywrap's masking filter, over a pipe or a pseudo-terminal.
//!
//! Each stream is decided on its own:
//!
//! | stream is        | no flag                 | `--mask`                 | `--no-mask` |
//! |------------------|-------------------------|--------------------------|-------------|
//! | a terminal       | the real terminal       | keywrap's pty, filtered  | inherited   |
//! | not a terminal   | a pipe, filtered        | a pipe, filtered         | inherited   |
//!
//! So by default exactly what goes to a file, a pipe or a CI log is masked, and an
//! interactive terminal is left alone. With a pty, stdin is copied to it when keywrap's
//! stdin is a terminal (put in raw mode for the run), else the child reads keywrap's stdin.
//!
//! One thread per filtered stream reads, masks and writes at once, so each stream keeps its
//! order and nothing waits for a newline; stdout and stderr interleave as the two pipes
//! deliver them. When keywrap's stdout and stderr are one file or pipe (`2>&1`), the child
//! gets one pipe for both, so its lines arrive in exactly the order it wrote them.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::termios::{self, SetArg, Termios};

use crate::mask::{MaskStream, Masker};
use crate::secret::SecretValue;
use zeroize::Zeroizing;

/// How long, after the child exited, keywrap still passes on output of processes it left
/// behind holding its stdout or stderr.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The pipe size asked for: the child can run ahead of the filter for longer, so the two
/// switch less often.
const PIPE_SIZE: usize = 1024 * 1024;

/// Read size: small enough that a read's bytes are still in cache when they are scanned
/// and written on.
const CHUNK: usize = 128 * 1024;

/// Writes smaller than this are gathered before they reach keywrap's stream.
const SMALL_WRITES: usize = 64 * 1024;

/// How one output stream reaches keywrap's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Inherit,
    Pipe,
    Pty,
}

/// The routes of stdout and stderr, and whether stdin is copied to the pty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    pub stdout: Route,
    pub stderr: Route,
    pub stdin_to_pty: bool,
    /// Both go through one pipe (keywrap's stdout and stderr are the same file).
    pub one_pipe: bool,
}

/// Which of keywrap's standard streams are terminals, and whether stdout and stderr are
/// one file.
#[derive(Debug, Clone, Copy)]
pub struct Terminals {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub same_output: bool,
}

impl Terminals {
    pub fn detect() -> Self {
        Terminals {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
            same_output: same_file(std::io::stdout().as_fd(), std::io::stderr().as_fd()),
        }
    }
}

/// True when both descriptors lead to the same file or pipe (`2>&1`, or both `/dev/null`).
fn same_file(a: std::os::fd::BorrowedFd, b: std::os::fd::BorrowedFd) -> bool {
    use std::os::unix::fs::MetadataExt;
    let identity = |fd: std::os::fd::BorrowedFd| {
        let metadata = File::from(fd.try_clone_to_owned().ok()?).metadata().ok()?;
        Some((metadata.dev(), metadata.ino()))
    };
    identity(a).is_some_and(|a| identity(b) == Some(a))
}

impl Routes {
    /// The table in the module documentation; `mask` is `--mask` (true), `--no-mask`
    /// (false) or neither.
    pub fn decide(mask: Option<bool>, terminals: Terminals) -> Routes {
        let route = |is_terminal: bool| match (mask, is_terminal) {
            (Some(false), _) | (None, true) => Route::Inherit,
            (_, false) => Route::Pipe,
            (Some(true), true) => Route::Pty,
        };
        let stdout = route(terminals.stdout);
        let stderr = route(terminals.stderr);
        Routes {
            stdout,
            stderr,
            stdin_to_pty: terminals.stdin && (stdout == Route::Pty || stderr == Route::Pty),
            one_pipe: stdout == Route::Pipe && stderr == Route::Pipe && terminals.same_output,
        }
    }

    pub fn inherit() -> Routes {
        Routes {
            stdout: Route::Inherit,
            stderr: Route::Inherit,
            stdin_to_pty: false,
            one_pipe: false,
        }
    }

    pub fn uses_pty(&self) -> bool {
        self.stdout == Route::Pty || self.stderr == Route::Pty
    }

    pub fn masks(&self) -> bool {
        self.stdout != Route::Inherit || self.stderr != Route::Inherit
    }
}

/// The child's standard streams for one run.
#[derive(Default)]
pub struct ChildStdio {
    pub stdin: Option<Stdio>,
    pub stdout: Option<Stdio>,
    pub stderr: Option<Stdio>,
    /// The child's descriptor (1 or 2) that is the pty, to become its controlling terminal.
    pub controlling_terminal: Option<i32>,
}

/// Output plumbing for the whole of `exec`, across restarts: the real terminal's mode,
/// the stdin copier, and per run the pipes or pty.
pub struct Output {
    routes: Routes,
    /// Every value injected during the run: after a restart the old values stay masked.
    values: Mutex<Vec<SecretValue>>,
    masker: Mutex<Option<Arc<Masker>>>,
    /// Kept only to be dropped: that puts the real terminal back in its saved mode.
    _raw_terminal: Option<RawTerminal>,
    /// The current pty, where stdin is copied and window sizes are set.
    pty: Arc<Mutex<PtyInput>>,
}

/// The filters of one run, finished with [`Running::drain`].
pub struct Running {
    done: Receiver<()>,
    pumps: usize,
}

impl Output {
    /// Output for a run that injects `values`. With nothing long enough to mask, nothing
    /// is filtered. The warning about values too short to mask comes only when output is
    /// masked at all.
    pub fn new<'a>(
        routes: Routes,
        values: impl IntoIterator<Item = &'a SecretValue>,
    ) -> Result<Self> {
        let values: Vec<SecretValue> = values.into_iter().cloned().collect();
        let masker = if routes.masks() {
            crate::mask::for_values(&values)
        } else {
            None
        };
        let routes = if masker.is_some() {
            routes
        } else {
            Routes::inherit()
        };
        let pty = Arc::new(Mutex::new(PtyInput::default()));
        let terminal = if routes.stdin_to_pty {
            let terminal = RawTerminal::enter()?;
            copy_stdin(Arc::clone(&pty))?;
            Some(terminal)
        } else {
            None
        };
        Ok(Output {
            routes,
            values: Mutex::new(values),
            masker: Mutex::new(masker.map(Arc::new)),
            _raw_terminal: terminal,
            pty,
        })
    }

    pub fn uses_pty(&self) -> bool {
        self.routes.uses_pty()
    }

    /// Adds a restart's new values to what is masked from the next run on. Only a value
    /// not seen before can add to the warning about values too short to mask.
    pub fn remask(&self, new: &[(String, SecretValue)]) {
        if !self.routes.masks() {
            return;
        }
        let mut values = lock(&self.values);
        let fresh: Vec<SecretValue> = new
            .iter()
            .map(|(_, value)| value)
            .filter(|value| !values.iter().any(|old| old.expose() == value.expose()))
            .cloned()
            .collect();
        let too_short = fresh
            .iter()
            .filter(|v| crate::mask::too_short_to_mask(v))
            .count();
        values.extend(fresh);
        *lock(&self.masker) = Masker::build(values.iter()).masker.map(Arc::new);
        crate::mask::warn_too_short(too_short);
    }

    /// Creates this run's pipes or pty, starts the filters, and returns the child's ends.
    pub fn attach(&self) -> Result<(ChildStdio, Running)> {
        let (done_tx, done) = channel();
        let mut stdio = ChildStdio::default();
        let mut pumps = 0;
        let Some(masker) = lock(&self.masker).clone() else {
            return Ok((stdio, Running { done, pumps }));
        };
        let masker = &masker;
        let slave = if self.routes.uses_pty() {
            let size = real_window_size();
            let pty =
                nix::pty::openpty(size.as_ref(), None).context("cannot open a pseudo-terminal")?;
            // Close-on-exec on both ends: the child gets the slave only as its standard
            // streams, and never the master.
            for fd in [&pty.master, &pty.slave] {
                nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                )
                .context("cannot set up the pseudo-terminal")?;
            }
            let master = File::from(pty.master);
            lock(&self.pty).attach(master.try_clone().context("cannot duplicate the pty")?);
            let sink = if self.routes.stdout == Route::Pty {
                stdout_sink()?
            } else {
                stderr_sink()?
            };
            spawn_pump(master, sink, Arc::clone(masker), done_tx.clone())?;
            pumps += 1;
            stdio.controlling_terminal = Some(if self.routes.stdout == Route::Pty {
                1
            } else {
                2
            });
            Some(pty.slave)
        } else {
            None
        };
        let slave_stdio = |slave: &Option<OwnedFd>| -> Result<Stdio> {
            let fd = slave.as_ref().expect("a pty route has a pty");
            Ok(Stdio::from(
                fd.try_clone().context("cannot duplicate the pty")?,
            ))
        };
        // With `one_pipe`, the pipe made for stdout is stderr's too.
        let mut shared: Option<OwnedFd> = None;
        for (route, is_stdout) in [(self.routes.stdout, true), (self.routes.stderr, false)] {
            let child_end = match route {
                Route::Inherit => continue,
                Route::Pty => slave_stdio(&slave)?,
                Route::Pipe if shared.is_some() => {
                    Stdio::from(shared.take().expect("checked just above"))
                }
                Route::Pipe => {
                    // Close-on-exec: the child gets only the write end, as its stdout/stderr.
                    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                        .context("cannot create a pipe")?;
                    #[cfg(target_os = "linux")]
                    let _ = nix::fcntl::fcntl(
                        &read,
                        nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32),
                    );
                    let sink = if is_stdout {
                        stdout_sink()?
                    } else {
                        stderr_sink()?
                    };
                    spawn_pump(File::from(read), sink, Arc::clone(masker), done_tx.clone())?;
                    pumps += 1;
                    if self.routes.one_pipe {
                        shared = Some(write.try_clone().context("cannot duplicate a pipe")?);
                    }
                    Stdio::from(write)
                }
            };
            if is_stdout {
                stdio.stdout = Some(child_end);
            } else {
                stdio.stderr = Some(child_end);
            }
        }
        if self.routes.stdin_to_pty {
            stdio.stdin = Some(slave_stdio(&slave)?);
        }
        Ok((stdio, Running { done, pumps }))
    }

    /// The child is gone: keystrokes wait for the next pty instead of going to this one.
    pub fn detach(&self) {
        lock(&self.pty).master = None;
    }

    /// Copies the real terminal's window size to the pty.
    pub fn resize(&self) {
        if let (Some(size), Some(master)) = (real_window_size(), lock(&self.pty).master.as_ref()) {
            crate::sys::set_window_size(master.as_fd(), &size);
        }
    }
}

impl Running {
    /// After the child exited: waits until the filters have passed on everything the
    /// child wrote, at most [`DRAIN_GRACE`] longer if something else keeps a stream open.
    pub fn drain(self) {
        let deadline = Instant::now() + DRAIN_GRACE;
        for _ in 0..self.pumps {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                return;
            }
        }
    }
}

/// A lock that a panicked holder did not poison for good: the data is plain.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The window size of whichever of keywrap's streams is a terminal.
fn real_window_size() -> Option<nix::pty::Winsize> {
    crate::sys::window_size(std::io::stdout().as_fd())
        .or_else(|| crate::sys::window_size(std::io::stderr().as_fd()))
        .or_else(|| crate::sys::window_size(std::io::stdin().as_fd()))
}

fn stdout_sink() -> Result<File> {
    Ok(File::from(
        std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot duplicate stdout")?,
    ))
}

fn stderr_sink() -> Result<File> {
    Ok(File::from(
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot duplicate stderr")?,
    ))
}

/// Reads `source` until it ends (a pty master reports EIO once the child closed it),
/// masking into `sink`. If `sink` is closed, stops reading so the child gets EPIPE, as it
/// would writing there itself.
fn spawn_pump(mut source: File, sink: File, masker: Arc<Masker>, done: Sender<()>) -> Result<()> {
    std::thread::Builder::new()
        .name("mask".into())
        .spawn(move || {
            let mut stream = MaskStream::new(&masker);
            let mut buf = vec![0u8; CHUNK];
            // Small pieces (replacements, text between them) are gathered; large unchanged
            // runs go straight from `buf` to the sink. Flushed after every read.
            let mut sink = BufWriter::with_capacity(SMALL_WRITES, sink);
            loop {
                let written = match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => stream
                        .push(&buf[..n], &mut sink)
                        .and_then(|()| sink.flush()),
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if written.is_err() {
                    drop(source);
                    let _ = done.send(());
                    return;
                }
            }
            let _ = stream.finish(&mut sink).and_then(|()| sink.flush());
            let _ = done.send(());
        })
        .context("cannot start an output filter")?;
    Ok(())
}

/// Copies keywrap's stdin to the current pty for the rest of the run.
fn copy_stdin(pty: Arc<Mutex<PtyInput>>) -> Result<()> {
    let mut stdin = File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .context("cannot duplicate stdin")?,
    );
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                lock(&pty).send(&buf[..n]);
            }
        })
        .context("cannot start the stdin copier")?;
    Ok(())
}

/// Where keystrokes go: the current pty's master, or, before there is one (at start, and
/// during a restart), a bounded buffer that the next pty gets first.
#[derive(Default)]
struct PtyInput {
    master: Option<File>,
    pending: Zeroizing<Vec<u8>>,
}

/// Keystrokes kept while no pty exists; more are dropped (a terminal buffers about as much).
const MAX_PENDING: usize = 64 * 1024;

impl PtyInput {
    fn send(&mut self, bytes: &[u8]) {
        match &mut self.master {
            Some(master) => {
                let _ = master.write_all(bytes);
            }
            None => {
                let room = MAX_PENDING.saturating_sub(self.pending.len());
                self.pending
                    .extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
        }
    }

    fn attach(&mut self, mut master: File) {
        let _ = master.write_all(&self.pending);
        self.pending.clear();
        self.master = Some(master);
    }
}

/// The real terminal in raw mode, so every key reaches the child's pty unchanged; the
/// saved mode is put back when this is dropped.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).context("cannot read the terminal's mode")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_routed_by_flag_and_terminal() {
        let terminals = |stdout, stderr| Terminals {
            stdin: true,
            stdout,
            stderr,
            same_output: false,
        };
        use Route::*;
        let routes = |mask, t| {
            let r = Routes::decide(mask, t);
            (r.stdout, r.stderr, r.stdin_to_pty)
        };
        assert_eq!(
            routes(None, terminals(true, true)),
            (Inherit, Inherit, false)
        );
        assert_eq!(routes(None, terminals(false, true)), (Pipe, Inherit, false));
        assert_eq!(routes(None, terminals(false, false)), (Pipe, Pipe, false));
        assert_eq!(
            routes(Some(true), terminals(true, false)),
            (Pty, Pipe, true)
        );
        assert_eq!(routes(Some(true), terminals(true, true)), (Pty, Pty, true));
        assert_eq!(
            routes(Some(false), terminals(false, false)),
            (Inherit, Inherit, false)
        );
    }
}
