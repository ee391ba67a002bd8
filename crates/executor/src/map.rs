//! The result iterator of the default [`Executor::map`](crate::Executor::map).

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;

use future::{Future, FutureError};

use crate::error::ExecutorError;

/// The iterator of the default `map`: the futures of every item, submitted
/// up front, yielded in input order. Dropping it cancels the futures not yet
/// yielded (those not started yet actually cancel).
pub(crate) struct Map<R> {
    futures: VecDeque<Future<R>>,
}

impl<R> Map<R> {
    /// Collects the submitted futures, stopping at the first refusal.
    pub(crate) fn submit_all(
        submitted: impl Iterator<Item = Result<Future<R>, ExecutorError>>,
    ) -> Result<Self, ExecutorError> {
        let futures = submitted.collect::<Result<VecDeque<_>, _>>()?;
        Ok(Map { futures })
    }
}

impl<R> Iterator for Map<R> {
    type Item = Result<R, FutureError>;

    fn next(&mut self) -> Option<Self::Item> {
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
