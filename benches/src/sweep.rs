//! Reading the crypto worker sweep (`crypto-sweep --out DIR` writes `DIR/sweep.csv`).
//!
//! The sweep runs the same AES jobs sequentially, on N threads and on N processes, for each N
//! up to `--max-workers`, and writes one row per configuration:
//!
//! ```text
//! executor,workers,runs,median_s,min_s,max_s,speedup
//! seq,1,3,2.034,2.01,2.10,1.000000
//! threads,2,3,1.061,1.05,1.09,1.917000
//! procs,2,3,1.090,1.07,1.12,1.866000
//! ```
//!
//! `speedup` is the sequential median over the row's median. The reader finds the columns by
//! their header names (so a column added later does not break it) and keeps the `threads` and
//! `procs` rows.

use std::fmt;

use crate::figure::{Figure, Figures, Kind, Origin, Sample};
use crate::targets::ops;

/// One worker count's speed-ups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Number of workers.
    pub workers: u32,
    /// Speed-up of the thread pool over sequential, if measured.
    pub threads: Option<f64>,
    /// Speed-up of the process pool over sequential, if measured.
    pub processes: Option<f64>,
}

/// The whole sweep, ordered by worker count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sweep {
    /// One point per worker count.
    pub points: Vec<Point>,
}

impl Sweep {
    /// Files the 2-worker speed-ups under [`ops::CRYPTO_SPEEDUP_2`] (who = `threads` /
    /// `processes`), which is what the table's target rows read.
    pub fn add_to(&self, figures: &mut Figures) {
        self.add_to_round(figures, 1, None);
    }

    /// Like [`Sweep::add_to`], as round `round` of the sweep with `origin` (the report runs
    /// the sweep in rounds, each with its own stamp and load).
    pub fn add_to_round(&self, figures: &mut Figures, round: u32, origin: Option<&Origin>) {
        if let Some(p) = self.points.iter().find(|p| p.workers == 2) {
            for (who, value) in [("threads", p.threads), ("processes", p.processes)] {
                if let Some(v) = value {
                    let sample = Sample::Direct(Figure::new(v, Kind::Speedup));
                    let op = ops::CRYPTO_SPEEDUP_2;
                    figures.insert_round(op, who, round, sample, origin.cloned());
                }
            }
        }
    }
}

/// A CSV the reader cannot make sense of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepError(pub String);

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crypto sweep CSV: {}", self.0)
    }
}

impl std::error::Error for SweepError {}

/// Parses the sweep CSV text (header first; blank lines and `#` comments are skipped).
pub fn parse(text: &str) -> Result<Sweep, SweepError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| SweepError("empty file".into()))?
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| SweepError(format!("no `{name}` column in header {header:?}")))
    };
    let (executor, workers, speedup) =
        (column("executor")?, column("workers")?, column("speedup")?);
    let mut sweep = Sweep::default();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |what: &str| SweepError(format!("row {}: bad {what}: {line}", n + 2));
        let count: u32 = cells
            .get(workers)
            .and_then(|c| c.parse().ok())
            .filter(|&w| w >= 1)
            .ok_or_else(|| bad("worker count"))?;
        let value: f64 = cells
            .get(speedup)
            .and_then(|c| c.parse().ok())
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| bad("speedup"))?;
        let is_threads = match cells.get(executor).copied() {
            Some("threads") => true,
            Some("procs" | "processes") => false,
            // The sequential baseline (speed-up 1 by definition) and unknown executors.
            _ => continue,
        };
        let index = match sweep.points.iter().position(|p| p.workers == count) {
            Some(i) => i,
            None => {
                sweep.points.push(Point {
                    workers: count,
                    threads: None,
                    processes: None,
                });
                sweep.points.len() - 1
            }
        };
        let point = &mut sweep.points[index];
        if is_threads {
            point.threads = Some(value);
        } else {
            point.processes = Some(value);
        }
    }
    if sweep.points.is_empty() {
        return Err(SweepError("no threads or procs rows".into()));
    }
    sweep.points.sort_by_key(|p| p.workers);
    Ok(sweep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "executor,workers,runs,median_s,min_s,max_s,speedup";

    #[test]
    fn threads_and_procs_rows_become_points_by_worker_count() {
        let csv = format!(
            "{HEADER}\nseq,1,3,2.0,2.0,2.1,1.000000\nthreads,1,3,2.02,2.0,2.1,0.990000\n\
             threads,2,3,1.04,1.0,1.1,1.923000\nprocs,1,3,2.05,2.0,2.1,0.975000\n\
             procs,2,3,1.08,1.0,1.1,1.851000\n"
        );
        let sweep = parse(&csv).unwrap();
        assert_eq!(sweep.points.len(), 2);
        assert_eq!(sweep.points[0].workers, 1);
        assert_eq!(sweep.points[0].threads, Some(0.99));
        assert_eq!(sweep.points[1].threads, Some(1.923));
        assert_eq!(sweep.points[1].processes, Some(1.851));
        let mut figures = Figures::new();
        sweep.add_to(&mut figures);
        let threads = figures.get(ops::CRYPTO_SPEEDUP_2, "threads", Kind::Speedup);
        assert_eq!(threads, Some(Figure::new(1.923, Kind::Speedup)));
        let procs = figures.get(ops::CRYPTO_SPEEDUP_2, "processes", Kind::Speedup);
        assert_eq!(procs, Some(Figure::new(1.851, Kind::Speedup)));
    }

    #[test]
    fn columns_are_found_by_name_and_a_missing_executor_stays_none() {
        let csv = "# reordered\nspeedup,workers,executor\n1.9,2,threads\n";
        let sweep = parse(csv).unwrap();
        assert_eq!(sweep.points[0].threads, Some(1.9));
        assert_eq!(sweep.points[0].processes, None);
    }

    #[test]
    fn unusable_files_are_errors_that_say_why() {
        assert!(parse("").unwrap_err().0.contains("empty"));
        assert!(parse("executor,speedup\n")
            .unwrap_err()
            .0
            .contains("`workers`"));
        let only_seq = format!("{HEADER}\nseq,1,3,2.0,2.0,2.1,1.0\n");
        assert!(parse(&only_seq)
            .unwrap_err()
            .0
            .contains("no threads or procs"));
        let bad_workers = format!("{HEADER}\nthreads,0,3,2.0,2.0,2.1,1.0\n");
        assert!(parse(&bad_workers).unwrap_err().0.contains("worker count"));
        let bad_speedup = format!("{HEADER}\nthreads,2,3,2.0,2.0,2.1,fast\n");
        assert!(parse(&bad_speedup).unwrap_err().0.contains("speedup"));
    }
}
