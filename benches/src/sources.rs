//! Loading one run's raw results into the figure store.
//!
//! A run leaves its raw outputs in plain files, and the page is built from those files only
//! (the layout is in [`crate::provenance`]):
//!
//! * one folder per round, `rounds/<condition>-<n>/`, with criterion's results of that
//!   round, the benches' side figures (CPU time per operation) and the settings each group
//!   ran with, and a stamp (commit, time);
//! * JSON-lines files (`*.jsonl`): the Python peers' output as printed, and the report's own
//!   timings of whole commands (flag downloads) in the same format with `"who": "ours"`;
//! * `crypto-sweep.csv`, as the crypto demo writes it;
//! * `run.json`, the stamp of those files.
//!
//! A figure of a busy round is filed under its op with [`BUSY`] appended. A folder in the
//! older layout (a bare `criterion/` folder, no stamps) loads as one unstamped quiet round,
//! whose figures are shown but never judged.
//!
//! The live run writes these and then loads them exactly like `--from-samples` loads the
//! recorded ones in `tests/data/`, so the tested path and the real path are the same code.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::criterion::{self, Measured};
use crate::figure::{Figures, Origin};
use crate::peers;
use crate::provenance::{self, Stamp, ROUNDS_DIR, ROUND_STAMP, RUN_STAMP};
use crate::sweep::{self, Sweep};
use crate::targets::BUSY;

/// Name of the sweep file inside a results folder.
pub const SWEEP_CSV: &str = "crypto-sweep.csv";
/// The benches' side figures inside a round folder.
pub const SIDE_FIGURES: &str = "side-figures.jsonl";
/// The Celery rows' figures of one round (written by `live::run_celery`, same format).
pub const CELERY_FIGURES: &str = "celery.jsonl";
/// The groups' settings inside a round folder.
pub const SETTINGS: &str = "settings.jsonl";
/// The condition of the crypto sweep's rounds (`rounds/crypto-<n>/`, each with its
/// [`SWEEP_CSV`] and its stamp).
pub const CRYPTO_CONDITION: &str = "crypto";

/// Where one run's raw results are.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Folder with `rounds/`, the `*.jsonl` files, `crypto-sweep.csv` and `run.json`.
    pub results_dir: PathBuf,
    /// A criterion folder in the older layout, loaded as one unstamped round.
    pub criterion_dir: Option<PathBuf>,
}

impl Sources {
    /// A results folder; a bare `DIR/criterion` (the older layout) is read too.
    pub fn samples(dir: &Path) -> Sources {
        let legacy = dir.join("criterion");
        Sources {
            results_dir: dir.to_path_buf(),
            criterion_dir: legacy.is_dir().then_some(legacy),
        }
    }
}

/// One round as loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundInfo {
    /// `quiet` or `busy`.
    pub condition: String,
    /// Its number within the condition.
    pub round: u32,
    /// Its stamp, if it had a readable one.
    pub stamp: Option<Stamp>,
    /// How many criterion results it held.
    pub results: usize,
}

/// The settings a group ran with in one round (the bench writes them as it starts the group).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GroupSettings {
    /// The criterion group id.
    pub group: String,
    /// Warm-up time per function, seconds.
    pub warm_up_s: f64,
    /// Measurement time per function, seconds.
    pub measurement_s: f64,
    /// Samples per function.
    pub samples: usize,
    /// Criterion's sampling mode.
    pub sampling: String,
}

/// What criterion measured for one function in one round.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionRun {
    /// The group id (with [`BUSY`] for a busy round).
    pub group: String,
    /// The function id.
    pub who: String,
    /// The round.
    pub round: u32,
    /// Samples, iterations, measured time.
    pub measured: Measured,
}

/// Everything loaded, plus what went wrong on the way (for the page's notes).
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every figure found.
    pub figures: Figures,
    /// The crypto sweep, for its plot.
    pub sweep: Option<Sweep>,
    /// The rounds found, in order.
    pub rounds: Vec<RoundInfo>,
    /// The settings of each group (busy groups with [`BUSY`]), one entry per group and
    /// distinct settings.
    pub settings: Vec<GroupSettings>,
    /// What criterion really measured, per function and round.
    pub runs: Vec<FunctionRun>,
    /// The run's stamp (`run.json`), if there was one.
    pub run_stamp: Option<Stamp>,
    /// Problems met while loading; none of them is fatal.
    pub notes: Vec<String>,
}

/// Loads every source it can find; whatever is missing becomes a note.
pub fn load(sources: &Sources) -> Loaded {
    let mut loaded = Loaded::default();
    let dir = &sources.results_dir;

    // The run-wide files first, stamped with run.json.
    let mut run_wide = Figures::new();
    for path in jsonl_files(dir) {
        read_jsonl(&path, &mut run_wide, &mut loaded.notes);
    }
    // The sweep of an older run, once for the whole run; a live run now leaves one per crypto
    // round (`rounds/crypto-<n>/`), read with the rounds below.
    let csv = dir.join(SWEEP_CSV);
    if let Ok(text) = fs::read_to_string(&csv) {
        match sweep::parse(&text) {
            Ok(sweep) => {
                sweep.add_to(&mut run_wide);
                loaded.sweep = Some(sweep);
            }
            Err(e) => loaded.notes.push(e.to_string()),
        }
    }
    match provenance::read(dir, RUN_STAMP) {
        Ok(stamp) => {
            run_wide.stamp_unstamped(&stamp.origin());
            loaded.run_stamp = Some(stamp);
        }
        Err(_) if run_wide.is_empty() => {}
        Err(e) => loaded.notes.push(format!(
            "no run stamp, so the peers', sweep's and flag figures are not judged ({e})"
        )),
    }
    loaded.figures.merge(run_wide);

    // Then each round.
    let mut rounds = round_dirs(&dir.join(ROUNDS_DIR));
    if let Some(legacy) = &sources.criterion_dir {
        rounds.insert(0, ("quiet".to_string(), 1, legacy.clone(), false));
    }
    if rounds.is_empty() {
        loaded.notes.push(format!(
            "no criterion results: {} holds no rounds (run the benches first)",
            dir.display()
        ));
    }
    for (condition, round, path, is_round_dir) in rounds {
        load_round(&mut loaded, &condition, round, &path, is_round_dir);
    }
    if loaded.sweep.is_none() {
        loaded.notes.push(format!(
            "no crypto sweep results (neither {} nor {}/{CRYPTO_CONDITION}-<n>/{SWEEP_CSV} found)",
            csv.display(),
            dir.join(ROUNDS_DIR).display()
        ));
    }
    loaded
}

fn read_jsonl(path: &Path, figures: &mut Figures, notes: &mut Vec<String>) {
    match fs::read_to_string(path) {
        Ok(text) => {
            let parsed = peers::parse(&text);
            parsed.add_to(figures);
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            notes.extend(parsed.notes.iter().map(|n| format!("{name}: {n}")));
        }
        Err(e) => notes.push(format!("{}: {e}", path.display())),
    }
}

/// `(condition, round, folder, true)` for every `rounds/<condition>-<n>`, quiet first, each
/// condition in round order.
fn round_dirs(rounds: &Path) -> Vec<(String, u32, PathBuf, bool)> {
    let mut found: Vec<(String, u32, PathBuf, bool)> = fs::read_dir(rounds)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let (condition, n) = provenance::parse_round_dir_name(&name)?;
                    Some((condition, n, e.path(), true))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by(|a, b| (a.0 != "quiet", &a.0, a.1).cmp(&(b.0 != "quiet", &b.0, b.1)));
    found
}

fn load_round(loaded: &mut Loaded, condition: &str, round: u32, path: &Path, is_round_dir: bool) {
    let suffix = if condition == "busy" { BUSY } else { "" };
    let name = provenance::round_dir_name(condition, round);
    let stamp = if is_round_dir {
        match provenance::read(path, ROUND_STAMP) {
            Ok(stamp) => Some(stamp),
            Err(e) => {
                loaded.notes.push(format!(
                    "round {name} has no stamp, so it is not judged: {e}"
                ));
                None
            }
        }
    } else {
        loaded.notes.push(format!(
            "{} is an unstamped criterion folder: its figures are shown, not judged",
            path.display()
        ));
        None
    };
    let origin: Option<Origin> = stamp.as_ref().map(Stamp::origin);
    let criterion_dir = if is_round_dir {
        path.join("criterion")
    } else {
        path.to_path_buf()
    };
    let mut results = 0;
    // A crypto round holds a sweep, no criterion results.
    let scan = if condition == CRYPTO_CONDITION && !criterion_dir.exists() {
        Err("no criterion folder".to_string())
    } else {
        criterion::scan(&criterion_dir, None).map_err(|e| e.to_string())
    };
    match scan {
        Ok(scan) => {
            scan.add_to(&mut loaded.figures, suffix, round, origin.as_ref());
            results = scan.results.len();
            for r in &scan.results {
                if let Some(measured) = r.measured {
                    loaded.runs.push(FunctionRun {
                        group: format!("{}{suffix}", r.id.group_id),
                        who: r.id.who(),
                        round,
                        measured,
                    });
                }
            }
            loaded.notes.extend(
                scan.errors
                    .iter()
                    .map(|e| format!("criterion ({name}): {e}")),
            );
        }
        Err(_) if condition == CRYPTO_CONDITION => {}
        Err(e) => loaded.notes.push(format!("round {name}: {e}")),
    }
    // A crypto sweep run as a round, with the round's stamp.
    let csv = path.join(SWEEP_CSV);
    if csv.is_file() {
        match fs::read_to_string(&csv)
            .map_err(|e| e.to_string())
            .and_then(|text| sweep::parse(&text).map_err(|e| e.to_string()))
        {
            Ok(sweep) => {
                sweep.add_to_round(&mut loaded.figures, round, origin.as_ref());
                loaded.sweep.get_or_insert(sweep);
            }
            Err(e) => loaded.notes.push(format!("round {name}: {e}")),
        }
    }
    // Side figures (CPU time per operation), with the round's stamp.
    for side in [path.join(SIDE_FIGURES), path.join(CELERY_FIGURES)] {
        if !side.is_file() {
            continue;
        }
        let mut figures = Figures::new();
        read_jsonl(&side, &mut figures, &mut loaded.notes);
        for key in figures.keys().cloned().collect::<Vec<_>>() {
            for (_, sample) in figures.samples(&key.op, &key.who) {
                loaded.figures.insert_round(
                    &format!("{}{suffix}", key.op),
                    &key.who,
                    round,
                    sample,
                    origin.clone(),
                );
            }
        }
    }
    if let Ok(text) = fs::read_to_string(path.join(SETTINGS)) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<GroupSettings>(line) {
                Ok(mut s) => {
                    s.group.push_str(suffix);
                    if !loaded.settings.contains(&s) {
                        loaded.settings.push(s);
                    }
                }
                Err(e) => loaded.notes.push(format!("{name}/{SETTINGS}: {e}")),
            }
        }
    }
    loaded.rounds.push(RoundInfo {
        condition: condition.to_string(),
        round,
        stamp,
        results,
    });
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

    fn data() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    }

    #[test]
    fn the_recorded_samples_load_without_notes() {
        let loaded = load(&Sources::samples(&data()));
        assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
        assert!(loaded.sweep.is_some());
        assert!(loaded.run_stamp.is_some());
        assert!(loaded
            .figures
            .get("thread_pool/round_trip", "python", Kind::Time)
            .is_some());
        let hot = loaded
            .figures
            .rounds("thread_pool/round_trip_hot", "ours", Kind::Time);
        assert!(hot.len() >= 3, "three quiet rounds: {hot:?}");
        assert!(loaded
            .figures
            .get("thread_pool/round_trip_hot", "ours/cpu", Kind::Time)
            .is_some());
        assert!(loaded
            .figures
            .get("thread_pool/throughput_200k@busy", "ours", Kind::Rate)
            .is_some());
        assert!(loaded.rounds.iter().all(|r| r.stamp.is_some()));
        assert!(loaded
            .settings
            .iter()
            .any(|s| s.group == "thread_pool/round_trip_idle"));
        assert!(!loaded.runs.is_empty());
    }

    /// Crypto sweeps run as rounds (`rounds/crypto-<n>/`, as `live::run_crypto_sweep` writes
    /// them) are judged round by round, with each round's load.
    #[test]
    fn crypto_sweep_rounds_are_judged_with_their_load() {
        use crate::provenance::RoundLoad;
        use crate::table::{self, Judging};
        use crate::targets::{ops, Verdict, ROWS};
        let dir = std::env::temp_dir().join(format!("benches-crypto-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (round, speedup, peak) in [(1, 1.80, 1.0), (2, 1.90, 6.0), (3, 1.95, 1.0)] {
            let rd = dir
                .join(ROUNDS_DIR)
                .join(provenance::round_dir_name(CRYPTO_CONDITION, round));
            fs::create_dir_all(&rd).unwrap();
            let stamp = Stamp {
                commit: "abc".into(),
                started: "t".into(),
                finished: None,
                condition: CRYPTO_CONDITION.into(),
                round,
                load: Some(RoundLoad {
                    samples: vec![peak],
                    threshold: 2.5,
                }),
            };
            provenance::write(&rd, ROUND_STAMP, &stamp).unwrap();
            let csv = format!(
                "executor,workers,runs,median_s,min_s,max_s,speedup\n\
                 seq,1,1,2.0,2.0,2.0,1.0\nthreads,2,1,1.0,1.0,1.0,{speedup}\n\
                 procs,2,1,1.0,1.0,1.0,{speedup}\n"
            );
            fs::write(rd.join(SWEEP_CSV), csv).unwrap();
        }
        let loaded = load(&Sources::samples(&dir));
        fs::remove_dir_all(&dir).unwrap();
        let unexpected: Vec<&String> = loaded
            .notes
            .iter()
            .filter(|n| !n.contains("run stamp") && !n.contains("no criterion results"))
            .collect();
        assert!(unexpected.is_empty(), "{unexpected:?}");
        let threads = loaded
            .figures
            .rounds(ops::CRYPTO_SPEEDUP_2, "threads", Kind::Speedup);
        assert_eq!(threads.len(), 3, "{threads:?}");
        assert!(loaded.sweep.is_some(), "a round's sweep is plotted");
        let rows = table::build(ROWS, &loaded.figures, Judging { commit: "abc" });
        let row = rows
            .iter()
            .find(|r| r.spec.op == ops::CRYPTO_SPEEDUP_2 && r.spec.ours == "threads")
            .unwrap();
        // 1.80x, 1.90x, 1.95x against >= 1.85x: rounds on both sides.
        assert!(
            matches!(&row.verdict, Verdict::Unsettled(t)
                if t.contains("1.80x-1.95x")
                && t.ends_with("rests on 2 clean rounds of 3 (1 beside foreign load)")),
            "{:?}",
            row.verdict
        );
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
