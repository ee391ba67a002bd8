//! Running a batch of jobs on one of three executors: in this thread, on our
//! thread pool, or on our process pool - one submit / `as_completed` loop, the
//! book's `arcfour_futures.py`, written once over the `executor::Executor`
//! trait (the sequential baseline is its `InlineExecutor`).
//!
//! [`run_batch`] runs any kind of job: a [`Batch`] names the specs, a function
//! that makes a job's argument from its spec in the submitting thread, and the
//! job itself (a plain `fn`, so a process can run it). [`run`] is the AES jobs
//! on it (seeded, or with the data shipped); `sha_jobs::run_sha` the SHA jobs.
//!
//! The clock starts before the pool is created and stops after it has shut down,
//! as in the book ("the timings include the time to actually spawn the worker
//! processes"), so a pool's start-up and tear-down are part of its price.

use std::time::{Duration, Instant};

use executor::{Executor, InlineExecutor, Payload, ProcessPoolExecutor, ThreadPoolExecutor};
use future::trace::Recorder;
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
    /// On Celery workers behind a Redis (`celery::CeleryExecutor`): `workers`
    /// local `crypto-celery-worker` processes are started for the batch, and
    /// any other worker on the same queue joins in. Needs a broker
    /// (`--broker`); not in [`ALL`](Self::ALL), which needs nothing.
    Celery,
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
            ExecutorKind::Celery => "celery",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<ExecutorKind> {
        ExecutorKind::ALL
            .into_iter()
            .chain([ExecutorKind::Celery])
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
    /// `--trace`: record the schedule of the executor in this recorder.
    pub trace: Option<Recorder>,
}

/// What a batch did (`R`: what it kept of each job, the AES jobs' [`JobResult`]
/// unless said otherwise).
#[derive(Clone, Debug)]
pub struct RunReport<R = JobResult> {
    /// Workers that ran the jobs (1 for the sequential executor).
    pub workers: usize,
    /// The results in completion order.
    pub results: Vec<R>,
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
    let accept = |outcome: JobOutcome| {
        let result = outcome?;
        on_done(&result);
        Ok(result)
    };
    let (executor, workers, specs) = (config.executor, config.workers, &config.specs[..]);
    if config.ship_data {
        // The parent makes each job's data just before submitting it and keeps
        // two jobs per worker in flight, so each worker has its next buffer ready
        // and the parent holds a few buffers, not all of them. The next buffer
        // should already be on its way down the pipe while the worker computes:
        // the process pool keeps a look-ahead of 2.
        let shipped = Batch {
            window: 2 * workers.max(1),
            look_ahead: 2,
            trace: config.trace.as_ref(),
            ..Batch::new(executor, workers, specs, ShippedJob::new, run_job_on_data)
        };
        run_batch(&shipped, accept)
    } else {
        // The book submits everything up front; see [`Batch::new`].
        let batch = Batch {
            trace: config.trace.as_ref(),
            ..Batch::new(executor, workers, specs, |spec| spec, run_job)
        };
        run_batch(&batch, accept)
    }
}

/// A batch of jobs for [`run_batch`], whatever the job: the specs, and how a spec
/// becomes a job on a worker.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a, S, A, T> {
    /// Where the jobs run.
    pub executor: ExecutorKind,
    /// Pool size (ignored by [`ExecutorKind::Seq`]).
    pub workers: usize,
    /// The jobs, in submission order.
    pub specs: &'a [S],
    /// Makes a job's argument from its spec, in the submitting thread, just
    /// before the job is submitted (`|spec| spec` when the worker needs only the spec).
    pub prepare: fn(S) -> A,
    /// The job. A plain `fn` item, so it can be sent to a process pool worker.
    pub job: fn(A) -> T,
    /// Jobs in flight at most; `usize::MAX` submits them all up front.
    pub window: usize,
    /// Jobs a process pool worker may hold at once (1: it gets its next job
    /// only when it is free).
    pub look_ahead: usize,
    /// Where the executor records its schedule (`--trace`); `None`: nowhere.
    pub trace: Option<&'a Recorder>,
}

impl<'a, S, A, T> Batch<'a, S, A, T> {
    /// A batch as the book runs it: every job submitted up front, and no
    /// look-ahead. A job takes a good fraction of a second: a process pool
    /// worker gets its next job only when it is free (Python's shared call
    /// queue behaves so), so the last jobs go to whichever worker frees first
    /// and the workers finish together.
    pub fn new(
        executor: ExecutorKind,
        workers: usize,
        specs: &'a [S],
        prepare: fn(S) -> A,
        job: fn(A) -> T,
    ) -> Self {
        Batch {
            executor,
            workers,
            specs,
            prepare,
            job,
            window: usize::MAX,
            look_ahead: 1,
            trace: None,
        }
    }
}

/// Runs a batch of any kind of job, calling `accept` with each job's output as
/// it completes; `accept` checks it, prints it if it likes, and returns what
/// the report keeps (an error stops the batch and cancels the jobs still queued).
///
/// The clock starts before the pool is created and stops after it shut down.
pub fn run_batch<S, A, T, R>(
    batch: &Batch<'_, S, A, T>,
    mut accept: impl FnMut(T) -> Result<R, RunError>,
) -> Result<RunReport<R>, RunError>
where
    S: Copy,
    A: Payload,
    T: Payload + Clone,
{
    let start = Instant::now();
    let mut results = Vec::with_capacity(batch.specs.len());
    let mut record = |output: T| -> Result<(), RunError> {
        results.push(accept(output)?);
        Ok(())
    };
    let workers = match batch.executor {
        // The inline executor runs each job inside `submit`: one in flight at
        // a time, so each result is taken (and printed) before the next job
        // runs, as in the book's sequential script.
        ExecutorKind::Seq => {
            let sequential = Batch {
                window: 1,
                ..*batch
            };
            let inline = match batch.trace {
                Some(recorder) => InlineExecutor::traced(recorder.clone()),
                None => InlineExecutor::new(),
            };
            run_on(inline, 1, &sequential, &mut record)?
        }
        ExecutorKind::Threads => {
            let mut builder = ThreadPoolExecutor::builder()
                .max_workers(batch.workers)
                .thread_name_prefix("crypto");
            if let Some(recorder) = batch.trace {
                builder = builder.trace(recorder.clone());
            }
            let pool = builder
                .build()
                .map_err(|e| executor_failed(ExecutorKind::Threads, e.to_string()))?;
            let workers = pool.max_workers();
            run_on(pool, workers, batch, &mut record)?
        }
        // The program must have called `process_pool::start_fork_server()`
        // first thing in `main` (our binaries and test binaries do).
        ExecutorKind::Procs => {
            let mut builder = ProcessPoolExecutor::builder()
                .max_workers(batch.workers)
                .tasks_per_worker(batch.look_ahead);
            if let Some(recorder) = batch.trace {
                builder = builder.trace(recorder.clone());
            }
            let pool = builder
                .build()
                .map_err(|e| executor_failed(ExecutorKind::Procs, e.to_string()))?;
            let workers = pool.max_workers();
            run_on(pool, workers, batch, &mut record)?
        }
        ExecutorKind::Celery => {
            let failed = |e: String| executor_failed(ExecutorKind::Celery, e);
            let broker = crate::celery_jobs::broker().ok_or_else(|| {
                failed("--executor celery needs --broker redis://host:port/db".into())
            })?;
            let workers = batch.workers.max(1);
            let _local =
                crate::celery_jobs::LocalWorkers::start(workers, &broker).map_err(failed)?;
            let mut builder =
                celery::CeleryExecutor::builder(&broker).registry(crate::celery_jobs::registry());
            if let Some(recorder) = batch.trace {
                builder = builder.trace(recorder.clone());
            }
            let executor = builder.connect().map_err(|e| failed(e.to_string()))?;
            run_on(executor, workers, batch, &mut record)?
        }
    };
    Ok(RunReport {
        workers,
        results,
        elapsed: start.elapsed(),
    })
}

fn executor_failed(executor: ExecutorKind, message: String) -> RunError {
    RunError::Executor { executor, message }
}

/// Runs the batch on any executor and shuts it down; returns `workers`.
///
/// On the thread pool a job is a closure that owns its argument (moving a
/// `Vec` of shipped data costs nothing, which is the point of comparison);
/// on the process pool it is the `fn` and its argument encoded into a frame
/// and written down a pipe, the result coming back the same way.
fn run_on<E: Executor, S, A, T>(
    executor: E,
    workers: usize,
    batch: &Batch<'_, S, A, T>,
    record: &mut impl FnMut(T) -> Result<(), RunError>,
) -> Result<usize, RunError>
where
    S: Copy,
    A: Payload,
    T: Payload + Clone,
{
    let submit = |spec: S| {
        executor
            .submit(batch.job, (batch.prepare)(spec))
            .map_err(|e| e.to_string())
    };
    let outcome = drive(batch.specs, batch.window, submit, batch.executor, record);
    // On success nothing is queued any more; on failure, cancel what is (the
    // jobs already running end on their own). Waiting for the workers to exit
    // is part of the measured time, as the book's `with` block.
    executor.shutdown(true, outcome.is_err());
    outcome?;
    Ok(workers)
}

/// Submits every job, then takes the results as they complete: the book's
/// `to_do = [executor.submit(...) ...]; for future in as_completed(to_do)`.
///
/// With a `window` smaller than the batch, it keeps at most `window` jobs in
/// flight, submitting the next as one completes (so shipped data is made just
/// in time, and the memory held is `window` buffers, not all of them).
pub(crate) fn drive<S: Copy, T: Clone>(
    specs: &[S],
    window: usize,
    mut submit: impl FnMut(S) -> Result<Future<T>, String>,
    executor: ExecutorKind,
    record: &mut impl FnMut(T) -> Result<(), RunError>,
) -> Result<(), RunError> {
    let failed = |message: String| RunError::Executor { executor, message };
    let take = |future: &Future<T>| future.result().map_err(|e| failed(e.to_string()));

    if window >= specs.len() {
        let futures = specs
            .iter()
            .map(|&spec| submit(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        for done in as_completed(&futures, None) {
            let future = done.map_err(|e| failed(e.to_string()))?;
            record(take(&future)?)?;
        }
        return Ok(());
    }

    let mut next = specs.iter().copied();
    let mut in_flight: Vec<Future<T>> = Vec::with_capacity(window);
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
            record(take(future)?)?;
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
                &mut |outcome: JobOutcome| {
                    got.push(outcome?);
                    Ok(())
                },
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
            &mut |_: JobOutcome| Ok(()),
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
        let err = drive(&specs, 2, broken, ExecutorKind::Threads, &mut |_| Ok(())).unwrap_err();
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
                trace: None,
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
