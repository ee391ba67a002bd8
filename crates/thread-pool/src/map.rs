//! `map`: ordered, lazy, with a bounded window of tasks in flight.
//!
//! CPython 3.13's `Executor.map` submits *every* item before returning, so
//! `map` over a huge or infinite input never returns and holds one future per
//! item (gh-74028). 3.14 added `buffersize`. Here the window is always on:
//! at most `window` items are submitted and not yet yielded, so a map over
//! ten million items holds `window` futures at a time, whatever the input.
//!
//! ## How it works
//!
//! `map` submits the first `window` items before returning (so that, as in
//! Python, work starts without iterating). Each `next()` waits for the
//! oldest task, moves its value out, and submits one more item before
//! returning, so exactly `window` items are in flight between calls and
//! while waiting (the task being waited on counts; CPython main submits
//! before popping and briefly has `window + 1`, gh-131466). Results
//! therefore come in input order, whatever order the tasks finish in.

//! ## Errors: one `Result` per item, and the iteration goes on
//!
//! A failing item (the closure panicked) yields its own `Err` and the
//! following items are still yielded: the behaviour of CPython's main branch
//! (gh-108518, "make Executor.map consistent with the built-in map"), which
//! is what users asked for; 3.13 instead stops at the first error and
//! cancels the rest. In Rust, an item that can fail returns a `Result` from
//! the closure, which arrives as `Ok(Err(e))`.
//!
//! Two things do end the iteration early:
//!
//! * the optional timeout, counted from the `map` call as in Python: the
//!   item being waited on yields `Err(FutureError::Timeout)`, that item and
//!   every other one in flight are cancelled, and the iterator is finished;
//! * the pool closing (shut down, or broken) while input remains: the items
//!   already in flight are yielded, then one `Err` saying why the rest of the
//!   input was not submitted, then the iterator is finished.
//!
//! Dropping the iterator cancels every task it submitted that has not
//! started (CPython does the same when its generator is closed).
//!
//! ## Chunks
//!
//! With [`MapOptions::chunk_size`]`(n)`, each task applies `f` to `n`
//! consecutive items (each under its own `catch_unwind`, so a panic still
//! fails only its item) and the iterator yields them one by one. That cuts
//! the per-item cost of a task and its future, which dominates when `f` is
//! cheap. The window still counts items. Python's thread pool ignores its
//! `chunksize`; its process pool uses it the same way.

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use future::{promise, DynError, Future, FutureError, TaskError};

use crate::error::SubmitError;
use crate::job::PromiseJob;
use crate::pool::{Refusal, Shared};
use crate::raw::RawJob;

/// Options of [`ThreadPoolExecutor::map_with`](crate::ThreadPoolExecutor::map_with).
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct MapOptions {
    window: Option<usize>,
    timeout: Option<Duration>,
    chunk_size: Option<usize>,
}

impl MapOptions {
    /// The pool's defaults: its map window, no timeout, one item per task.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` items in flight (submitted and not yet yielded); 0 counts
    /// as 1. Python 3.14's `buffersize`.
    pub fn window(mut self, n: usize) -> Self {
        self.window = Some(n.max(1));
        self
    }

    /// A deadline for the whole iteration, counted from the `map` call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Items per task (default 1; 0 counts as 1; at most the window). See
    /// the module docs, "Chunks".
    pub fn chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = Some(n.max(1));
        self
    }
}

/// One submitted task: a single item, or a chunk of `len` items.
enum Pending<T> {
    One(Future<T>),
    Chunk(Future<Vec<Result<T, TaskError>>>, usize),
}

impl<T> Pending<T> {
    fn len(&self) -> usize {
        match self {
            Pending::One(_) => 1,
            Pending::Chunk(_, n) => *n,
        }
    }

    fn wait(&self, timeout: Option<Duration>) -> bool {
        match self {
            Pending::One(f) => f.wait(timeout),
            Pending::Chunk(f, _) => f.wait(timeout),
        }
    }

    fn cancel(&self) {
        match self {
            Pending::One(f) => f.cancel(),
            Pending::Chunk(f, _) => f.cancel(),
        };
    }
}

/// The iterator returned by [`ThreadPoolExecutor::map`](crate::ThreadPoolExecutor::map).
/// See the module docs for the ordering, error and cancellation rules.
pub struct Map<I, F, T> {
    shared: Arc<Shared>,
    f: Arc<F>,
    /// `None` once exhausted, or once nothing more may be submitted.
    input: Option<I>,
    in_flight: VecDeque<Pending<T>>,
    /// Results of a finished chunk, yielded before anything else.
    ready: VecDeque<Result<T, FutureError>>,
    /// Items submitted and not yet yielded (in `in_flight` or `ready`).
    items: usize,
    window: usize,
    chunk_size: usize,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// Why the rest of the input was not submitted; yielded last.
    stopped: Option<FutureError>,
    finished: bool,
}

impl<I, F, T> Map<I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    pub(crate) fn start(
        shared: Arc<Shared>,
        f: F,
        input: I,
        options: MapOptions,
    ) -> Result<Self, SubmitError> {
        let window = options.window.unwrap_or(shared.config.map_window);
        let chunk_size = options.chunk_size.unwrap_or(1).min(window);
        let mut map = Map {
            shared,
            f: Arc::new(f),
            input: Some(input),
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            items: 0,
            window,
            chunk_size,
            timeout: options.timeout,
            deadline: options.timeout.and_then(|t| Instant::now().checked_add(t)),
            stopped: None,
            finished: false,
        };
        map.fill();
        if map.in_flight.is_empty() {
            if let Some(FutureError::Task(e)) = map.stopped.take() {
                // The very first submit was refused: say so now.
                return Err(match e {
                    TaskError::BrokenExecutor(msg) => SubmitError::Broken(msg),
                    _ => SubmitError::Shutdown,
                });
            }
        }
        Ok(map)
    }

    /// Submits tasks while a whole chunk fits in the window (so chunks stay
    /// full-sized), until the input ends.
    fn fill(&mut self) {
        while self.items + self.chunk_size <= self.window {
            let want = self.chunk_size;
            let Some(input) = self.input.as_mut() else {
                return;
            };
            let batch: Vec<I::Item> = input.by_ref().take(want).collect();
            if batch.is_empty() {
                self.input = None;
                return;
            }
            let ticket = match self.shared.enter(true) {
                Ok(ticket) => ticket,
                Err(refusal) => {
                    self.input = None;
                    self.stopped = Some(refusal_error(refusal));
                    return;
                }
            };
            let f = self.f.clone();
            let n = batch.len();
            let pending = if self.chunk_size == 1 {
                let item = batch.into_iter().next().expect("one item");
                let (promise, future) = promise();
                ticket.push(RawJob::new(PromiseJob::new(move || Ok(f(item)), promise)));
                Pending::One(future)
            } else {
                let (promise, future) = promise();
                let body = move || Ok(run_chunk(&*f, batch));
                ticket.push(RawJob::new(PromiseJob::new(body, promise)));
                Pending::Chunk(future, n)
            };
            self.items += n;
            self.in_flight.push_back(pending);
        }
    }

    /// Yields the next ready result, topping the window up.
    fn yield_ready(&mut self) -> Option<Result<T, FutureError>> {
        let result = self.ready.pop_front()?;
        self.items -= 1;
        self.fill();
        Some(result)
    }
}

/// Applies `f` to each item of a chunk, each under its own `catch_unwind`.
fn run_chunk<X, T>(f: &(impl Fn(X) -> T + ?Sized), items: Vec<X>) -> Vec<Result<T, TaskError>> {
    items
        .into_iter()
        .map(|x| catch_unwind(AssertUnwindSafe(|| f(x))).map_err(TaskError::from_panic))
        .collect()
}

impl<I, F, T> Map<I, F, T> {
    fn cancel_in_flight(&mut self) {
        for pending in self.in_flight.drain(..) {
            pending.cancel();
        }
    }
}

/// Why `map` could not submit the rest of its input, as an item error.
fn refusal_error(refusal: Refusal) -> FutureError {
    FutureError::Task(match refusal.into_submit_error() {
        SubmitError::Broken(msg) => TaskError::BrokenExecutor(msg),
        other => TaskError::Executor(DynError::new(other)),
    })
}

impl<I, F, T> Iterator for Map<I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if let Some(result) = self.yield_ready() {
            return Some(result);
        }
        // The window is full again before we wait (the oldest task still
        // counts as in flight while we wait for it).
        self.fill();
        let Some(oldest) = self.in_flight.pop_front() else {
            self.finished = true;
            return self.stopped.take().map(Err);
        };
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if !oldest.wait(Some(left)) {
                // gh-95166: the task being waited on is cancelled too.
                oldest.cancel();
                self.cancel_in_flight();
                self.input = None;
                self.stopped = None;
                self.finished = true;
                return Some(Err(FutureError::Timeout(self.timeout.unwrap_or_default())));
            }
        }
        let n = oldest.len();
        match oldest {
            Pending::One(future) => {
                self.items -= 1;
                self.fill();
                Some(future.into_result())
            }
            Pending::Chunk(future, _) => {
                match future.into_result() {
                    Ok(results) => self
                        .ready
                        .extend(results.into_iter().map(|r| r.map_err(FutureError::Task))),
                    // Cancelled or broken before it ran: every item says so.
                    Err(e) => self.ready.extend((0..n).map(|_| Err(e.clone()))),
                }
                self.yield_ready()
            }
        }
    }
}

impl<I, F, T> FusedIterator for Map<I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
}

impl<I, F, T> Drop for Map<I, F, T> {
    fn drop(&mut self) {
        self.cancel_in_flight();
    }
}

impl<I, F, T> fmt::Debug for Map<I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("in_flight_items", &self.items)
            .field("window", &self.window)
            .field("chunk_size", &self.chunk_size)
            .field("input_left", &self.input.is_some())
            .field("finished", &self.finished)
            .finish()
    }
}
