//! Executor, step 2: `map` as CPython writes it.
//!
//! CPython's `Executor.map` is ten lines: submit *every* item at once, then
//! return a generator that waits for the futures in input order and, when
//! it is closed early, cancels the ones not yet yielded:
//!
//! ```python
//! fs = [self.submit(fn, *args) for args in zip(*iterables)]
//! def result_iterator():
//!     try:
//!         fs.reverse()
//!         while fs:
//!             yield _result_or_cancel(fs.pop())
//!     finally:
//!         for future in fs:
//!             future.cancel()
//! ```
//!
//! Written once over step 1's trait, it works for every executor. The cost:
//! a million items make a million futures before the first result.

use std::cell::Cell;
use std::collections::VecDeque;

use future::{Future, FutureError};

use crate::s12_executor_trait_inline::{Executor, Inline, ShutdownError};

/// The results, in input order; dropping it cancels what it has not yielded.
pub struct Results<R> {
    futures: VecDeque<Future<R>>,
}

/// Submits every item now; a refusal fails the call (items already
/// submitted run on, as in CPython).
pub fn map<E, A, R>(
    executor: &E,
    f: fn(A) -> R,
    items: impl IntoIterator<Item = A>,
) -> Result<Results<R>, ShutdownError>
where
    E: Executor,
    A: Send + 'static,
    R: Send + Clone + 'static,
{
    let futures = items.into_iter().map(|item| executor.submit(f, item));
    Ok(Results { futures: futures.collect::<Result<_, _>>()? })
}

impl<R: Clone> Iterator for Results<R> {
    type Item = Result<R, FutureError>;

    /// Blocks for the next future in input order (not completion order).
    fn next(&mut self) -> Option<Self::Item> {
        self.futures.pop_front().map(|future| future.result())
    }
}

impl<R> Drop for Results<R> {
    fn drop(&mut self) {
        for future in &self.futures {
            future.cancel(); // false for a task already running: it runs on
        }
    }
}

/// The inline executor, counting its submits (to show *when* they happen).
#[derive(Default)]
pub struct Counting(Inline, Cell<usize>);

impl Counting {
    pub fn submitted(&self) -> usize {
        self.1.get()
    }
}

impl Executor for Counting {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ShutdownError>
    where
        A: Send + 'static,
        R: Send + 'static,
    {
        self.1.set(self.1.get() + 1);
        self.0.submit(f, arg)
    }

    fn shutdown(&self) {
        self.0.shutdown();
    }
}

/// The demo: `cargo run -p learn -- s13`.
pub fn main() {
    let executor = Counting::default();
    let Ok(mut squares) = map(&executor, |x: u64| x * x, 1..=5) else { return };
    println!("submitted before the first result: {}", executor.submitted());
    println!("first: {:?}; the rest: {:?}", squares.next(), squares.collect::<Vec<_>>());
}

// The production crate adds: `map` on the trait, items that fail alone, and
// Python 3.14's rule that a dropped iterator cancels what has not started.
// See `Map::submit_all` in `crates/executor/src/map.rs`.
