//! Executor, step 3: a windowed `map`.
//!
//! Step 2 submits every item before the first result: a million items, a
//! million futures in memory, and an endless iterator never returns. A
//! window of `n` fixes both: submit the first `n`, then one more each time a
//! result is taken, so at most `n` items are submitted and not yet yielded.
//! (Python 3.14 added this as `map(..., buffersize=n)`.) The input is read
//! lazily, so it may be endless. A refusal part-way (the executor shut down)
//! becomes one `Err` item after those already in flight, and ends the map.

use std::collections::VecDeque;

use future::{DynError, Future, FutureError, TaskError};

use crate::s12_executor_trait_inline::{Executor, ShutdownError};
use crate::s13_executor_map_eager::Counting;

pub struct Windowed<'e, E, I: Iterator, R> {
    executor: &'e E,
    f: fn(I::Item) -> R,
    items: I,
    in_flight: VecDeque<Future<R>>,
    window: usize,
    /// Set by a refusal: no more input is read, and the map ends after...
    stopped: bool,
    /// ...the refusal itself, yielded once as the last item.
    refused: Option<ShutdownError>,
}

pub fn map_windowed<E, I, R>(
    executor: &E,
    f: fn(I::Item) -> R,
    items: I,
    window: usize,
) -> Windowed<'_, E, I::IntoIter, R>
where
    E: Executor,
    I: IntoIterator<Item: Send + 'static>,
    R: Send + Clone + 'static,
{
    let in_flight = VecDeque::new();
    let mut map = Windowed {
        executor,
        f,
        items: items.into_iter(),
        in_flight,
        window: window.max(1),
        stopped: false,
        refused: None,
    };
    map.fill();
    map
}

impl<E: Executor, I: Iterator<Item: Send + 'static>, R: Send + 'static> Windowed<'_, E, I, R> {
    /// Submits items until `window` are in flight (or the input ends).
    fn fill(&mut self) {
        while self.in_flight.len() < self.window && !self.stopped {
            let Some(item) = self.items.next() else { return };
            match self.executor.submit(self.f, item) {
                Ok(future) => self.in_flight.push_back(future),
                Err(refusal) => (self.refused, self.stopped) = (Some(refusal), true),
            }
        }
    }
}

impl<E: Executor, I: Iterator<Item: Send + 'static>, R: Send + Clone + 'static> Iterator
    for Windowed<'_, E, I, R>
{
    type Item = Result<R, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fill(); // the head is still in flight while we wait for it
        match self.in_flight.pop_front() {
            Some(head) => Some(head.result()),
            None => self
                .refused
                .take()
                .map(|e| Err(FutureError::Task(TaskError::Executor(DynError::new(e))))),
        }
    }
}

impl<E, I: Iterator, R> Drop for Windowed<'_, E, I, R> {
    fn drop(&mut self) {
        for future in &self.in_flight {
            future.cancel(); // false for a task already running: it runs on
        }
    }
}

/// The demo: `cargo run -p learn -- s14`.
pub fn main() {
    let executor = Counting::default();
    let mut squares = map_windowed(&executor, |x: u64| x * x, 1.., 2); // endless input
    println!("submitted before the first result: {}", executor.submitted());
    println!("first three: {:?}", [squares.next(), squares.next(), squares.next()]);
    println!("submitted after three results: {}", executor.submitted());
}

// The production crate adds: the window on the thread pool's own `map`
// (`MapOptions::window`), chunks, timeouts, and cancellation by shutdown. See
// `Map::fill` in `crates/thread-pool/src/map.rs`.
