//! The two demos: `map` yields results in input order while the tasks finish in
//! their own order; `submit` hands back futures whose `done()` flags show which
//! tasks have finished at any moment.

use std::time::Duration;

use future::trace::Recorder;
use future::{Future, FutureError};
use thread_pool::{SubmitError, ThreadPoolExecutor};

use crate::display::Display;
use crate::loiter::loiter;

/// The demo's knobs; [`Default`] is the book's: 3 workers, 5 tasks, 1 s per unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoConfig {
    /// Pool size.
    pub workers: usize,
    /// Tasks `loiter(0) .. loiter(tasks - 1)`.
    pub tasks: u64,
    /// How long `loiter(1)` sleeps.
    pub unit: Duration,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            workers: 3,
            tasks: 5,
            unit: Duration::from_secs(1),
        }
    }
}

/// Why a demo stopped.
#[derive(Debug)]
pub enum DemoError {
    /// The pool refused a task.
    Submit(SubmitError),
    /// A task did not deliver its value.
    Task {
        /// Which task.
        index: usize,
        /// What its future said.
        error: FutureError,
    },
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Submit(e) => write!(f, "the pool refused a task: {e}"),
            DemoError::Task { index, error } => write!(f, "task {index} failed: {error}"),
        }
    }
}

impl std::error::Error for DemoError {}

/// The book's `demo_executor_map.py`. Returns the results in the order shown.
pub fn map_demo(config: &DemoConfig, display: &Display) -> Result<Vec<u64>, DemoError> {
    map_demo_traced(config, display, None)
}

/// [`map_demo`] on a pool that records its schedule in `trace` (`--trace`).
pub fn map_demo_traced(
    config: &DemoConfig,
    display: &Display,
    trace: Option<Recorder>,
) -> Result<Vec<u64>, DemoError> {
    display.show("Script starting.");
    let pool = pool(config, trace);
    let unit = config.unit;
    let worker_display = display.clone();
    // `map` submits every item before it returns (as Python does) and hands
    // back an iterator that yields them in order: Python's generator.
    let results = pool
        .map(move |n| loiter(n, unit, &worker_display), 0..config.tasks)
        .map_err(DemoError::Submit)?;
    display.show(&format!("results: {results:?}"));
    display.show("Waiting for individual results:");
    let mut values = Vec::new();
    for (index, result) in results.enumerate() {
        // Blocks until task `index` is done, even if later tasks finished first.
        let value = result.map_err(|error| DemoError::Task { index, error })?;
        display.show(&format!("result {index}: {value}"));
        values.push(value);
    }
    Ok(values)
}

/// The attic's `demo_executor_submit.py`: the same tasks through `submit`,
/// showing the futures and their `done()` flags before and after waiting.
pub fn submit_demo(config: &DemoConfig, display: &Display) -> Result<Vec<u64>, DemoError> {
    submit_demo_traced(config, display, None)
}

/// [`submit_demo`] on a pool that records its schedule in `trace` (`--trace`).
pub fn submit_demo_traced(
    config: &DemoConfig,
    display: &Display,
    trace: Option<Recorder>,
) -> Result<Vec<u64>, DemoError> {
    display.show("Script starting.");
    let pool = pool(config, trace);
    let futures: Vec<Future<u64>> = (0..config.tasks)
        .map(|n| {
            let (unit, display) = (config.unit, display.clone());
            pool.submit(move || loiter(n, unit, &display))
        })
        .collect::<Result<_, _>>()
        .map_err(DemoError::Submit)?;
    // Debug prints each future as Python's repr: <Future state=running>, ...
    display.show(&format!("futures: {futures:?}"));
    display.show(&format!("done? {:?}", done_flags(&futures)));
    display.show("Waiting for individual results:");
    let mut values = Vec::new();
    for (index, future) in futures.iter().enumerate() {
        let value = future
            .result()
            .map_err(|error| DemoError::Task { index, error })?;
        display.show(&format!("result[{index}]: {value}"));
        values.push(value);
    }
    display.show(&format!("done? {:?}", done_flags(&futures)));
    Ok(values)
}

/// The demo's pool: `config.workers` threads, recording into `trace` if given.
fn pool(config: &DemoConfig, trace: Option<Recorder>) -> ThreadPoolExecutor {
    let builder = ThreadPoolExecutor::builder().max_workers(config.workers.max(1));
    match trace {
        Some(recorder) => builder.trace(recorder),
        None => builder,
    }
    .build()
    .expect("a positive max_workers and default settings are always valid")
}

fn done_flags(futures: &[Future<u64>]) -> Vec<bool> {
    futures.iter().map(Future::done).collect()
}
