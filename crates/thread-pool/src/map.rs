//! `map`: ordered, with Python 3.14's submission rules, and an opt-in
//! bounded window of tasks in flight.
//!
//! ## When items are submitted (Python 3.14's `Executor.map`)
//!
//! * **By default every item is submitted when `map` is called**, as
//!   CPython does (`fs = [self.submit(fn, *args) for args in ...]`). So the
//!   work is the pool's from then on: a shutdown without `cancel_futures`
//!   runs all of it, and dropping the pool (a waited shutdown) runs all of it
//!   before the iterator yields it. The price is Python's too: the input is
//!   consumed at the call (an infinite input never returns) and one future
//!   per task is held until yielded.
//! * **With a window** ([`MapOptions::window`], or the pool's
//!   [`Builder::map_window`](crate::Builder::map_window); 3.14's
//!   `buffersize`) the first `n` items are submitted at the call and one more
//!   each time one is yielded: at most `n` items are submitted and not yet
//!   yielded at any moment, waiting included (CPython submits the next one
//!   before it waits and briefly has `n + 1`, gh-131466; we submit after).
//!   So a map over ten million items, or an infinite iterator, holds `n`
//!   futures. Items not yet submitted when the pool is shut down are never
//!   run: after the submitted ones, the iterator yields one
//!   [`MapShutDown`] error that says so, and ends (a broken pool: one
//!   `BrokenExecutor` error). CPython instead raises the shutdown's
//!   `RuntimeError` at the next `next()` and cancels what was still queued.
//!
//! ## What dropping the iterator cancels
//!
//! Exactly what closing CPython's `result_iterator` generator cancels:
//!
//! * **never advanced** (no `next()` yet): nothing. CPython's generator has
//!   not started, so its `finally` does not run; the submitted items run.
//!   In windowed mode the rest of the input is simply never submitted;
//! * **advanced and not finished**: every submitted, not yet yielded task
//!   that has not started (a running task cannot be cancelled; its result is
//!   discarded). In windowed mode the rest of the input is not submitted;
//! * **finished** (exhausted, or ended by its timeout): nothing is left.
//!
//! ## Errors: one `Result` per item, and the iteration goes on
//!
//! A failing item (the closure panicked) yields its own `Err` and the
//! following items are still yielded: the behaviour of CPython's main branch
//! (gh-108518, "make Executor.map consistent with the built-in map"), which
//! is what users asked for; 3.14 instead stops at the first error and
//! cancels the rest. In Rust, an item that can fail returns a `Result` from
//! the closure, which arrives as `Ok(Err(e))`.
//!
//! The optional timeout is counted from the `map` call, as in Python: the
//! item being waited on yields `Err(FutureError::Timeout)`, that item and
//! every other one in flight are cancelled (gh-95166), and the iterator is
//! finished.
//!
//! ## Chunks
//!
//! The default map (no window, no chunk size) runs its items in *adaptive
//! claims*, sized from the measured cost per item: one item at first, then
//! about 50 us of work per claim, shrinking at once when items turn slow
//! (`adaptive.rs`, and `docs/thread-pool.md`). A dropped iterator then cancels
//! every item that has not started, the unstarted rest of a running claim
//! included: the runners look before every item. `shutdown(cancel_futures)`
//! (or a broken pool) stops them the same way, and the items no runner
//! started yield `Cancelled` (or the broken pool's error).
//!
//! With [`MapOptions::chunk_size`]`(n)`, each task applies `f` to `n`
//! consecutive items (each under its own `catch_unwind`, so a panic still
//! fails only its item) and the iterator yields them one by one. That cuts
//! the per-item cost of a task and its future, which dominates when `f` is
//! cheap. A window still counts items. Python's thread pool ignores its
//! `chunksize`; its process pool uses it the same way.

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use future::{promise, DynError, Future, FutureError, TaskError};

use crate::adaptive::Adaptive;
use crate::error::{MapShutDown, SubmitError};
use crate::job::PromiseJob;
use crate::raw::RawJob;
use crate::shared::{Refusal, Shared};
use crate::trace::traced;

/// Options of [`ThreadPoolExecutor::map_with`](crate::ThreadPoolExecutor::map_with).
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct MapOptions {
    window: Option<usize>,
    timeout: Option<Duration>,
    chunk_size: Option<usize>,
}

impl MapOptions {
    /// The pool's defaults: every item submitted at the call (unless the
    /// pool has a default map window), no timeout, one item per task.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lazy mode, Python 3.14's `buffersize`: at most `n` items in
    /// flight (submitted and not yet yielded, the one being waited for
    /// included), the rest of the input taken as results are yielded; 0
    /// counts as 1. See the module docs for what a shutdown then does.
    pub fn window(mut self, n: usize) -> Self {
        self.window = Some(n.max(1));
        self
    }

    /// A deadline for the whole iteration, counted from the `map` call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Items per task (default 1; 0 counts as 1; at most the window, if
    /// any). See the module docs, "Chunks".
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
    /// Items submitted so far.
    submitted: usize,
    /// At most this many items submitted and not yet yielded; `usize::MAX`
    /// when every item is submitted at the call.
    window: usize,
    chunk_size: usize,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// Why the rest of the input was not submitted; yielded last.
    stopped: Option<FutureError>,
    /// The default mode: adaptive chunks (`adaptive.rs`); the fields above
    /// are then unused.
    adaptive: Option<Adaptive<T>>,
    /// `next()` was called: from then on a drop cancels (module docs).
    advanced: bool,
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
        // The deadline counts from the call, before the input is read (the
        // default map reads all of it here), as CPython takes `end_time`
        // before it submits.
        let deadline = options.timeout.and_then(|t| Instant::now().checked_add(t));
        let window = options
            .window
            .or(shared.config.map_window)
            .unwrap_or(usize::MAX);
        let chunk_size = options.chunk_size.unwrap_or(1).min(window);
        let f = Arc::new(f);
        // A traced map runs one task per item: each item gets its own bar.
        let adaptive_ok = shared.config.trace.is_none();
        let (adaptive, input) =
            if window == usize::MAX && options.chunk_size.is_none() && adaptive_ok {
                let adaptive = Adaptive::start(shared.clone(), f.clone(), input)
                    .map_err(Refusal::into_submit_error)?;
                (Some(adaptive), None)
            } else {
                (None, Some(input))
            };
        let mut map = Map {
            shared,
            f,
            input,
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            items: 0,
            submitted: 0,
            window,
            chunk_size,
            timeout: options.timeout,
            deadline,
            stopped: None,
            adaptive,
            advanced: false,
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
    /// full-sized), until the input ends; without a window, all of them.
    fn fill(&mut self) {
        while self.items.saturating_add(self.chunk_size) <= self.window {
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
                    self.stopped = Some(refusal_error(refusal, self.submitted));
                    return;
                }
            };
            let f = self.f.clone();
            let n = batch.len();
            let pending = if self.chunk_size == 1 {
                let item = batch.into_iter().next().expect("one item");
                let (promise, future) = promise();
                let body = move || Ok(f(item));
                match &self.shared.config.trace {
                    None => ticket.push(RawJob::new(PromiseJob::new(body, promise))),
                    Some(recorder) => ticket.push(RawJob::new(PromiseJob::new(
                        traced(recorder, body),
                        promise,
                    ))),
                }
                Pending::One(future)
            } else {
                let (promise, future) = promise();
                let body = move || Ok(run_chunk(&*f, batch));
                match &self.shared.config.trace {
                    None => ticket.push(RawJob::new(PromiseJob::new(body, promise))),
                    Some(recorder) => ticket.push(RawJob::new(PromiseJob::new(
                        traced(recorder, body),
                        promise,
                    ))),
                }
                Pending::Chunk(future, n)
            };
            self.items += n;
            self.submitted += n;
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
fn refusal_error(refusal: Refusal, submitted: usize) -> FutureError {
    FutureError::Task(match refusal.into_submit_error() {
        SubmitError::Broken(msg) => TaskError::BrokenExecutor(msg),
        SubmitError::Shutdown => TaskError::Executor(DynError::new(MapShutDown { submitted })),
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

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // The default map's per-item path, small enough to inline into the
        // caller's loop: a value of the current claim.
        if let Some(value) = self.adaptive.as_mut().and_then(Adaptive::next_ready) {
            return Some(Ok(value));
        }
        self.next_slow()
    }

    /// The default map's consumer path for `sum`, `for_each`, `count` and
    /// every other consuming adapter built on `fold`: it takes each claim's
    /// values whole (`Adaptive::fold_ready`) instead of one `next()` at a
    /// time, and falls back to `next` only between pieces, for a failed
    /// item, the wait and the timeout. What it yields, in what order, and
    /// what a drop cancels are exactly what `next` gives: if `g` panics, the
    /// map is dropped mid-iteration, as a `for` loop that panics drops it.
    fn fold<B, G>(mut self, init: B, mut g: G) -> B
    where
        G: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        if self.adaptive.is_none() {
            for item in self.by_ref() {
                acc = g(acc, item);
            }
            return acc;
        }
        loop {
            if let Some(adaptive) = self.adaptive.as_mut() {
                acc = adaptive.fold_ready(acc, |acc, value| g(acc, Ok(value)));
            }
            match self.next_slow() {
                Some(item) => acc = g(acc, item),
                None => return acc,
            }
        }
    }
}

impl<I, F, T> Map<I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    /// Everything but the default map's per-item path.
    #[inline(never)]
    fn next_slow(&mut self) -> Option<Result<T, FutureError>> {
        if self.finished {
            return None;
        }
        self.advanced = true;
        if let Some(adaptive) = &mut self.adaptive {
            return match adaptive.next(self.deadline) {
                None => {
                    self.finished = true;
                    None
                }
                Some(Ok(result)) => Some(result),
                Some(Err(())) => {
                    // The map's timeout: nothing more starts (gh-95166).
                    adaptive.cancel();
                    self.finished = true;
                    Some(Err(FutureError::Timeout(self.timeout.unwrap_or_default())))
                }
            };
        }
        if let Some(result) = self.yield_ready() {
            return Some(result);
        }
        // Top the window up before waiting: the oldest task still counts as
        // in flight while we wait for it, so this never exceeds the window.
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
                // Wait first, then submit the replacement: never more than
                // the window in flight, waiting included (the window is a bound
                // on memory and on the pool's share, so it must hold at every moment).
                let result = future.into_result();
                self.items -= 1;
                self.fill();
                Some(result)
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
    /// Cancels what closing CPython's `result_iterator` cancels: nothing if
    /// `next()` was never called, else every task not yet yielded and not
    /// started (module docs).
    fn drop(&mut self) {
        if self.advanced {
            if let Some(adaptive) = &mut self.adaptive {
                adaptive.cancel();
            }
            self.cancel_in_flight();
        }
    }
}

impl<I, F, T> fmt::Debug for Map<I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("adaptive", &self.adaptive.is_some())
            .field(
                "in_flight_items",
                &self.adaptive.as_ref().map_or(self.items, Adaptive::left),
            )
            .field("submitted", &self.submitted)
            .field(
                "window",
                &(self.window != usize::MAX).then_some(self.window),
            )
            .field("chunk_size", &self.chunk_size)
            .field("input_left", &self.input.is_some())
            .field("finished", &self.finished)
            .finish()
    }
}
