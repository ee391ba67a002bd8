//! The progress bar (the book's `tqdm`): `indicatif` on stderr, so that
//! stdout keeps only the report, and hidden when stderr is not a terminal
//! (pipes, CI logs, tests) or in verbose mode.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
        let style = ProgressStyle::with_template(
            "{percent:>3}%|{wide_bar}| {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}]",
        )
        .expect("the template is valid");
        bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
        Progress { bar }
    }

    /// One more download is done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Leaves the finished bar on screen and moves below it.
    pub fn finish(&self) {
        self.bar.finish();
    }

    /// Whether anything is drawn.
    pub fn is_hidden(&self) -> bool {
        self.bar.is_hidden()
    }
}
