//! Signals reach the child exactly once, the child's status is passed on, and nothing is
//! left running.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::Bao;

/// A child that logs each signal it gets to `$LOG`, one line per delivery, and exits 42 on
/// TERM. A shell's `trap` cannot count: two deliveries that arrive while it waits for a
/// command run the trap once. Python's wakeup fd gets one byte per delivery of the C-level
/// handler, so a signal that arrives twice is logged twice. SIGALRM ends it if a test
/// never sends TERM.
const TRAPPING_CHILD: &str = r#"
import os, signal, sys
signal.alarm(30)
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
for s in ("INT", "HUP", "QUIT", "USR1", "USR2", "WINCH", "TERM"):
    signal.signal(getattr(signal, "SIG" + s), lambda *_: None)
log = open(os.environ["LOG"], "a")
print("ready", flush=True)
while True:
    for number in os.read(r, 64):
        name = signal.Signals(number).name[3:]
        log.write(name + "\n")
        log.flush()
        if name == "TERM":
            sys.exit(42)
"#;

fn wait_for_lines(path: &std::path::Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// keywrap running [`TRAPPING_CHILD`], which has said "ready"; its signal log; and the
/// Keywrap whose scratch directories must outlive the run. With `new_session`, keywrap
/// runs as `setsid` leaves it: leading its own session and process group, with no
/// controlling terminal, as on a CI runner.
fn start_trapping_child(
    bao: &Bao,
    new_session: bool,
) -> (std::process::Child, std::path::PathBuf, support::Keywrap) {
    let mut keywrap = bao.keywrap();
    let log = keywrap.workdir.path().join("signals.log");
    let command = keywrap
        .env("LOG", &log)
        .args([
            "exec",
            "-s",
            "A=secret/a#k",
            "--",
            "python3",
            "-c",
            TRAPPING_CHILD,
        ])
        .command();
    let mut command = if new_session {
        let mut setsid = std::process::Command::new("setsid");
        setsid
            .arg(command.get_program())
            .args(command.get_args())
            .env_clear()
            .envs(
                command
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            );
        if let Some(dir) = command.get_current_dir() {
            setsid.current_dir(dir);
        }
        setsid
    } else {
        std::mem::replace(command, std::process::Command::new("true"))
    };
    let mut process = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(process.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    (process, log, keywrap)
}

#[test]
fn signals_sent_to_keywrap_reach_the_child_once() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-sig")]);
    let (mut process, log, _keywrap) = start_trapping_child(&bao, false);

    let pid = nix::unistd::Pid::from_raw(process.id() as i32);
    use nix::sys::signal::Signal::*;
    let sent = [SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGINT, SIGQUIT];
    for (i, signal) in sent.iter().enumerate() {
        nix::sys::signal::kill(pid, *signal).unwrap();
        let lines = wait_for_lines(&log, i + 1);
        assert_eq!(lines.len(), i + 1, "after {signal}: {lines:?}");
    }
    nix::sys::signal::kill(pid, SIGTERM).unwrap();
    let status = process.wait().unwrap();
    assert_eq!(status.code(), Some(42));
    let lines = wait_for_lines(&log, 7);
    assert_eq!(
        lines,
        ["USR1", "USR2", "HUP", "WINCH", "INT", "QUIT", "TERM"]
    );
}

#[test]
fn a_signal_to_keywrap_s_whole_process_group_reaches_the_child_once() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-group")]);
    let (mut process, log, _keywrap) = start_trapping_child(&bao, true);
    // setsid made keywrap the leader of its group: this is `kill -USR1 -PGID`, what
    // GitLab Runner and `timeout` do.
    let group = nix::unistd::Pid::from_raw(process.id() as i32);
    use nix::sys::signal::Signal::*;
    for (i, signal) in [SIGUSR1, SIGUSR2].iter().enumerate() {
        nix::sys::signal::killpg(group, *signal).unwrap();
        wait_for_lines(&log, i + 1);
        // A second delivery would follow within milliseconds.
        std::thread::sleep(Duration::from_millis(300));
        let lines = wait_for_lines(&log, 0);
        assert_eq!(lines.len(), i + 1, "after {signal}: {lines:?}");
    }
    nix::sys::signal::killpg(group, SIGTERM).unwrap();
    assert_eq!(process.wait().unwrap().code(), Some(42));
    assert_eq!(wait_for_lines(&log, 3), ["USR1", "USR2", "TERM"]);
}

#[test]
fn ctrl_c_on_a_terminal_reaches_the_child_once() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-tty")]);
    let mut keywrap = bao.keywrap();
    let log = keywrap.workdir.path().join("signals.log");
    let child = r#"trap 'echo INT >> "$LOG"' INT; echo ready; i=0; while [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; exit 7"#;
    // `exec`: without it a shell that does not replace itself (dash, when SHELL is unset)
    // stays in the foreground group, dies of the ^C and `script` reports its 130.
    let inner = format!(
        "exec {} exec -s A=secret/a#k -- sh -c '{}'",
        env!("CARGO_BIN_EXE_keywrap"),
        child.replace('\'', r"'\''")
    );
    let command = keywrap.env("LOG", &log).command();
    // `script` runs keywrap on a new pseudo-terminal; writing ^C to it makes the terminal
    // send SIGINT to its whole foreground process group: keywrap and the child.
    let mut process = std::process::Command::new("script")
        .args(["-qefc", &inner, "/dev/null"])
        .envs(
            command
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .current_dir(keywrap.workdir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(process.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("ready"), "{line:?}");
    process.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    process.stdin.as_mut().unwrap().flush().unwrap();
    let status = process.wait().unwrap();
    assert_eq!(
        wait_for_lines(&log, 1),
        ["INT"],
        "SIGINT must arrive exactly once"
    );
    assert_eq!(
        status.code(),
        Some(7),
        "keywrap kept running and passed on the child's status"
    );
}

#[test]
fn the_child_does_not_outlive_a_killed_keywrap() {
    let bao = Bao::start();
    bao.kv_put("secret/a", &[("k", "fake-value-orphan")]);
    let (mut process, log, _keywrap) = start_trapping_child(&bao, false);
    process.kill().unwrap();
    process.wait().unwrap();
    assert_eq!(
        wait_for_lines(&log, 1),
        ["TERM"],
        "the child was told to stop"
    );
}
