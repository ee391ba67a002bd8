//! Pipelining: how many tasks a worker may hold at once.
//!
//! # Pipelining and cancellation
//!
//! A worker is given up to `tasks_per_worker` tasks at once (default 2), so
//! it finds the next task already in its pipe when it finishes one; only
//! when every worker is busy. Unless `tasks_per_worker` was set explicitly,
//! workers whose tasks are short get more: as many as they finish in about
//! [`PIPELINE_BUDGET`] (2 ms) by the running average of their recent task
//! times, at most [`MAX_DEPTH`] (32). Tiny tasks then travel many to a
//! `read` and a `poll`, which is what makes 10,000 one-line tasks fast,
//! while a task handed to a worker stays uncancellable for at most ~2 ms
//! longer than it would without pipelining.
//!
//! A task is marked running (and so stops being cancellable) only when it
//! is handed to a worker: everything else waits in the pool's queue,
//! cancellable. Results come back in the order tasks were sent, so the task
//! at the head of a worker's list is the one it is running: it starts when
//! its frame is fully written and the previous result has arrived, which is
//! when its timeout clock starts.

use std::time::Duration;

/// A worker may hold as many short tasks as it runs in this time.
pub(crate) const PIPELINE_BUDGET: Duration = Duration::from_millis(2);
/// The most tasks a worker may hold, however short.
pub(crate) const MAX_DEPTH: usize = 32;

/// The pipeline depth for a worker whose tasks take `avg_nanos` on average
/// (0: unknown): as many as fit in `PIPELINE_BUDGET`, between `base` and
/// `MAX_DEPTH` (a `base` above the cap wins).
pub(super) fn pipeline_depth(avg_nanos: u64, base: usize) -> usize {
    match avg_nanos {
        0 => base,
        avg => {
            ((PIPELINE_BUDGET.as_nanos() as u64 / avg) as usize).clamp(base, MAX_DEPTH.max(base))
        }
    }
}

/// Folds one task's time into a running average in ns (weight 1/8; 0
/// means no sample yet).
pub(super) fn fold_task_time(avg: &mut u64, took: Duration) {
    let took = (took.as_nanos() as u64).max(1);
    *avg = match *avg {
        0 => took,
        a => a - a / 8 + took / 8,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tasks_earn_a_deeper_pipeline_long_ones_keep_the_base() {
        let mut avg = 0;
        fold_task_time(&mut avg, Duration::from_micros(10));
        assert_eq!(avg, 10_000, "the first sample is taken as is");
        for _ in 0..50 {
            fold_task_time(&mut avg, Duration::from_micros(20));
        }
        assert!((19_000..=20_000).contains(&avg), "{avg}");
        // 2 ms / 20 us = 100, capped at MAX_DEPTH.
        let depth = pipeline_depth;
        assert_eq!(depth(avg, 2), MAX_DEPTH);
        assert_eq!(depth(500_000, 2), 4); // 0.5 ms tasks: 4
        assert_eq!(depth(300_000_000, 2), 2); // long tasks: the base
        assert_eq!(depth(0, 3), 3); // no sample yet: the base
        assert_eq!(depth(1, 64), 64); // a base above the cap wins
    }
}
