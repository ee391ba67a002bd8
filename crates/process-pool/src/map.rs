//! `map`: ordered, lazy, bounded in flight, in chunks.
//!
//! Python's `ProcessPoolExecutor.map` cuts the input into chunks of
//! `chunksize` items, runs each chunk as one task (one frame each way
//! instead of one per item) and flattens the result lists. We do the same,
//! with two differences:
//!
//! * It is lazy: only `window` chunks are in flight (three per worker, or
//!   64 items per worker for small chunks, whichever is more); the
//!   next chunk is cut from the input as an earlier one is consumed. A map
//!   over ten million items holds a few chunks in memory, never the whole
//!   input (Python 3.13 submits everything up front; 3.14's `buffersize`
//!   is the same idea).
//! * One result per input item, always: if a chunk fails (a panic in `f`, a
//!   dead worker), each of its items yields that chunk's error, and the
//!   iteration goes on with the next chunk. Python raises once and stops.
//!
//! Dropping the iterator early cancels the chunks still queued.
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

use future::{Future, FutureError, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::executor::ProcessPoolExecutor;

/// A submitted chunk: its future, or why it could not be submitted.
type Chunk<R> = Result<Future<Vec<R>>, FutureError>;

/// The iterator returned by [`ProcessPoolExecutor::map`]: one
/// `Result<R, FutureError>` per input item, in input order.
pub struct Map<'a, A, R, I> {
    pool: &'a ProcessPoolExecutor,
    f: fn(A) -> R,
    items: I,
    chunksize: usize,
    window: usize,
    /// Submitted chunks, oldest first, with their item counts.
    inflight: VecDeque<(Chunk<R>, usize)>,
    /// Results of the chunk being yielded.
    current: std::vec::IntoIter<R>,
    /// The error of the chunk being yielded, and how many items are left.
    failing: Option<(FutureError, usize)>,
    exhausted: bool,
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
    pub(crate) fn new(
        pool: &'a ProcessPoolExecutor,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
        window: usize,
    ) -> Self {
        let mut map = Map {
            pool,
            f,
            items,
            chunksize,
            window: window.max(1),
            inflight: VecDeque::new(),
            current: Vec::new().into_iter(),
            failing: None,
            exhausted: false,
            started: Instant::now(),
            timeout: None,
            timed_out: false,
        };
        map.fill();
        map
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
    fn fill(&mut self) {
        while !self.exhausted && self.inflight.len() < self.window {
            let chunk: Vec<A> = self.items.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                self.exhausted = true;
                return;
            }
            let len = chunk.len();
            let fut = self
                .pool
                .submit_chunk(self.f, &chunk)
                .map_err(|e| FutureError::Task(TaskError::BrokenExecutor(e.to_string())));
            self.inflight.push_back((fut, len));
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
            let (fut, len) = self.inflight.pop_front()?;
            if let (Ok(pending), Some(timeout)) = (&fut, self.timeout) {
                let left = (self.started + timeout).saturating_duration_since(Instant::now());
                if !pending.wait(Some(left)) {
                    pending.cancel();
                    self.cancel_inflight();
                    self.exhausted = true;
                    self.timed_out = true;
                    return Some(Err(FutureError::Timeout(timeout)));
                }
            }
            // Keep the workers busy while we hand out this chunk.
            self.fill();
            match fut.and_then(Future::into_result) {
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
            if let Ok(fut) = fut {
                fut.cancel();
            }
        }
    }
}

impl<A, R, I> Drop for Map<'_, A, R, I> {
    fn drop(&mut self) {
        self.cancel_inflight();
    }
}
