//! A real `redis-server` (Debian's package; `scripts/install-test-deps` installs it) on a
//! free loopback port, with everything it writes in a temporary directory. Stopped when
//! dropped; [`Redis::restart`] brings it back on the same port, for the "Redis restarted"
//! tests.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    process: Option<Child>,
    pub port: u16,
    /// `redis://127.0.0.1:PORT/0`.
    pub url: String,
    persistent: bool,
    pub dir: tempfile::TempDir,
}

impl Redis {
    /// No persistence at all (`--save ''`, no append-only file).
    pub fn start() -> Redis {
        Self::launch(false)
    }

    /// With an append-only file synced on every write, so a restart keeps everything.
    pub fn start_persistent() -> Redis {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Redis {
        let mut redis = Redis {
            process: None,
            port: super::free_port(),
            url: String::new(),
            persistent,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.url = format!("redis://127.0.0.1:{}/0", redis.port);
        redis.spawn();
        redis
    }

    fn binary() -> PathBuf {
        std::env::var_os("KEYWRAP_TEST_REDIS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"))
    }

    fn spawn(&mut self) {
        let mut command = Command::new(Self::binary());
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.path().display().to_string()])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "yes"])
            .args(["--logfile", "redis.log"]);
        if self.persistent {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server: run scripts/install-test-deps (or set KEYWRAP_TEST_REDIS)");
        self.process = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        panic!("redis-server did not start:\n{log}");
    }

    /// Whether it answers PING.
    pub fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut buf).is_ok()
            && &buf == b"+PONG\r\n"
    }

    /// Kills the server (SIGKILL: nothing is saved on the way out).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it and starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
