//! The command line: which flags to render, on which executor, how much work.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::jobs::{every_code, Job, POP20_CC};

/// Which pool runs the jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Worker processes (`executor::ProcessPoolExecutor`).
    Procs,
    /// Worker threads (`executor::ThreadPoolExecutor`).
    Threads,
}

impl ExecutorKind {
    /// What runs the jobs, for the first line: "2 worker processes".
    pub fn describe(self, workers: usize) -> String {
        match self {
            ExecutorKind::Procs => format!("{workers} worker processes"),
            ExecutorKind::Threads => format!("{workers} worker threads"),
        }
    }
}

/// Render country flags on a pool from an async loop that keeps printing
/// progress while it awaits them (Python's asyncio + run_in_executor).
#[derive(Debug, Parser)]
#[command(name = "async-jobs", version)]
pub struct Args {
    /// Country codes to render (two letters each); default: the 20 most populous countries.
    #[arg(value_name = "CC", value_parser = parse_cc, conflicts_with = "every")]
    pub codes: Vec<String>,
    /// Render every code from AA to ZZ (676 jobs).
    #[arg(short, long)]
    pub every: bool,
    /// The pool that runs the jobs.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Procs)]
    pub executor: ExecutorKind,
    /// Workers in the pool.
    #[arg(short, long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Flag width in pixels (the height is two thirds of it).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(3..=10_000))]
    pub width: u32,
    /// Rendering passes per flag: the CPU work per job.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub passes: u32,
    /// Make the job for this code fail, to see how a task error arrives (repeatable).
    #[arg(long, value_name = "CC", value_parser = parse_cc)]
    pub fail: Vec<String>,
    /// Milliseconds between two progress lines.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub tick_ms: u64,
    /// One line per flag as it completes.
    #[arg(short, long)]
    pub verbose: bool,
}

impl Args {
    /// Parses a command line (first item: the program name).
    pub fn try_parse_from_os<I: IntoIterator<Item = OsString>>(
        args: I,
    ) -> Result<Args, clap::Error> {
        Args::try_parse_from(args)
    }

    /// The jobs to run, sorted and without duplicates (as flags2 does).
    pub fn jobs(&self) -> Vec<Job> {
        let mut codes: Vec<String> = if self.every {
            every_code()
        } else if self.codes.is_empty() {
            POP20_CC.iter().map(|cc| cc.to_string()).collect()
        } else {
            self.codes.clone()
        };
        codes.sort();
        codes.dedup();
        codes
            .into_iter()
            .map(|cc| Job {
                fail: self.fail.contains(&cc),
                cc,
                width: self.width,
                passes: self.passes,
            })
            .collect()
    }

    /// The time between two progress lines.
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.tick_ms)
    }
}

/// A country code: two ASCII letters, upper-cased.
fn parse_cc(text: &str) -> Result<String, String> {
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(format!("{text:?} is not a two-letter country code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from_os(
            std::iter::once("async-jobs")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn defaults_are_the_twenty_most_populous_countries_sorted() {
        let jobs = parse(&[]).unwrap().jobs();
        assert_eq!(jobs.len(), 20);
        assert_eq!(jobs[0].cc, "BD");
        assert!(jobs.windows(2).all(|w| w[0].cc < w[1].cc));
    }

    #[test]
    fn codes_are_upper_cased_deduplicated_and_can_be_marked_to_fail() {
        let jobs = parse(&["br", "BR", "jp", "--fail", "jp"]).unwrap().jobs();
        let summary: Vec<_> = jobs.iter().map(|j| (j.cc.as_str(), j.fail)).collect();
        assert_eq!(summary, [("BR", false), ("JP", true)]);
    }

    #[test]
    fn bad_codes_and_numbers_are_refused() {
        for bad in [
            &["B"][..],
            &["BRA"],
            &["--workers", "0"],
            &["--passes", "x"],
            &["-e", "BR"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
