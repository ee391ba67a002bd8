//! The command lines of `crypto-futures`, `sha-futures` and `crypto-sweep`, and the programs
//! themselves as functions that write to any `io::Write`, so the tests run the
//! same code as the binaries (which only parse, call, and turn errors into exit
//! codes).
//!
//! Exit codes: 0 on success; 2 for a usage error (clap's own errors, and our
//! extra checks, which go through [`clap::Error`] so they print the usage line
//! too); 1 when the run itself fails.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser};

use crate::executors::{self, default_workers, ExecutorKind, RunConfig, RunError, RunReport};
use crate::jobs::{format_kb, job_specs, JobResult};
use crate::sha_jobs::{run_sha, sha_specs, ShaResult};
use crate::sweep::{self, SweepConfig};

/// Job size that makes a sequential run of 12 jobs take about 2 s on our machine
/// (making the data, AES-CTR both ways, the digest and the comparison run at
/// ~2.2 GB/s on one core there; 12 jobs of 0.58x..1.5x this size are ~4.2 GB).
pub const DEFAULT_SIZE: u64 = 320 << 20;

/// Job size of `sha-futures` that makes a sequential run of 12 jobs take about
/// 1.5 s on our machine (12 x 32 MiB = 384 MiB; making the data and our portable
/// SHA-256 run at ~260 MB/s on one core there). The book's 1 MiB per job took
/// CPython ~0.55 s, nearly all of it building the random bytes in a Python loop
/// (the hash itself, in C, took under a millisecond); here a 1 MiB job takes
/// 4 ms, so a run would measure little but the pool's start-up.
pub const DEFAULT_SHA_SIZE: u64 = 32 << 20;

/// Where `crypto-sweep` writes `sweep.csv` and `speedup.svg` unless told: under
/// cargo's `target/` (git-ignored), relative to the current folder, so a sweep run
/// from the workspace does not leave files among the sources.
pub const DEFAULT_SWEEP_OUT: &str = "target/crypto-sweep";

/// Jobs per batch, as in the book.
pub const DEFAULT_JOBS: usize = 12;

/// Seed of the first job's data (job `i` uses `seed + i`).
pub const DEFAULT_SEED: u64 = 2015;

/// The options `crypto-futures` and `sha-futures` share: where the jobs run, and
/// how many.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// Where the jobs run.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Procs)]
    pub executor: ExecutorKind,
    /// Pool size [default: the number of cores]; not allowed with `--executor seq`.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// Number of jobs.
    #[arg(long, default_value_t = DEFAULT_JOBS, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Redis broker for `--executor celery` (redis://host:port/db); `--workers` local
    /// crypto-celery-worker processes are started on it for the run.
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
}

impl BatchArgs {
    /// The pool size asked for, or one worker per core.
    pub fn workers(&self) -> usize {
        self.workers.map_or_else(default_workers, usize::from)
    }

    /// Our check beyond clap's: `--workers` is a pool size, a usage error with
    /// `--executor seq`. `C` is the program, for the usage line.
    fn check<C: CommandFactory>(&self) -> Result<(), clap::Error> {
        if self.executor == ExecutorKind::Seq && self.workers.is_some() {
            return Err(C::command().error(
                ErrorKind::ArgumentConflict,
                "--workers does not apply to --executor seq (it always uses this one thread)",
            ));
        }
        if self.executor == ExecutorKind::Celery && self.broker.is_none() {
            return Err(C::command().error(
                ErrorKind::MissingRequiredArgument,
                "--executor celery needs --broker redis://host:port/db",
            ));
        }
        if let Some(url) = &self.broker {
            celery::RedisUrl::parse(url)
                .map_err(|e| C::command().error(ErrorKind::ValueValidation, e.to_string()))?;
            crate::celery_jobs::set_broker(url);
        }
        Ok(())
    }
}

/// `crypto-futures`: the twin of the book's `arcfour_futures.py`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "crypto-futures",
    about = "Encrypt and decrypt a dozen buffers with AES-128-CTR on an executor, \
             printing each job as it completes and the elapsed time",
    after_help = "Each job makes its data from a seed in the worker, encrypts it, decrypts it, \
                  checks the round trip and returns its size and a digest."
)]
pub struct FuturesArgs {
    /// Where and how many.
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Middle job size in bytes (K, M, G suffixes are powers of 2); the jobs range from
    /// 0.58x to 1.5x of it.
    #[arg(long, default_value = "320M", value_parser = parse_size)]
    pub size: u64,
    /// Make the data in the parent and send it to the workers (shows what IPC costs).
    #[arg(long)]
    pub ship_data: bool,
    /// Seed of the data.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// `--trace FILE`: the executor's schedule, written when the run ends.
    #[command(flatten)]
    pub trace: demo_cli::TraceArgs,
}

/// `sha-futures`: the twin of the book's `sha_futures.py`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "sha-futures",
    about = "Hash a dozen random buffers with SHA-256 on an executor, \
             printing each hex digest as its job completes and the elapsed time",
    after_help = "Each job makes its data from a seed in the worker (job i uses seed + i) \
                  and returns the SHA-256 of it, as hex."
)]
pub struct ShaArgs {
    /// Where and how many.
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Bytes hashed by each job (K, M, G suffixes are powers of 2).
    #[arg(long, default_value = "32M", value_parser = parse_size)]
    pub size: u64,
    /// Seed of the data.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

/// `crypto-sweep`: the book's Table 17-1, for all three executors.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "crypto-sweep",
    about = "Time the crypto jobs sequentially and on thread and process pools of 1..N workers, \
             R runs each; print median times and speedups, write them as CSV and an SVG plot"
)]
pub struct SweepArgs {
    /// Largest pool size tried [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_workers: Option<u16>,
    /// Runs per configuration (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub runs: u16,
    /// Directory for sweep.csv and speedup.svg (created if missing); the default sits
    /// under the build folder, which git ignores.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SWEEP_OUT)]
    pub out: PathBuf,
    /// Number of jobs per run.
    #[arg(long, default_value_t = DEFAULT_JOBS, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Middle job size in bytes (K, M, G suffixes are powers of 2).
    #[arg(long, default_value = "320M", value_parser = parse_size)]
    pub size: u64,
    /// Make the data in the parent and send it to the workers.
    #[arg(long)]
    pub ship_data: bool,
    /// Also time 1..N local Celery workers (crypto-celery-worker processes) on this
    /// Redis broker (redis://host:port/db).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
}

/// Parses a byte count: digits with an optional K, M or G (binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 10),
        Some((i, 'M' | 'm')) => (&text[..i], 20),
        Some((i, 'G' | 'g')) => (&text[..i], 30),
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: use bytes, e.g. 4096, 512K, 320M or 1G"))?;
    n.checked_mul(1 << shift)
        .filter(|&bytes| bytes <= 1 << 40)
        .ok_or_else(|| format!("`{text}` is too large: at most 1024G"))
}

/// Parses a job count between 1 and 10000.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a job count between 1 and 10000")),
    }
}

/// Parses `crypto-futures` arguments (`args[0]` is the program name), with our
/// checks beyond clap's. The error prints usage and exits 2 with `.exit()`.
pub fn parse_futures_args<I, T>(args: I) -> Result<FuturesArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = FuturesArgs::try_parse_from(args)?;
    parsed.batch.check::<FuturesArgs>()?;
    Ok(parsed)
}

/// Parses `sha-futures` arguments; see [`parse_futures_args`].
pub fn parse_sha_args<I, T>(args: I) -> Result<ShaArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = ShaArgs::try_parse_from(args)?;
    parsed.batch.check::<ShaArgs>()?;
    Ok(parsed)
}

/// Parses `crypto-sweep` arguments; see [`parse_futures_args`].
pub fn parse_sweep_args<I, T>(args: I) -> Result<SweepArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let parsed = SweepArgs::try_parse_from(args)?;
    if let Some(url) = &parsed.broker {
        celery::RedisUrl::parse(url)
            .map_err(|e| SweepArgs::command().error(ErrorKind::ValueValidation, e.to_string()))?;
        crate::celery_jobs::set_broker(url);
    }
    if parsed.out.is_file() {
        return Err(SweepArgs::command().error(
            ErrorKind::ValueValidation,
            format!("--out {} is a file; give a directory", parsed.out.display()),
        ));
    }
    Ok(parsed)
}

/// Runs `crypto-futures`: prints each job as it completes (`384.0 KB`), then
/// `2 workers, elapsed time: 1.04s`.
pub fn run_futures(args: &FuturesArgs, out: &mut dyn Write) -> Result<RunReport, ProgramError> {
    let trace = args.trace.start().map_err(ProgramError::Trace)?;
    let config = RunConfig {
        executor: args.batch.executor,
        workers: args.batch.workers(),
        specs: job_specs(args.batch.jobs, to_usize(args.size)?, args.seed),
        ship_data: args.ship_data,
        trace: trace.as_ref().map(demo_cli::Trace::recorder),
    };
    let report = print_run(
        out,
        args.batch.executor,
        |result: &JobResult| format_kb(result.size),
        |on_done| executors::run(&config, on_done),
    )?;
    if let Some(trace) = trace {
        trace.finish().map_err(ProgramError::Trace)?;
    }
    Ok(report)
}

/// Runs `sha-futures`: prints each job's hex digest as it completes, then
/// `2 workers, elapsed time: 0.78s`.
pub fn run_sha_futures(
    args: &ShaArgs,
    out: &mut dyn Write,
) -> Result<RunReport<ShaResult>, ProgramError> {
    let batch = &args.batch;
    let specs = sha_specs(batch.jobs, to_usize(args.size)?, args.seed);
    print_run(
        out,
        batch.executor,
        |result: &ShaResult| result.hex_digest.clone(),
        |on_done| run_sha(batch.executor, batch.workers(), &specs, on_done),
    )
}

/// The programs' shared body: runs the batch (`run` gets the callback that
/// prints a line per completed job, made by `line`), then prints the status
/// line. A write error does not stop the batch; it is reported after it.
fn print_run<R>(
    out: &mut dyn Write,
    executor: ExecutorKind,
    line: impl Fn(&R) -> String,
    run: impl FnOnce(&mut dyn FnMut(&R)) -> Result<RunReport<R>, RunError>,
) -> Result<RunReport<R>, ProgramError> {
    let mut write_error = None;
    let report = run(&mut |result: &R| {
        if write_error.is_none() {
            if let Err(e) = writeln!(out, "{}", line(result)) {
                write_error = Some(e);
            }
        }
    })?;
    if let Some(e) = write_error {
        return Err(ProgramError::Io(e));
    }
    writeln!(
        out,
        "{}",
        status_line(executor, report.workers, report.elapsed.as_secs_f64())
    )?;
    Ok(report)
}

/// The book's `STATUS = '{} workers, elapsed time: {:.2f}s'`, with the
/// sequential run named as such.
pub fn status_line(executor: ExecutorKind, workers: usize, seconds: f64) -> String {
    match executor {
        ExecutorKind::Seq => format!("sequential, elapsed time: {seconds:.2}s"),
        _ => format!("{workers} workers, elapsed time: {seconds:.2}s"),
    }
}

/// Runs `crypto-sweep`: the sweep, the table on `out`, progress on `progress`,
/// and the CSV and SVG files in `args.out`.
pub fn run_sweep(
    args: &SweepArgs,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<sweep::Sweep, ProgramError> {
    let config = SweepConfig {
        max_workers: args.max_workers.map_or_else(default_workers, usize::from),
        runs: usize::from(args.runs),
        jobs: args.jobs,
        size: to_usize(args.size)?,
        ship_data: args.ship_data,
        seed: DEFAULT_SEED,
    };
    let load_before = load_average();
    let result = sweep::sweep(&config, |line| {
        // Progress is a courtesy: a closed stderr must not stop the sweep.
        let _ = writeln!(progress, "{line}");
    })?;
    write!(out, "{}", result.table())?;
    if let (Some(before), Some(after)) = (load_before, load_average()) {
        // Other programs running at the same time show up in the timings: say so.
        writeln!(out, "load average (1 min) before: {before}, after: {after}")?;
    }
    std::fs::create_dir_all(&args.out)?;
    let csv_path = args.out.join("sweep.csv");
    std::fs::write(&csv_path, result.csv())?;
    let svg_path = args.out.join("speedup.svg");
    std::fs::write(
        &svg_path,
        crate::plot::speedup_svg(&result, default_workers())?,
    )?;
    writeln!(
        out,
        "wrote {} and {}",
        csv_path.display(),
        svg_path.display()
    )?;
    Ok(result)
}

/// The 1-minute load average from `/proc/loadavg`, if there is one.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next().map(str::to_owned)
}

fn to_usize(size: u64) -> Result<usize, ProgramError> {
    usize::try_from(size).map_err(|_| ProgramError::TooLarge(size))
}

/// Why a program run failed (exit code 1).
#[derive(Debug)]
pub enum ProgramError {
    /// The jobs failed.
    Run(RunError),
    /// Writing the output or the files failed.
    Io(io::Error),
    /// The plot could not be drawn.
    Plot(String),
    /// The size does not fit this machine's address space.
    TooLarge(u64),
    /// `--trace FILE` could not be written.
    Trace(demo_cli::TraceError),
}

impl std::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgramError::Run(e) => write!(f, "{e}"),
            ProgramError::Io(e) => write!(f, "cannot write the output: {e}"),
            ProgramError::Plot(e) => write!(f, "cannot draw the plot: {e}"),
            ProgramError::TooLarge(n) => {
                write!(f, "a size of {n} bytes does not fit in memory here")
            }
            ProgramError::Trace(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ProgramError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProgramError::Run(e) => Some(e),
            ProgramError::Io(e) => Some(e),
            ProgramError::Trace(e) => Some(e),
            _ => None,
        }
    }
}

impl From<RunError> for ProgramError {
    fn from(e: RunError) -> Self {
        ProgramError::Run(e)
    }
}

impl From<io::Error> for ProgramError {
    fn from(e: io::Error) -> Self {
        ProgramError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("320M"), Ok(DEFAULT_SIZE));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("-5").is_err());
        assert!(parse_size("2000G").is_err());
    }

    #[test]
    fn defaults_are_the_books() {
        let args = parse_futures_args(["crypto-futures"]).unwrap();
        assert_eq!(args.batch.jobs, 12);
        assert_eq!(args.size, DEFAULT_SIZE);
        assert_eq!(args.batch.executor, ExecutorKind::Procs);
        assert!(!args.ship_data);
    }

    #[test]
    fn the_sweep_writes_under_target_by_default() {
        let args = parse_sweep_args(["crypto-sweep"]).unwrap();
        assert_eq!(args.out, PathBuf::from("target/crypto-sweep"));
    }

    #[test]
    fn sha_defaults_are_the_books_shape() {
        let args = parse_sha_args(["sha-futures"]).unwrap();
        assert_eq!(args.batch.jobs, 12);
        assert_eq!(
            args.size, DEFAULT_SHA_SIZE,
            "the --size default string and the constant agree"
        );
        assert_eq!(args.batch.executor, ExecutorKind::Procs);
        assert_eq!(args.batch.workers, None);
        assert_eq!(args.seed, DEFAULT_SEED);
    }

    #[test]
    fn workers_with_seq_is_a_usage_error() {
        let err = parse_futures_args(["crypto-futures", "--executor", "seq", "--workers", "2"])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
        let err =
            parse_sha_args(["sha-futures", "--executor", "seq", "--workers", "2"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        assert!(err.to_string().contains("sha-futures"), "{err}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            status_line(ExecutorKind::Procs, 2, 1.041),
            "2 workers, elapsed time: 1.04s"
        );
        assert_eq!(
            status_line(ExecutorKind::Seq, 1, 2.0),
            "sequential, elapsed time: 2.00s"
        );
    }
}
