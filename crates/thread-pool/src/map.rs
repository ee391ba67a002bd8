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
//! Python, work starts without iterating). Each `next()` takes the oldest
//! future, submits one more item to keep `window` in flight (the one being
//! waited on counts: CPython main submits before popping and briefly has
//! `window + 1`, gh-131466), then waits for that oldest future and moves its
//! value out. Results therefore come in input order, whatever order the
//! tasks finish in.
//!
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

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
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
}

impl MapOptions {
    /// The pool's defaults: its map window, no timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` tasks in flight (submitted and not yet yielded); 0 counts
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
}

/// The iterator returned by [`ThreadPoolExecutor::map`](crate::ThreadPoolExecutor::map).
/// See the module docs for the ordering, error and cancellation rules.
pub struct Map<I, F, T> {
    shared: Arc<Shared>,
    f: Arc<F>,
    /// `None` once exhausted, or once nothing more may be submitted.
    input: Option<I>,
    in_flight: VecDeque<Future<T>>,
    window: usize,
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
        let mut map = Map {
            shared,
            f: Arc::new(f),
            input: Some(input),
            in_flight: VecDeque::with_capacity(window),
            window,
            timeout: options.timeout,
            deadline: options.timeout.and_then(|t| Instant::now().checked_add(t)),
            stopped: None,
            finished: false,
        };
        map.fill(window);
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

    /// Submits items until `target` are in flight or the input ends.
    fn fill(&mut self, target: usize) {
        while self.in_flight.len() < target {
            let Some(item) = self.input.as_mut().and_then(Iterator::next) else {
                self.input = None;
                return;
            };
            let ticket = match self.shared.enter(true) {
                Ok(ticket) => ticket,
                Err(refusal) => {
                    self.input = None;
                    self.stopped = Some(refusal_error(refusal));
                    return;
                }
            };
            let f = self.f.clone();
            let (promise, future) = promise();
            ticket.push(RawJob::new(PromiseJob::new(move || Ok(f(item)), promise)));
            self.in_flight.push_back(future);
        }
    }
}

impl<I, F, T> Map<I, F, T> {
    fn cancel_in_flight(&mut self) {
        for future in self.in_flight.drain(..) {
            future.cancel();
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
        if self.in_flight.is_empty() {
            // Window 1: the previous call submitted nothing ahead.
            self.fill(1);
        }
        let Some(oldest) = self.in_flight.pop_front() else {
            self.finished = true;
            return self.stopped.take().map(Err);
        };
        // Keep the window full while we wait: the oldest counts as in flight.
        self.fill(self.window - 1);
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if !oldest.wait(Some(left)) {
                // gh-95166: the future being waited on is cancelled too.
                oldest.cancel();
                self.cancel_in_flight();
                self.input = None;
                self.stopped = None;
                self.finished = true;
                return Some(Err(FutureError::Timeout(self.timeout.unwrap_or_default())));
            }
        }
        Some(oldest.into_result())
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
            .field("in_flight", &self.in_flight.len())
            .field("window", &self.window)
            .field("input_left", &self.input.is_some())
            .field("finished", &self.finished)
            .finish()
    }
}
