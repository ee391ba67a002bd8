//! The progress bar (the book's `tqdm`): `indicatif` on stderr, so that
//! stdout keeps only the report, and hidden when stderr is not a terminal
//! (pipes, CI logs, tests) or in verbose mode.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A progress bar over `total` downloads, or nothing at all.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar on stderr when `wanted` and stderr is a terminal; hidden otherwise.
    pub fn new(total: usize, wanted: bool) -> Self {
        let target = if wanted && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        // tqdm's look: ` 32%|██████▎      | 63/194 [00:01<00:03, 52.3/s]`.
        let style = ProgressStyle::with_template(
            "{percent:>3}%|{wide_bar}| {pos}/{len} [{elapsed_precise}<{eta_precise}, {rate}]",
        )
        .expect("the template is valid")
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}/s", state.per_sec());
            },
        )
        .progress_chars("█▉▊▋▌▍▎▏ ");
        bar.set_style(style);
        Progress { bar }
    }

    /// One more download is done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Leaves the finished bar on screen and moves below it.
    ///
    /// indicatif leaves the cursor at the end of the last frame. When the
    /// bar fills the screen's width the terminal wraps before the next
    /// character, but when it is narrower (a terminal that reports fewer
    /// columns than it shows, a resized window) the summary would be glued
    /// to it: so the line is ended here. After a full-width line the cursor
    /// waits in the last column, and `\n` (a CR LF on a terminal) lands on
    /// the next line without a blank one.
    pub fn finish(&self) {
        self.bar.finish();
        if !self.bar.is_hidden() {
            eprintln!();
        }
    }

    /// Whether anything is drawn.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}
