//! The result iterator of the default [`Executor::map`](crate::Executor::map).

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;

use future::{Future, FutureError};

use crate::error::ExecutorError;

/// The iterator of the default `map`: the futures of every item, submitted
/// up front, yielded in input order.
///
/// Dropping it does what closing CPython 3.14's `result_iterator` does:
/// never advanced, nothing (a generator that has not started skips its
/// `finally`, so every item runs); advanced, it cancels the futures not yet
/// yielded (those not started yet actually cancel).
pub(crate) struct Map<R> {
    futures: VecDeque<Future<R>>,
    /// Whether `next` was called: only then does a drop cancel.
    advanced: bool,
}

impl<R> Map<R> {
    /// Collects the submitted futures, stopping at the first refusal.
    pub(crate) fn submit_all(
        submitted: impl Iterator<Item = Result<Future<R>, ExecutorError>>,
    ) -> Result<Self, ExecutorError> {
        let futures = submitted.collect::<Result<VecDeque<_>, _>>()?;
        Ok(Map {
            futures,
            advanced: false,
        })
    }
}

impl<R> Iterator for Map<R> {
    type Item = Result<R, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advanced = true;
        self.futures.pop_front().map(Future::into_result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.futures.len(), Some(self.futures.len()))
    }
}

impl<R> ExactSizeIterator for Map<R> {}

impl<R> FusedIterator for Map<R> {}

impl<R> Drop for Map<R> {
    fn drop(&mut self) {
        if !self.advanced {
            return;
        }
        for future in &self.futures {
            future.cancel();
        }
    }
}

impl<R> fmt::Debug for Map<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("remaining", &self.futures.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use future::promise;

    /// Three pending futures (their promises kept alive) in a `Map`.
    fn pending_map() -> (Vec<future::Promise<u32>>, Vec<Future<u32>>, Map<u32>) {
        let (promises, futures): (Vec<_>, Vec<_>) = (0..3).map(|_| promise::<u32>()).unzip();
        let map = Map::submit_all(futures.iter().cloned().map(Ok)).unwrap();
        (promises, futures, map)
    }

    #[test]
    fn a_fresh_iterator_dropped_cancels_nothing() {
        let (_promises, futures, map) = pending_map();
        drop(map);
        assert!(futures.iter().all(|f| !f.cancelled()));
    }

    #[test]
    fn an_advanced_iterator_dropped_cancels_what_it_has_not_yielded() {
        let (promises, futures, mut map) = pending_map();
        promises[0].set_result(7).unwrap();
        assert_eq!(map.next().unwrap().unwrap(), 7);
        // The second has started: cancelling it fails; the third is cancelled.
        assert!(promises[1].set_running_or_notify_cancel().unwrap());
        drop(map);
        assert!(!futures[1].cancelled());
        assert!(futures[2].cancelled());
    }

    #[test]
    fn yields_in_input_order_and_stops_at_the_first_refusal() {
        let (promises, _futures, map) = pending_map();
        promises[2].set_result(3).unwrap();
        promises[1].set_result(2).unwrap();
        promises[0].set_result(1).unwrap();
        assert_eq!(map.map(Result::unwrap).collect::<Vec<_>>(), [1, 2, 3]);

        let refused = crate::ExecutorError::new(crate::ErrorKind::Shutdown, "test", "no");
        let err = Map::<u32>::submit_all([Err(refused)].into_iter()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Shutdown);
    }
}
