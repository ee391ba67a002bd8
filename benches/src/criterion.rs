//! Finding and reading criterion's results.
//!
//! For each benchmark, criterion (0.5 to 0.8) writes a folder `<criterion dir>/<dir>/new/`
//! with (among others) the JSON files this module reads:
//!
//! * `benchmark.json`: the ids as the bench wrote them (`group_id`, `function_id`, an optional
//!   `value_str` parameter) and the group's `throughput` (`{"Elements": n}` or `{"Bytes": n}`).
//! * `estimates.json`: statistics of the time of *one iteration*, in nanoseconds; we take the
//!   median's point estimate (robust against the outliers two shared cores produce).
//! * `sample.json` (optional): the iteration counts and times of every sample, which say what
//!   really ran (the page prints it beside each group's settings).
//!
//! The folder name is criterion's sanitised id (`thread_pool/round_trip` becomes
//! `thread_pool_round_trip/...`, long ids are cut), so we never build paths from ids: we walk
//! the tree, find every `new/benchmark.json` and trust the ids written inside it.
//!
//! A result left over from an older run would silently pose as a fresh one, so the scan can be
//! given the time the run started: older `new/` folders are reported as stale and skipped.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::figure::{Figures, Origin, Sample, Throughput};

/// The parts of `benchmark.json` the report needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BenchmarkId {
    /// The group, e.g. `"thread_pool/round_trip"`.
    pub group_id: String,
    /// The function inside the group, e.g. `"ours"`.
    pub function_id: Option<String>,
    /// A parameter given with `BenchmarkId::new(name, param)`, if any.
    pub value_str: Option<String>,
    /// What one iteration processes, if the group set it.
    pub throughput: Option<ThroughputJson>,
}

impl BenchmarkId {
    /// The name the report files this result under: the function id, with `/parameter`
    /// appended when the bench used one.
    pub fn who(&self) -> String {
        let function = self.function_id.as_deref().unwrap_or("");
        match &self.value_str {
            Some(value) if function.is_empty() => value.clone(),
            Some(value) => format!("{function}/{value}"),
            None => function.to_string(),
        }
    }
}

/// Criterion's serialised `Throughput` (an externally tagged enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ThroughputJson {
    /// Bytes per iteration, shown with binary prefixes by criterion.
    Bytes(u64),
    /// Bytes per iteration, shown with decimal prefixes by criterion.
    BytesDecimal(u64),
    /// Elements per iteration.
    Elements(u64),
}

impl From<ThroughputJson> for Throughput {
    fn from(t: ThroughputJson) -> Self {
        match t {
            ThroughputJson::Bytes(n) | ThroughputJson::BytesDecimal(n) => Throughput::Bytes(n),
            ThroughputJson::Elements(n) => Throughput::Elements(n),
        }
    }
}

/// One statistic from `estimates.json`.
#[derive(Debug, Clone, Copy, Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// The parts of `estimates.json` the report needs (all in nanoseconds per iteration).
#[derive(Debug, Clone, Copy, Deserialize)]
struct Estimates {
    median: Estimate,
}

/// What criterion really measured for one benchmark (from `sample.json`): the settings a
/// group asked for are one thing, the samples taken another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Number of samples.
    pub samples: usize,
    /// Iterations over all samples.
    pub iterations: f64,
    /// Measured time over all samples, in seconds (warm-up not included).
    pub seconds: f64,
}

/// The parts of `sample.json` the report needs.
#[derive(Debug, Clone, Deserialize)]
struct SampleJson {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// Reads `sample.json` text.
pub fn parse_sample(text: &str) -> Result<Measured, String> {
    let sample: SampleJson = serde_json::from_str(text).map_err(|e| format!("sample.json: {e}"))?;
    Ok(Measured {
        samples: sample.iters.len(),
        iterations: sample.iters.iter().sum(),
        seconds: sample.times.iter().sum::<f64>() * 1e-9,
    })
}

/// One benchmark's result: its ids and its median iteration time.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The ids and throughput from `benchmark.json`.
    pub id: BenchmarkId,
    /// Median time of one iteration, in seconds.
    pub seconds_per_iter: f64,
    /// What was measured, if `sample.json` was there.
    pub measured: Option<Measured>,
}

impl BenchResult {
    /// The result as a store sample.
    pub fn sample(&self) -> Sample {
        Sample::Criterion {
            seconds_per_iter: self.seconds_per_iter,
            throughput: self.id.throughput.map(Throughput::from),
        }
    }
}

/// Parses one benchmark's pair of files (given as text, so tests can feed recorded samples).
pub fn parse_pair(benchmark_json: &str, estimates_json: &str) -> Result<BenchResult, String> {
    let id: BenchmarkId =
        serde_json::from_str(benchmark_json).map_err(|e| format!("benchmark.json: {e}"))?;
    let estimates: Estimates =
        serde_json::from_str(estimates_json).map_err(|e| format!("estimates.json: {e}"))?;
    let ns = estimates.median.point_estimate;
    if !ns.is_finite() || ns <= 0.0 {
        return Err(format!(
            "estimates.json: median {ns} ns is not a positive time"
        ));
    }
    Ok(BenchResult {
        id,
        seconds_per_iter: ns * 1e-9,
        measured: None,
    })
}

/// What a scan of the criterion folder found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Fresh, readable results.
    pub results: Vec<BenchResult>,
    /// Results older than the run (folders, for the report's notes).
    pub stale: Vec<PathBuf>,
    /// Folders that could not be read, with the reason.
    pub errors: Vec<String>,
}

impl Scan {
    /// Files every fresh result into `figures` under (group id + `suffix`, who), as `round`
    /// with `origin`.
    pub fn add_to(&self, figures: &mut Figures, suffix: &str, round: u32, origin: Option<&Origin>) {
        for result in &self.results {
            figures.insert_round(
                &format!("{}{suffix}", result.id.group_id),
                &result.id.who(),
                round,
                result.sample(),
                origin.cloned(),
            );
        }
    }
}

/// The criterion folder could not be scanned at all.
#[derive(Debug)]
pub struct ScanError {
    /// The folder.
    pub dir: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read criterion results in {}: {} (run the benches first, or pass \
             --criterion-dir)",
            self.dir.display(),
            self.source
        )
    }
}

impl std::error::Error for ScanError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Walks `dir` for `*/new/benchmark.json` and reads each result. With `since`, results whose
/// `estimates.json` was last written before that time are listed as stale instead.
///
/// A missing `dir` is an error (nothing was benchmarked); a broken folder inside it is only
/// noted in [`Scan::errors`], so one bad bench never hides the others.
pub fn scan(dir: &Path, since: Option<SystemTime>) -> Result<Scan, ScanError> {
    let mut scan = Scan::default();
    let mut pending = vec![dir.to_path_buf()];
    let mut first = true;
    while let Some(folder) = pending.pop() {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(source) if first => {
                return Err(ScanError {
                    dir: folder,
                    source,
                })
            }
            Err(e) => {
                scan.errors.push(format!("{}: {e}", folder.display()));
                continue;
            }
        };
        first = false;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                // criterion's own HTML report folders hold no results.
                if path.file_name().is_some_and(|n| n != "report") {
                    pending.push(path);
                }
            } else if path.file_name().is_some_and(|n| n == "benchmark.json")
                && folder.file_name().is_some_and(|n| n == "new")
            {
                read_one(&folder, since, &mut scan);
            }
        }
    }
    // Directory order is arbitrary; a stable order keeps the report reproducible.
    scan.results
        .sort_by(|a, b| (&a.id.group_id, a.id.who()).cmp(&(&b.id.group_id, b.id.who())));
    scan.stale.sort();
    scan.errors.sort();
    Ok(scan)
}

/// Reads the pair of files in one `new/` folder into `scan`.
fn read_one(new_dir: &Path, since: Option<SystemTime>, scan: &mut Scan) {
    let estimates_path = new_dir.join("estimates.json");
    if let Some(since) = since {
        let modified = fs::metadata(&estimates_path).and_then(|m| m.modified());
        if modified.map_or(true, |m| m < since) {
            scan.stale.push(new_dir.to_path_buf());
            return;
        }
    }
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let pair = read(&new_dir.join("benchmark.json"))
        .and_then(|b| read(&estimates_path).map(|e| (b, e)))
        .and_then(|(b, e)| parse_pair(&b, &e));
    match pair {
        Ok(mut result) => {
            // Optional: recorded samples may keep only the two files above.
            result.measured = fs::read_to_string(new_dir.join("sample.json"))
                .ok()
                .and_then(|t| parse_sample(&t).ok());
            scan.results.push(result)
        }
        Err(e) => scan.errors.push(format!("{}: {e}", new_dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::Kind;

    const BENCH: &str = r#"{"group_id":"thread_pool/throughput_200k","function_id":"ours",
        "value_str":null,"throughput":{"Elements":200000},
        "full_id":"thread_pool/throughput_200k/ours",
        "directory_name":"thread_pool_throughput_200k/ours","title":"x"}"#;
    const ESTIMATES: &str = r#"{"mean":{"point_estimate":41000000.0},
        "median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,
        "upper_bound":2.0},"point_estimate":40000000.0,"standard_error":0.1}}"#;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/legacy/criterion")
    }

    #[test]
    fn a_pair_parses_into_seconds_and_throughput() {
        let r = parse_pair(BENCH, ESTIMATES).unwrap();
        assert_eq!(r.id.group_id, "thread_pool/throughput_200k");
        assert_eq!(r.id.who(), "ours");
        assert!((r.seconds_per_iter - 0.04).abs() < 1e-12);
        let rate = r.sample().as_kind(Kind::Rate).unwrap();
        assert!((rate.value - 5e6).abs() < 1e-3);
    }

    #[test]
    fn a_parameter_is_appended_to_the_function_id() {
        let json = r#"{"group_id":"g","function_id":"ours","value_str":"4","throughput":null}"#;
        let r = parse_pair(json, ESTIMATES).unwrap();
        assert_eq!(r.id.who(), "ours/4");
        assert_eq!(r.id.throughput, None);
    }

    #[test]
    fn sample_json_gives_what_was_really_measured() {
        let m = parse_sample(
            r#"{"sampling_mode":"Flat","iters":[100.0,100.0],"times":[2000000.0,3000000.0]}"#,
        )
        .unwrap();
        assert_eq!(m.samples, 2);
        assert_eq!(m.iterations, 200.0);
        assert!((m.seconds - 0.005).abs() < 1e-12);
        assert!(parse_sample("{}").is_err());
    }

    #[test]
    fn bad_json_and_bad_times_are_errors() {
        assert!(parse_pair("{", ESTIMATES)
            .unwrap_err()
            .contains("benchmark.json"));
        let zero = r#"{"median":{"point_estimate":0.0}}"#;
        assert!(parse_pair(BENCH, zero)
            .unwrap_err()
            .contains("not a positive time"));
    }

    #[test]
    fn scanning_the_recorded_samples_finds_every_bench_by_its_written_ids() {
        let scan = scan(&data_dir(), None).unwrap();
        assert!(scan.errors.is_empty(), "{:?}", scan.errors);
        let ids: Vec<(String, String)> = scan
            .results
            .iter()
            .map(|r| (r.id.group_id.clone(), r.id.who()))
            .collect();
        // The folder is `thread_pool_round_trip`, the id inside keeps its slash.
        assert!(ids.contains(&("thread_pool/round_trip".into(), "rayon_install".into())));
        assert!(ids.contains(&("process_pool/payload_16mib".into(), "raw_pipe".into())));
        assert!(ids.contains(&("crypto/aes_ctr".into(), "ctr_crate".into())));
        let payload = scan
            .results
            .iter()
            .find(|r| r.id.group_id == "process_pool/payload_16mib")
            .unwrap();
        // 16 MiB in and 16 MiB out: the bench counts both ways.
        assert_eq!(payload.id.throughput, Some(ThroughputJson::Bytes(32 << 20)));
    }

    #[test]
    fn results_older_than_the_run_are_stale() {
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        let scan = scan(&data_dir(), Some(later)).unwrap();
        assert!(scan.results.is_empty());
        assert!(!scan.stale.is_empty());
    }

    #[test]
    fn a_missing_folder_is_an_error_that_says_what_to_do() {
        let err = scan(Path::new("/nonexistent/criterion"), None).unwrap_err();
        assert!(err.to_string().contains("run the benches first"));
    }
}
