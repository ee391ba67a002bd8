//! Running a batch of jobs on one of three executors: in this thread, on our
//! thread pool, or on our process pool - the same submit / `as_completed` loop
//! as the book's `arcfour_futures.py` for the two pools.
//!
//! The clock starts before the pool is created and stops after it has shut down,
//! as in the book ("the timings include the time to actually spawn the worker
//! processes"), so a pool's start-up and tear-down are part of its price.

use std::time::{Duration, Instant};

use future::{as_completed, wait, Future, ReturnWhen};

use crate::jobs::{run_job, run_job_on_data, JobError, JobResult, JobSpec, ShippedJob};

/// What a job's future holds: the job's own outcome.
pub type JobOutcome = Result<JobResult, JobError>;

/// Where the jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum ExecutorKind {
    /// One after the other in the calling thread: the baseline.
    Seq,
    /// On a `thread_pool::ThreadPoolExecutor`.
    Threads,
    /// On a `process_pool::ProcessPoolExecutor` (forked workers, data over pipes).
    Procs,
}

impl ExecutorKind {
    /// All three, in table order.
    pub const ALL: [ExecutorKind; 3] = [
        ExecutorKind::Seq,
        ExecutorKind::Threads,
        ExecutorKind::Procs,
    ];

    /// The name used on the command line, in tables and in CSV.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Seq => "seq",
            ExecutorKind::Threads => "threads",
            ExecutorKind::Procs => "procs",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<ExecutorKind> {
        ExecutorKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One batch of jobs to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Where to run them.
    pub executor: ExecutorKind,
    /// Pool size (ignored by [`ExecutorKind::Seq`]).
    pub workers: usize,
    /// The jobs, in submission order.
    pub specs: Vec<JobSpec>,
    /// Make the data in the parent and send it with the job.
    pub ship_data: bool,
}

/// What a batch did.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Workers that ran the jobs (1 for the sequential executor).
    pub workers: usize,
    /// The results in completion order.
    pub results: Vec<JobResult>,
    /// Wall-clock time from before the pool started to after it shut down.
    pub elapsed: Duration,
}

/// Why a batch failed.
#[derive(Debug)]
pub enum RunError {
    /// A job's round trip failed.
    Job(JobError),
    /// The executor could not run a job (it could not start, a worker died, ...).
    Executor {
        /// Which executor.
        executor: ExecutorKind,
        /// What it said.
        message: String,
    },
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Job(e) => write!(f, "{e}"),
            RunError::Executor { executor, message } => {
                write!(f, "the {executor} executor failed: {message}")
            }
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Job(e) => Some(e),
            _ => None,
        }
    }
}

impl From<JobError> for RunError {
    fn from(e: JobError) -> Self {
        RunError::Job(e)
    }
}

/// Runs the batch, calling `on_done` with each result as it completes (the
/// program prints it there), and reports the results and the elapsed time.
pub fn run(config: &RunConfig, mut on_done: impl FnMut(&JobResult)) -> Result<RunReport, RunError> {
    let start = Instant::now();
    let mut results = Vec::with_capacity(config.specs.len());
    let mut record = |result: JobResult| {
        on_done(&result);
        results.push(result);
    };
    let workers = match config.executor {
        ExecutorKind::Seq => run_sequential(config, &mut record)?,
        ExecutorKind::Threads => run_threads(config, &mut record)?,
        ExecutorKind::Procs => run_procs(config, &mut record)?,
    };
    Ok(RunReport {
        workers,
        results,
        elapsed: start.elapsed(),
    })
}

/// The baseline: each job in turn, in this thread.
fn run_sequential(
    config: &RunConfig,
    record: &mut impl FnMut(JobResult),
) -> Result<usize, RunError> {
    for &spec in &config.specs {
        let result = if config.ship_data {
            run_job_on_data(ShippedJob::new(spec))?
        } else {
            run_job(spec)?
        };
        record(result);
    }
    Ok(1)
}

/// On our thread pool. A job is a closure that owns its spec (and, with
/// `--ship-data`, its data: moving a `Vec` into a closure costs nothing, which is
/// the point of comparison with the process pool).
fn run_threads(config: &RunConfig, record: &mut impl FnMut(JobResult)) -> Result<usize, RunError> {
    let pool = thread_pool::ThreadPoolExecutor::builder()
        .max_workers(config.workers)
        .thread_name_prefix("crypto")
        .build()
        .map_err(|e| RunError::Executor {
            executor: ExecutorKind::Threads,
            message: e.to_string(),
        })?;
    let workers = pool.max_workers();
    let submit = |spec: JobSpec| {
        let submitted = if config.ship_data {
            let job = ShippedJob::new(spec);
            pool.submit(move || run_job_on_data(job))
        } else {
            pool.submit(move || run_job(spec))
        };
        submitted.map_err(|e| e.to_string())
    };
    let outcome = drive(
        &config.specs,
        window(config),
        submit,
        ExecutorKind::Threads,
        record,
    );
    // On success nothing is queued any more; on failure, cancel what is (the
    // jobs already running end on their own). Waiting for the workers to exit
    // is part of the measured time, as the book's `with` block.
    pool.shutdown(true, outcome.is_err());
    outcome?;
    Ok(workers)
}

/// On our process pool. A job is a plain `fn` and its argument: the spec (24
/// bytes) or, with `--ship-data`, the spec and the whole buffer, encoded into a
/// frame and written down a pipe; the result (24 bytes) comes back the same way.
///
/// The program must have called `process_pool::start_fork_server()` first
/// thing in `main` (our binaries and test binaries do).
fn run_procs(config: &RunConfig, record: &mut impl FnMut(JobResult)) -> Result<usize, RunError> {
    let failed = |message: String| RunError::Executor {
        executor: ExecutorKind::Procs,
        message,
    };
    // A job takes hundreds of milliseconds: hand a worker its next job only when it
    // is free (Python's shared call queue behaves so), so the last jobs go to
    // whichever worker frees first and the two finish together. Shipped data is
    // the exception: there the next buffer should already be on its way down the
    // pipe while the worker computes, so we keep the pool's default look-ahead.
    let look_ahead = if config.ship_data { 2 } else { 1 };
    let pool = process_pool::ProcessPoolExecutor::builder()
        .max_workers(config.workers)
        .tasks_per_worker(look_ahead)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let workers = pool.max_workers();
    let submit = |spec: JobSpec| {
        let submitted = if config.ship_data {
            pool.submit(run_job_on_data, ShippedJob::new(spec))
        } else {
            pool.submit(run_job, spec)
        };
        submitted.map_err(|e| e.to_string())
    };
    let outcome = drive(
        &config.specs,
        window(config),
        submit,
        ExecutorKind::Procs,
        record,
    );
    // On success nothing is queued any more; on failure, cancel what is (the
    // jobs already running end on their own). Waiting for the workers to exit
    // is part of the measured time, as the book's `with` block.
    pool.shutdown(true, outcome.is_err());
    outcome?;
    Ok(workers)
}

/// How many jobs may be in flight: all of them when the workers make their own
/// data (the book submits everything up front), two per worker when the parent
/// makes it (so each worker has the next buffer ready, and no more are held).
fn window(config: &RunConfig) -> usize {
    if config.ship_data {
        2 * config.workers.max(1)
    } else {
        usize::MAX
    }
}

/// Submits every job, then takes the results as they complete: the book's
/// `to_do = [executor.submit(...) ...]; for future in as_completed(to_do)`.
///
/// With `ship_data`, the parent makes each job's data just before submitting
/// it, and keeps at most `window` jobs in flight (submitting the next as one
/// completes), so the memory held is `window` buffers, not all of them.
pub(crate) fn drive(
    specs: &[JobSpec],
    window: usize,
    mut submit: impl FnMut(JobSpec) -> Result<Future<JobOutcome>, String>,
    executor: ExecutorKind,
    record: &mut impl FnMut(JobResult),
) -> Result<(), RunError> {
    let failed = |message: String| RunError::Executor { executor, message };
    let take = |future: &Future<JobOutcome>| -> Result<JobResult, RunError> {
        match future.result() {
            Ok(outcome) => Ok(outcome?),
            Err(e) => Err(failed(e.to_string())),
        }
    };

    if window >= specs.len() {
        let futures = specs
            .iter()
            .map(|&spec| submit(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        for done in as_completed(&futures, None) {
            let future = done.map_err(|e| failed(e.to_string()))?;
            record(take(&future)?);
        }
        return Ok(());
    }

    let mut next = specs.iter().copied();
    let mut in_flight: Vec<Future<JobOutcome>> = Vec::with_capacity(window);
    loop {
        while in_flight.len() < window.max(1) {
            match next.next() {
                Some(spec) => in_flight.push(submit(spec).map_err(failed)?),
                None => break,
            }
        }
        if in_flight.is_empty() {
            return Ok(());
        }
        let outcome = wait(&in_flight, None, ReturnWhen::FirstCompleted);
        for future in &outcome.done {
            record(take(future)?);
        }
        in_flight = outcome.not_done;
    }
}

/// The default pool size: one worker per core, as Python's `ProcessPoolExecutor()`.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::job_specs;

    /// A stand-in executor for testing `drive`: one thread per job.
    fn spawn_job(spec: JobSpec, ship: bool) -> Result<Future<JobOutcome>, String> {
        let (promise, future) = future::promise();
        let data = ship.then(|| ShippedJob::new(spec));
        std::thread::spawn(move || {
            if promise.set_running_or_notify_cancel() == Ok(true) {
                let outcome = match data {
                    Some(job) => run_job_on_data(job),
                    None => run_job(spec),
                };
                let _ = promise.set_result(outcome);
            }
        });
        Ok(future)
    }

    #[test]
    fn drive_collects_every_job_once_all_at_once_and_windowed() {
        let specs = job_specs(12, 5000, 9);
        let mut expected: Vec<JobResult> = specs.iter().map(|&s| run_job(s).unwrap()).collect();
        expected.sort_by_key(|r| r.index);
        for (window, ship) in [(usize::MAX, false), (12, true), (3, true), (1, false)] {
            let mut got = Vec::new();
            drive(
                &specs,
                window,
                |s| spawn_job(s, ship),
                ExecutorKind::Threads,
                &mut |r| got.push(r),
            )
            .unwrap();
            got.sort_by_key(|r| r.index);
            assert_eq!(got, expected, "window {window}, ship {ship}");
        }
    }

    #[test]
    fn drive_reports_a_failed_submit_and_a_broken_task() {
        let specs = job_specs(4, 100, 1);
        let err = drive(
            &specs,
            usize::MAX,
            |_| Err("no".into()),
            ExecutorKind::Procs,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                RunError::Executor {
                    executor: ExecutorKind::Procs,
                    ..
                }
            ),
            "{err}"
        );

        // A promise dropped without a result: the future reports a broken promise.
        let broken = |_| Ok(future::promise::<JobOutcome>().1);
        let err = drive(&specs, 2, broken, ExecutorKind::Threads, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("threads executor failed"), "{err}");
    }

    #[test]
    fn sequential_run_in_both_modes() {
        let specs = job_specs(5, 3000, 4);
        for ship_data in [false, true] {
            let config = RunConfig {
                executor: ExecutorKind::Seq,
                workers: 1,
                specs: specs.clone(),
                ship_data,
            };
            let mut seen = 0;
            let report = run(&config, |_| seen += 1).unwrap();
            assert_eq!(seen, 5);
            assert_eq!(report.workers, 1);
            let indices: Vec<usize> = report.results.iter().map(|r| r.index).collect();
            assert_eq!(indices, [0, 1, 2, 3, 4], "sequential completes in order");
        }
    }
}
