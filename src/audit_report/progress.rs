//! A progress line on stderr while a large log is read, only when stderr is a terminal
//! (indicatif draws it, rate-limited, and hides itself when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Logs smaller than this finish before a progress line would help.
const SHOW_FROM_BYTES: u64 = 64 << 20;

/// Draws `keywrap: reading audit log [########------------]  42% (430.00 MiB of 1.00 GiB)`
/// in place.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress line for a file of `total` bytes; silent when it is small or unknown, or
    /// stderr is not a terminal.
    pub fn new(total: Option<u64>) -> Self {
        let bar = total.filter(|t| *t >= SHOW_FROM_BYTES).map(|total| {
            let style = ProgressStyle::with_template(
                "keywrap: reading audit log [{bar:20}] {percent:>3}% ({binary_bytes} of {binary_total_bytes})",
            )
            .expect("the progress template is valid")
            .progress_chars("#-");
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
        });
        Progress { bar }
    }

    pub fn update(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
