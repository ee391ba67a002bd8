//! [`Builder`]: every setting of a pool, checked once in [`Builder::build`].
//!
//! Python's constructor takes `max_workers`, `thread_name_prefix`,
//! `initializer` and `initargs`; the builder adds the settings Python lacks
//! (a bounded queue, an idle timeout, `map`'s default window). Arguments to
//! the initializer are whatever its closure captures.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use future::trace::Recorder;

use crate::error::BuildError;
use crate::executor::ThreadPoolExecutor;
use crate::shared::{Config, Initializer, Shared};

/// Python's default: `min(32, cpu_count + 4)` (enough threads to keep the
/// CPUs busy while some wait on I/O, and not so many that a big machine
/// starts hundreds of threads).
pub fn default_max_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}

/// Numbers the default thread name prefixes, as Python's
/// `ThreadPoolExecutor-%d` counter does.
static POOL_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Configures and builds a [`ThreadPoolExecutor`].
///
/// ```
/// use std::time::Duration;
/// use thread_pool::ThreadPoolExecutor;
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(2)
///     .thread_name_prefix("doc")
///     .initializer(|| -> Result<(), String> { Ok(()) })
///     .queue_capacity(100)
///     .idle_timeout(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// let name = pool.submit(|| std::thread::current().name().unwrap().to_string()).unwrap();
/// assert_eq!(name.result().unwrap(), "doc-0");
/// ```
#[derive(Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct Builder {
    max_workers: Option<usize>,
    thread_name_prefix: Option<String>,
    initializer: Option<Initializer>,
    queue_capacity: Option<usize>,
    idle_timeout: Option<Duration>,
    map_window: Option<usize>,
    trace: Option<Recorder>,
}

impl Builder {
    /// A builder with Python's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most worker threads the pool will run (default
    /// [`default_max_workers`]). Zero is refused by `build`.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Workers are named `{prefix}-0`, `{prefix}-1`, ... (default
    /// `ThreadPoolExecutor-{n}`, numbered per process). Linux shows only the
    /// first 15 bytes of a thread name in `/proc` and `top`.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name_prefix = Some(prefix.into());
        self
    }

    /// Runs once in every worker before it takes any task. If it returns an
    /// error or panics, the pool is *broken*: queued and later tasks fail
    /// with [`TaskError::BrokenExecutor`](future::TaskError::BrokenExecutor)
    /// carrying the error's message, and `submit` returns
    /// [`SubmitError::Broken`](crate::SubmitError::Broken).
    pub fn initializer<F, E>(mut self, init: F) -> Self
    where
        F: Fn() -> Result<(), E> + Send + Sync + 'static,
        E: fmt::Display,
    {
        self.initializer = Some(Arc::new(move || init().map_err(|e| e.to_string())));
        self
    }

    /// Bounds the queue: `submit` then waits for room when `n` tasks are
    /// queued (back-pressure), and `try_submit` hands the task back. Default:
    /// unbounded, as in Python.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = Some(n);
        self
    }

    /// A worker that has been parked this long with nothing to do exits;
    /// a later submit starts a new one. Default: workers live until shutdown,
    /// as in Python.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Makes this pool's [`map`](ThreadPoolExecutor::map) windowed by
    /// default: at most `n` items submitted and not yet yielded, the rest of
    /// the input taken lazily (Python 3.14's `buffersize`; 0 counts as 1).
    /// Default: none, every item is submitted when `map` is called, as in
    /// Python. [`MapOptions::window`](crate::MapOptions::window) sets it per call.
    pub fn map_window(mut self, n: usize) -> Self {
        self.map_window = Some(n);
        self
    }

    /// Records every task's transitions (submitted, started and finished or
    /// failed, on which worker thread) in `recorder`, for a picture of the
    /// schedule (`future::trace`). A traced `map` runs one task per item
    /// (no adaptive chunks), so that each item has its own bar. Default:
    /// nothing recorded.
    pub fn trace(mut self, recorder: Recorder) -> Self {
        self.trace = Some(recorder);
        self
    }

    /// Checks the settings and creates the pool. No thread starts yet:
    /// workers start on demand, one per submit at most.
    pub fn build(self) -> Result<ThreadPoolExecutor, BuildError> {
        let max_workers = self.max_workers.unwrap_or_else(default_max_workers);
        if max_workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if self.queue_capacity == Some(0) {
            return Err(BuildError::ZeroCapacity);
        }
        let thread_name_prefix = match self.thread_name_prefix {
            Some(p) if p.contains('\0') => return Err(BuildError::InvalidThreadName(p)),
            Some(p) => p,
            // Relaxed: the counter only has to hand out distinct numbers.
            None => format!("ThreadPoolExecutor-{}", POOL_COUNTER.fetch_add(1, Relaxed)),
        };
        let config = Config {
            max_workers,
            thread_name_prefix,
            initializer: self.initializer,
            idle_timeout: self.idle_timeout,
            queue_capacity: self.queue_capacity,
            map_window: self.map_window.map(|n| n.max(1)),
            trace: self.trace,
        };
        Ok(ThreadPoolExecutor::from_shared(Shared::new(config)))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.thread_name_prefix)
            .field("initializer", &self.initializer.as_ref().map(|_| ".."))
            .field("queue_capacity", &self.queue_capacity)
            .field("idle_timeout", &self.idle_timeout)
            .field("map_window", &self.map_window)
            .field("trace", &self.trace.is_some())
            .finish()
    }
}
