//! A progress line on stderr while a large log is read, only when stderr is a terminal.

use std::io::{IsTerminal, Write};

/// Logs smaller than this finish before a progress line would help.
const SHOW_FROM_BYTES: u64 = 64 << 20;

/// Characters in the bar.
const BAR_WIDTH: u64 = 20;

/// Draws `keywrap: reading audit log [########------------]  42% (430 MiB of 1.0 GiB)` in
/// place.
pub struct Progress {
    total: Option<u64>,
    last_percent: Option<u64>,
}

impl Progress {
    /// A progress line for a file of `total` bytes; silent when it is small or unknown, or
    /// stderr is not a terminal.
    pub fn new(total: Option<u64>) -> Self {
        let show = total.is_some_and(|t| t >= SHOW_FROM_BYTES) && std::io::stderr().is_terminal();
        Progress {
            total: total.filter(|_| show),
            last_percent: None,
        }
    }

    pub fn update(&mut self, done: u64) {
        let Some(total) = self.total else {
            return;
        };
        let percent = done.saturating_mul(100) / total.max(1);
        if self.last_percent == Some(percent) {
            return;
        }
        self.last_percent = Some(percent);
        let filled = (percent.min(100) * BAR_WIDTH / 100) as usize;
        let _ = write!(
            std::io::stderr(),
            "\rkeywrap: reading audit log [{}{}] {percent:3}% ({} of {})",
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH as usize - filled),
            size(done),
            size(total)
        );
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.total.take().is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

fn size(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let mib = bytes as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}
