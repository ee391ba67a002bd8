//! `map`: ordered, in chunks, with Python 3.14's submission rules and an
//! opt-in bounded window.
//!
//! Python's `ProcessPoolExecutor.map` cuts the input into chunks of
//! `chunksize` items, runs each chunk as one task (one frame each way
//! instead of one per item) and flattens the result lists. We do the same.
//!
//! ## When chunks are submitted (Python 3.14)
//!
//! * **By default every chunk is submitted when `map` is called**
//!   ([`ProcessPoolExecutor::map`]), as CPython does. The work is the
//!   pool's from then on: `shutdown(false, false)` or `shutdown(true,
//!   false)` afterwards runs all of it, and the iterator yields every
//!   result. The price is Python's too: the input is consumed at the call
//!   (an infinite input never returns) and every chunk's frame is queued.
//! * **With a window** ([`ProcessPoolExecutor::map_windowed`], 3.14's
//!   `buffersize`, which counts chunks there too) the first `window` chunks
//!   are submitted at the call, and one more each time a chunk has been
//!   waited for: at most `window` chunks are submitted and not yet taken
//!   by the iterator, waiting included (CPython submits the next one before
//!   it waits and briefly has `window + 1`, gh-131466). A map over ten
//!   million items, or an endless iterator, holds a few chunks. Chunks not
//!   yet submitted when the pool is shut down are never run: after the
//!   submitted ones, the iterator yields one [`MapShutDown`] error that says
//!   so, and ends (a broken pool: one `BrokenExecutor` error). CPython
//!   raises the shutdown's `RuntimeError` at that `next()` instead.
//!
//! ## What dropping the iterator cancels
//!
//! Exactly what closing CPython's `result_iterator` generator cancels:
//!
//! * **never advanced** (no `next()` yet): nothing. CPython's generator has
//!   not started, so its `finally` does not run: every submitted chunk
//!   runs (in windowed mode, the rest of the input is never submitted);
//! * **advanced and not finished**: every submitted chunk not yet taken
//!   that has not started (one already in a worker cannot be cancelled and
//!   finishes unseen);
//! * **finished** (exhausted, or ended by its timeout): nothing is left.
//!
//! ## Errors: one result per item, and the iteration goes on
//!
//! If a chunk fails (a panic in `f`, a dead worker), each of its items
//! yields that chunk's error, and the iteration goes on with the next chunk
//! (CPython's main branch, gh-108518, goes on too; 3.14 raises once and
//! stops).
//!
//! ## Timeout
//!
//! [`Map::timeout`] is Python's `timeout` argument: a deadline for the whole
//! iteration, counted from the `map` call. When the chunk being waited for
//! is not back in time, the item yields `Err(FutureError::Timeout)`, every
//! chunk in flight is cancelled (the one waited for too, gh-95166; a chunk
//! already running in a worker cannot be stopped and finishes unseen, as in
//! Python), and the iterator is finished.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use future::{DynError, Future, FutureError, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{MapShutDown, SubmitError};
use crate::parent::executor::ProcessPoolExecutor;

/// The iterator returned by [`ProcessPoolExecutor::map`] and
/// [`ProcessPoolExecutor::map_windowed`]: one `Result<R, FutureError>` per
/// input item, in input order (and, in windowed mode, one last error if the
/// pool was shut down before the input was all submitted).
pub struct Map<'a, A, R, I> {
    pool: &'a ProcessPoolExecutor,
    f: fn(A) -> R,
    items: I,
    chunksize: usize,
    /// `None`: every chunk was submitted at the call.
    window: Option<usize>,
    /// Submitted chunks, oldest first, with their item counts.
    inflight: VecDeque<(Future<Vec<R>>, usize)>,
    /// Items submitted so far.
    submitted: usize,
    /// Results of the chunk being yielded.
    current: std::vec::IntoIter<R>,
    /// The error of the chunk being yielded, and how many items are left.
    failing: Option<(FutureError, usize)>,
    /// No more input will be submitted.
    exhausted: bool,
    /// Why the rest of the input was not submitted: yielded once, last.
    stopped: Option<FutureError>,
    /// `next()` was called: from then on a drop cancels (see module docs).
    advanced: bool,
    /// When `map` was called: the timeout counts from here.
    started: Instant,
    timeout: Option<Duration>,
    /// Set once the timeout fired: nothing more is yielded.
    timed_out: bool,
}

impl<'a, A, R, I> Map<'a, A, R, I>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    /// Submits every chunk (`window` `None`) or the first `window` ones.
    /// Errs if the pool refuses a chunk at the call; the chunks submitted
    /// before it are left to run, as in CPython.
    pub(crate) fn new(
        pool: &'a ProcessPoolExecutor,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
        window: Option<usize>,
    ) -> Result<Self, SubmitError> {
        let mut map = Map {
            pool,
            f,
            items,
            chunksize,
            window: window.map(|w| w.max(1)),
            inflight: VecDeque::new(),
            submitted: 0,
            current: Vec::new().into_iter(),
            failing: None,
            exhausted: false,
            stopped: None,
            advanced: false,
            started: Instant::now(),
            timeout: None,
            timed_out: false,
        };
        map.fill()?;
        Ok(map)
    }

    /// A deadline for the whole iteration, counted from the `map` call
    /// (Python's `timeout`). See the module docs for what happens when it
    /// passes.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Submits chunks until the window is full or the input ends.
    fn fill(&mut self) -> Result<(), SubmitError> {
        while !self.exhausted && self.window.is_none_or(|w| self.inflight.len() < w) {
            let chunk: Vec<A> = self.items.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.exhausted = true;
                break;
            }
            let len = chunk.len();
            let fut = self.pool.submit_chunk(self.f, &chunk).inspect_err(|_| {
                self.exhausted = true;
            })?;
            self.submitted += len;
            self.inflight.push_back((fut, len));
        }
        Ok(())
    }

    /// Windowed mode, after a chunk was taken: one more, or remember why not.
    fn refill(&mut self) {
        if let Err(e) = self.fill() {
            self.stopped = Some(match e {
                SubmitError::Broken(why) => FutureError::Task(TaskError::BrokenExecutor(why)),
                _ => FutureError::Task(TaskError::Executor(DynError::new(MapShutDown {
                    submitted: self.submitted,
                }))),
            });
        }
    }
}

impl<A, R, I> Iterator for Map<'_, A, R, I>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
    I: Iterator<Item = A>,
{
    type Item = Result<R, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advanced = true;
        loop {
            if let Some(value) = self.current.next() {
                return Some(Ok(value));
            }
            if let Some((error, left)) = &mut self.failing {
                if *left > 0 {
                    *left -= 1;
                    return Some(Err(error.clone()));
                }
                self.failing = None;
            }
            if self.timed_out {
                return None;
            }
            let Some((fut, len)) = self.inflight.pop_front() else {
                return self.stopped.take().map(Err);
            };
            if let Some(timeout) = self.timeout {
                let left = (self.started + timeout).saturating_duration_since(Instant::now());
                if !fut.wait(Some(left)) {
                    fut.cancel();
                    self.cancel_inflight();
                    self.exhausted = true;
                    self.stopped = None;
                    self.timed_out = true;
                    return Some(Err(FutureError::Timeout(timeout)));
                }
            }
            let outcome = fut.into_result();
            // Submitted after the wait: at most `window` chunks are out,
            // the one waited for included.
            if self.window.is_some() {
                self.refill();
            }
            match outcome {
                Ok(values) if values.len() == len => self.current = values.into_iter(),
                Ok(_) => {
                    let e = TaskError::BrokenExecutor(
                        "a map chunk came back with the wrong number of results".into(),
                    );
                    self.failing = Some((FutureError::Task(e), len));
                }
                Err(e) => self.failing = Some((e, len)),
            }
        }
    }
}

impl<A, R, I> Map<'_, A, R, I> {
    /// Cancels every chunk still in flight (those already running finish).
    fn cancel_inflight(&mut self) {
        for (fut, _) in self.inflight.drain(..) {
            fut.cancel();
        }
    }
}

impl<A, R, I> Drop for Map<'_, A, R, I> {
    fn drop(&mut self) {
        // A never-advanced map is CPython's unstarted generator: closing it
        // runs no `finally`, so its calls are left to run.
        if self.advanced {
            self.cancel_inflight();
        }
    }
}
