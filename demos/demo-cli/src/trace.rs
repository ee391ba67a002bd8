//! `--trace FILE`, the same on every demo: record the schedule of the
//! demo's executor (`future::trace`) and write it when the demo ends.

use std::fmt;
use std::path::PathBuf;

use future::trace::Recorder;

/// The `--trace FILE` option; flatten it into a demo's arguments with
/// `#[command(flatten)]`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TraceArgs {
    /// Record when each task was submitted, started (on which worker) and
    /// ended, and write it to FILE at the end: an SVG timeline if FILE ends
    /// in .svg, else Chrome trace-event JSON (open it in
    /// https://ui.perfetto.dev or chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
}

impl TraceArgs {
    /// A recording, if `--trace` was given. Creates the file now, so that
    /// a path that cannot be written is refused before the demo runs.
    pub fn start(&self) -> Result<Option<Trace>, TraceError> {
        let Some(path) = self.trace.clone() else {
            return Ok(None);
        };
        if let Err(source) = std::fs::File::create(&path) {
            return Err(TraceError { path, source });
        }
        Ok(Some(Trace {
            path,
            recorder: Recorder::new(),
        }))
    }
}

/// A recording in progress: give [`recorder`](Self::recorder) to the
/// demo's executors, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct Trace {
    path: PathBuf,
    recorder: Recorder,
}

impl Trace {
    /// The recorder to build the demo's executors with.
    pub fn recorder(&self) -> Recorder {
        self.recorder.clone()
    }

    /// Writes the file.
    pub fn finish(self) -> Result<(), TraceError> {
        self.recorder
            .write_to(&self.path)
            .map_err(|source| TraceError {
                path: self.path,
                source,
            })
    }
}

/// `--trace FILE` could not be written.
#[derive(Debug)]
pub struct TraceError {
    path: PathBuf,
    source: std::io::Error,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot write the trace to {}: {} (is the directory there and writable?)",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
