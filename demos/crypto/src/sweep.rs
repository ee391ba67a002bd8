//! The Table 17-1 experiment: the same batch of jobs sequentially and on thread
//! and process pools of 1..N workers, R runs each, reported as median times and
//! speedups over the sequential median.
//!
//! The book averaged 64 runs of one program with the worker count cycled
//! 4,3,2,1,1,2,3,4,... so that slow drifts of the machine hit every count
//! alike. We interleave the same way: each *round* runs every configuration once
//! (the worker counts going up in even rounds and down in odd ones), and the
//! rounds repeat R times. We report the median rather than the mean, which a
//! single disturbed run (on a shared 2-core machine, that happens) cannot drag.
//!
//! Every run's results are checked against the first sequential run's (same
//! sizes, same digests), so a fast but wrong executor cannot win.

use std::fmt::Write as _;

use crate::executors::{run, ExecutorKind, RunConfig, RunError};
use crate::jobs::{job_specs, JobResult};

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Pools of 1..=max_workers workers are tried.
    pub max_workers: usize,
    /// Runs per configuration.
    pub runs: usize,
    /// Jobs per run.
    pub jobs: usize,
    /// Middle job size in bytes.
    pub size: usize,
    /// Send the data to the workers instead of making it there.
    pub ship_data: bool,
    /// Seed of the data.
    pub seed: u64,
}

/// One configuration's timings.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// The executor.
    pub executor: ExecutorKind,
    /// Pool size (1 for sequential).
    pub workers: usize,
    /// Runs measured.
    pub runs: usize,
    /// Median elapsed seconds.
    pub median: f64,
    /// Fastest run, seconds.
    pub min: f64,
    /// Slowest run, seconds.
    pub max: f64,
    /// Sequential median / this median.
    pub speedup: f64,
}

/// The outcome of a sweep: one row per configuration, sequential first, then
/// threads and processes by worker count.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// The rows.
    pub rows: Vec<SweepRow>,
}

/// Runs the sweep, reporting each run through `progress`.
pub fn sweep(config: &SweepConfig, mut progress: impl FnMut(&str)) -> Result<Sweep, RunError> {
    let specs = job_specs(config.jobs, config.size, config.seed);
    let mut configurations = vec![(ExecutorKind::Seq, 1)];
    for workers in 1..=config.max_workers {
        configurations.push((ExecutorKind::Threads, workers));
        configurations.push((ExecutorKind::Procs, workers));
        if crate::celery_jobs::broker().is_some() {
            configurations.push((ExecutorKind::Celery, workers));
        }
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); configurations.len()];
    let mut expected: Option<Vec<JobResult>> = None;

    for round in 0..config.runs {
        // Even rounds go up in workers, odd rounds come down (seq stays first).
        let mut order: Vec<usize> = (0..configurations.len()).collect();
        if round % 2 == 1 {
            order[1..].reverse();
        }
        for index in order {
            let (executor, workers) = configurations[index];
            let run_config = RunConfig {
                executor,
                workers,
                specs: specs.clone(),
                ship_data: config.ship_data,
                trace: None,
            };
            let report = run(&run_config, |_| {})?;
            let mut results = report.results;
            results.sort_by_key(|r| r.index);
            match &expected {
                None => expected = Some(results),
                Some(expected) if *expected != results => {
                    return Err(RunError::Executor {
                        executor,
                        message: format!(
                            "{workers} workers returned different results than the first run"
                        ),
                    })
                }
                Some(_) => {}
            }
            let seconds = report.elapsed.as_secs_f64();
            progress(&format!(
                "run {}/{}: {:>7} x{}: {:.2}s",
                round + 1,
                config.runs,
                executor.name(),
                workers,
                seconds
            ));
            times[index].push(seconds);
        }
    }

    let baseline = median(&times[0]);
    let rows = configurations
        .iter()
        .zip(&times)
        .map(|(&(executor, workers), runs)| {
            let median = median(runs);
            SweepRow {
                executor,
                workers,
                runs: runs.len(),
                median,
                min: runs.iter().copied().fold(f64::INFINITY, f64::min),
                max: runs.iter().copied().fold(0.0, f64::max),
                speedup: if median > 0.0 { baseline / median } else { 0.0 },
            }
        })
        .collect();
    let mut sweep = Sweep { rows };
    sweep.sort();
    Ok(sweep)
}

/// The median of a non-empty sample (the mean of the middle two for even sizes).
pub fn median(sample: &[f64]) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The CSV header.
pub const CSV_HEADER: &str = "executor,workers,runs,median_s,min_s,max_s,speedup";

impl Sweep {
    /// Sequential first, then threads, then processes, each by worker count.
    fn sort(&mut self) {
        self.rows.sort_by_key(|r| (r.executor, r.workers));
    }

    /// The rows of one executor.
    pub fn rows_of(&self, executor: ExecutorKind) -> impl Iterator<Item = &SweepRow> {
        self.rows.iter().filter(move |r| r.executor == executor)
    }

    /// The table for people, in Markdown (it pastes into docs as is).
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("| executor | workers | median | min | max | speedup |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} s | {:.2} s | {:.2} s | {:.2}x |",
                r.executor, r.workers, r.median, r.min, r.max, r.speedup
            );
        }
        out
    }

    /// The same rows as CSV, with full precision.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        out.push_str(CSV_HEADER);
        out.push('\n');
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{},{},{},{:.6},{:.6},{:.6},{:.6}",
                r.executor, r.workers, r.runs, r.median, r.min, r.max, r.speedup
            );
        }
        out
    }

    /// Reads back what [`csv`](Self::csv) wrote.
    pub fn parse_csv(text: &str) -> Result<Sweep, CsvError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim() == CSV_HEADER => {}
            _ => {
                return Err(CsvError {
                    line: 1,
                    message: format!("expected the header `{CSV_HEADER}`"),
                })
            }
        }
        let mut rows = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let line_no = i + 1;
            let error = |message: String| CsvError {
                line: line_no,
                message,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != 7 {
                return Err(error(format!("expected 7 fields, found {}", fields.len())));
            }
            let executor = ExecutorKind::from_name(fields[0])
                .ok_or_else(|| error(format!("unknown executor `{}`", fields[0])))?;
            let int = |s: &str| {
                s.parse::<usize>()
                    .map_err(|_| error(format!("`{s}` is not a count")))
            };
            let num = |s: &str| {
                s.parse::<f64>()
                    .map_err(|_| error(format!("`{s}` is not a number")))
            };
            rows.push(SweepRow {
                executor,
                workers: int(fields[1])?,
                runs: int(fields[2])?,
                median: num(fields[3])?,
                min: num(fields[4])?,
                max: num(fields[5])?,
                speedup: num(fields[6])?,
            });
        }
        Ok(Sweep { rows })
    }
}

/// A line of a sweep CSV that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sweep CSV line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CsvError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn bad_csv_is_reported_with_its_line() {
        let err = Sweep::parse_csv("nope\n").unwrap_err();
        assert_eq!(err.line, 1);
        let text = format!("{CSV_HEADER}\nseq,1,3,1.0,1.0,1.0,1.0\nfibers,1,3,1,1,1,1\n");
        let err = Sweep::parse_csv(&text).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("fibers"), "{err}");
        let text = format!("{CSV_HEADER}\nseq,1,3,1.0\n");
        assert_eq!(Sweep::parse_csv(&text).unwrap_err().line, 2);
    }
}
