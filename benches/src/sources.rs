//! Loading one run's raw results into the figure store.
//!
//! A run leaves its raw outputs in plain files, and the page is built from those files only:
//!
//! * a criterion folder (`target/criterion`, or `<samples>/criterion`);
//! * JSON-lines files (`*.jsonl`): the Python peers' output as printed, and the report's own
//!   timings of whole commands (flag downloads) in the same format with `"who": "ours"`;
//! * `crypto-sweep.csv`, as the crypto demo writes it.
//!
//! The live run writes these and then loads them exactly like `--from-samples` loads the
//! recorded ones in `tests/data/`, so the tested path and the real path are the same code.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::criterion;
use crate::figure::Figures;
use crate::peers;
use crate::sweep::{self, Sweep};

/// Name of the sweep file inside a results folder.
pub const SWEEP_CSV: &str = "crypto-sweep.csv";

/// Where one run's raw results are.
#[derive(Clone, Debug)]
pub struct Sources {
    /// criterion's output folder.
    pub criterion_dir: PathBuf,
    /// Folder with the `*.jsonl` files and `crypto-sweep.csv`.
    pub results_dir: PathBuf,
    /// Ignore criterion results written before this time (stale runs).
    pub since: Option<SystemTime>,
}

impl Sources {
    /// A recorded samples folder: `DIR/criterion`, `DIR/*.jsonl`, `DIR/crypto-sweep.csv`.
    pub fn samples(dir: &Path) -> Sources {
        Sources {
            criterion_dir: dir.join("criterion"),
            results_dir: dir.to_path_buf(),
            since: None,
        }
    }
}

/// Everything loaded, plus what went wrong on the way (for the page's notes).
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every figure found.
    pub figures: Figures,
    /// The crypto sweep, for its plot.
    pub sweep: Option<Sweep>,
    /// Problems met while loading; none of them is fatal.
    pub notes: Vec<String>,
}

/// Loads every source it can find; whatever is missing becomes a note.
pub fn load(sources: &Sources) -> Loaded {
    let mut loaded = Loaded::default();
    match criterion::scan(&sources.criterion_dir, sources.since) {
        Ok(scan) => {
            scan.add_to(&mut loaded.figures);
            if !scan.stale.is_empty() {
                loaded.notes.push(format!(
                    "{} criterion result(s) older than this run were ignored (their bench did \
                     not run this time)",
                    scan.stale.len()
                ));
            }
            loaded
                .notes
                .extend(scan.errors.iter().map(|e| format!("criterion: {e}")));
        }
        Err(e) => loaded.notes.push(e.to_string()),
    }
    for path in jsonl_files(&sources.results_dir) {
        match fs::read_to_string(&path) {
            Ok(text) => {
                let parsed = peers::parse(&text);
                parsed.add_to(&mut loaded.figures);
                let name = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                loaded
                    .notes
                    .extend(parsed.notes.iter().map(|n| format!("{name}: {n}")));
            }
            Err(e) => loaded.notes.push(format!("{}: {e}", path.display())),
        }
    }
    let csv = sources.results_dir.join(SWEEP_CSV);
    match fs::read_to_string(&csv) {
        Ok(text) => match sweep::parse(&text) {
            Ok(sweep) => {
                sweep.add_to(&mut loaded.figures);
                loaded.sweep = Some(sweep);
            }
            Err(e) => loaded.notes.push(e.to_string()),
        },
        Err(_) => loaded.notes.push(format!(
            "no crypto sweep results ({} not found)",
            csv.display()
        )),
    }
    loaded
}

/// The `*.jsonl` files of `dir`, sorted by name (so later files win deterministically).
fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::Kind;

    #[test]
    fn the_recorded_samples_load_without_notes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let loaded = load(&Sources::samples(&dir));
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
        assert!(loaded.sweep.is_some());
        assert!(loaded
            .figures
            .get("thread_pool/round_trip", "python", Kind::Time)
            .is_some());
        assert!(loaded
            .figures
            .get("thread_pool/round_trip", "ours", Kind::Time)
            .is_some());
    }

    #[test]
    fn an_empty_folder_loads_nothing_and_says_why() {
        let dir = std::env::temp_dir().join(format!("benches-empty-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let loaded = load(&Sources::samples(&dir));
        fs::remove_dir_all(&dir).unwrap();
        assert!(loaded.figures.is_empty());
        assert!(loaded.sweep.is_none());
        assert!(
            loaded.notes.iter().any(|n| n.contains("criterion")),
            "{:?}",
            loaded.notes
        );
        assert!(
            loaded.notes.iter().any(|n| n.contains("crypto sweep")),
            "{:?}",
            loaded.notes
        );
    }
}
