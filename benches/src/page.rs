//! Putting the page together: table rows, plot files and the Markdown, written to disk.
//!
//! The plots are built from the same row specs as the table (our figure and each peer's), so
//! a plot can never show a number the table does not.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::figure::Figures;
use crate::machine::Machine;
use crate::markdown::{self, Page, PlotRef};
use crate::plot::{self, Bar, PlotError};
use crate::sources::Loaded;
use crate::table::{self, Judging, Row};
use crate::targets::{RowSpec, BUSY_ROWS, ROWS};

/// Folder for the SVGs, relative to the page.
pub const IMG_DIR: &str = "img";

/// The bar plots: file name, title, and the ops whose rows they draw.
const BAR_PLOTS: [(&str, &str, &[&str]); 2] = [
    (
        "thread-pool-throughput.svg",
        "Thread pool throughput",
        &["thread_pool/throughput_200k"],
    ),
    (
        "process-pool-throughput.svg",
        "Process pool throughput",
        &["process_pool/tiny_tasks", "process_pool/map_chunked"],
    ),
];

/// File name of the crypto sweep plot.
const SPEEDUP_PLOT: &str = "crypto-speedup.svg";

/// How the page was produced (printed in the "This run" table).
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The exact command line.
    pub command: String,
    /// A sentence on the mode.
    pub mode: String,
    /// Notes from running the steps (skipped, failed, timed out).
    pub notes: Vec<String>,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    /// The rows of the table, then the busy rows.
    pub rows: Vec<Row>,
    /// The page file.
    pub page: PathBuf,
    /// The plot files.
    pub plots: Vec<PathBuf>,
}

/// Writing the page failed.
#[derive(Debug)]
pub enum PageError {
    /// A file or folder could not be written.
    Io {
        /// Which.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A plot could not be drawn.
    Plot(PlotError),
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::Io { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            PageError::Plot(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PageError::Io { source, .. } => Some(source),
            PageError::Plot(e) => Some(e),
        }
    }
}

/// The bars for the rows of `ops`: ours first, then each measured peer.
pub fn bars_for(specs: &[RowSpec], figures: &Figures, ops: &[&str]) -> Vec<Bar> {
    let mut bars = Vec::new();
    for spec in specs.iter().filter(|s| ops.contains(&s.op)) {
        let what = short_title(spec.op);
        if let Some(figure) = figures.get(spec.op, spec.ours, spec.kind) {
            bars.push(Bar {
                label: format!("{what}: ours"),
                figure,
                ours: true,
            });
        }
        for peer in spec.peers {
            if let Some(figure) = figures.get(peer.op, peer.who, spec.kind) {
                bars.push(Bar {
                    label: format!("{what}: {}", peer.label),
                    figure,
                    ours: false,
                });
            }
        }
    }
    bars
}

/// `thread_pool/throughput_200k` -> `throughput 200k`.
fn short_title(op: &str) -> String {
    op.rsplit('/').next().unwrap_or(op).replace('_', " ")
}

/// Builds the table and plots from `loaded` and writes `page_path` and its SVGs (in
/// `img/` next to it).
pub fn write(
    loaded: &Loaded,
    machine: &Machine,
    run: &RunInfo,
    page_path: &Path,
) -> Result<Written, PageError> {
    let judging = Judging {
        commit: &machine.source,
    };
    let rows = table::build(ROWS, &loaded.figures, judging);
    let busy_rows = table::build(BUSY_ROWS, &loaded.figures, judging);
    let docs = page_path.parent().unwrap_or(Path::new("."));
    let img = docs.join(IMG_DIR);
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PageError::Io { path, source }
    };
    fs::create_dir_all(&img).map_err(io_err(&img))?;

    let mut svgs: Vec<(String, &str, String)> = Vec::new();
    for (file, title, ops) in BAR_PLOTS {
        let bars = bars_for(ROWS, &loaded.figures, ops);
        if let Some(svg) = plot::bar_chart(title, &bars).map_err(PageError::Plot)? {
            svgs.push((file.to_string(), title, svg));
        }
    }
    if let Some(sweep) = &loaded.sweep {
        let title = "Crypto jobs: speed-up against workers";
        if let Some(svg) = plot::speedup_chart(title, sweep).map_err(PageError::Plot)? {
            svgs.push((SPEEDUP_PLOT.to_string(), title, svg));
        }
    }
    let mut plot_refs = Vec::new();
    let mut plot_files = Vec::new();
    for (file, title, svg) in svgs {
        let path = img.join(&file);
        fs::write(&path, svg).map_err(io_err(&path))?;
        plot_refs.push(PlotRef {
            title: title.to_string(),
            path: format!("{IMG_DIR}/{file}"),
        });
        plot_files.push(path);
    }

    let mut notes = run.notes.clone();
    notes.extend(loaded.notes.iter().cloned());
    let all_specs: Vec<RowSpec> = ROWS.iter().chain(BUSY_ROWS).copied().collect();
    let unused = table::unused(&all_specs, &loaded.figures);
    let text = markdown::render(&Page {
        machine,
        command: &run.command,
        mode: &run.mode,
        rows: &rows,
        plots: &plot_refs,
        notes: &notes,
        unused: &unused,
        busy_rows: &busy_rows,
        rounds: &loaded.rounds,
        settings: &loaded.settings,
        runs: &loaded.runs,
    });
    fs::write(page_path, text).map_err(io_err(page_path))?;
    let mut rows = rows;
    rows.extend(busy_rows);
    Ok(Written {
        rows,
        page: page_path.to_path_buf(),
        plots: plot_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{Figure, Kind, Sample};

    #[test]
    fn bars_follow_the_rows_ours_first() {
        let mut figures = Figures::new();
        let rate = |v| Sample::Direct(Figure::new(v, Kind::Rate));
        figures.insert("process_pool/tiny_tasks", "python", rate(2.8e3));
        figures.insert("process_pool/tiny_tasks", "ours", rate(150e3));
        figures.insert("thread_pool/map_1m", "ours", rate(1e7));
        let bars = bars_for(ROWS, &figures, &["process_pool/tiny_tasks"]);
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].label, "tiny tasks: ours");
        assert!(bars[0].ours);
        assert_eq!(bars[1].label, "tiny tasks: Python concurrent.futures");
        assert!(!bars[1].ours);
    }
}
