//! The chunk size [`ProcessPoolExecutor::map_auto`] picks: the caller does
//! not choose one.
//!
//! # Policy
//!
//! `chunksize = ceil(items / (workers * AUTO_CHUNKS_PER_WORKER))`, at least
//! 1 and at most [`AUTO_MAX_CHUNK`].
//!
//! # Argument
//!
//! * **Cheap items.** A chunk costs one task: two frames, a dispatcher hand-off
//!   and a wake-up, tens of microseconds on a busy machine. Python's best
//!   `chunksize` for cheap items (about 1000 on this machine) is where that
//!   cost stops dominating its per-item pickling; ours codes an item in
//!   nanoseconds, so the per-task cost must be spread over many more items.
//!   `items / (workers * 4)` gives 4 chunks per worker: 1 M items on 2
//!   workers make chunks of 65,536 (the cap), 16 tasks in all, and the task
//!   cost is a few percent of the coding.
//! * **The cap** ([`AUTO_MAX_CHUNK`], 65,536 items) keeps each frame small
//!   (half a MiB of `u64`) and the pool's queue made of many tasks even for
//!   huge inputs, so the work stays spread over the workers.
//! * **Slow items.** Items that each take long come in small numbers, and
//!   the formula gives one item per chunk as soon as `items <= workers * 4`:
//!   20 items on 20 workers are 20 tasks, all running at once. With more
//!   items than that, every worker still gets about 4 chunks, so a worker
//!   that finishes early takes more of the queue instead of waiting.
//! * **One slow item among cheap ones** delays its own chunk, not the
//!   others: the other chunks run on the other workers (and on its own
//!   worker's pipeline after it). With the default pipelining a worker
//!   already holds the next task behind the one it runs (2 tasks, or as many
//!   as it runs in about 2 ms when its tasks are short), so that much work
//!   waits too; `Builder::tasks_per_worker(1)` removes it.
//!
//! The input is counted first (Python 3.14's `map` consumes it at the call
//! anyway), which is what lets the size follow the number of items. What it
//! does not follow is the cost per item, which is unknown before the first
//! chunk returns, and every chunk is submitted at the call (Python 3.14's
//! eager rule): see `docs/process-pool.md` for why that is left out.
//!
//! [`ProcessPoolExecutor::map_auto`]: crate::ProcessPoolExecutor::map_auto

/// How many chunks each worker gets, about, from an auto-sized map.
pub const AUTO_CHUNKS_PER_WORKER: usize = 4;

/// The largest chunk an auto-sized map makes, in items.
pub const AUTO_MAX_CHUNK: usize = 65_536;

/// The chunk size [`map_auto`](crate::ProcessPoolExecutor::map_auto) uses
/// for `items` items on `workers` workers (0 counts as 1):
/// `ceil(items / (workers * 4))`, between 1 and [`AUTO_MAX_CHUNK`].
///
/// ```
/// use process_pool::auto_chunksize;
/// assert_eq!(auto_chunksize(20, 20), 1); // slow items: one per task
/// assert_eq!(auto_chunksize(4000, 2), 500); // 8 chunks, 4 per worker
/// assert_eq!(auto_chunksize(10_000_000, 2), 65_536); // the cap
/// assert_eq!(auto_chunksize(0, 2), 1);
/// ```
pub fn auto_chunksize(items: usize, workers: usize) -> usize {
    items
        .div_ceil(workers.max(1).saturating_mul(AUTO_CHUNKS_PER_WORKER))
        .clamp(1, AUTO_MAX_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_four_chunks_per_worker_between_one_and_the_cap() {
        assert_eq!(auto_chunksize(1, 8), 1);
        assert_eq!(auto_chunksize(33, 8), 2);
        assert_eq!(auto_chunksize(1_000_000, 2), AUTO_MAX_CHUNK);
        assert_eq!(auto_chunksize(100_000, 2), 12_500);
        assert_eq!(auto_chunksize(100, 0), 25);
        assert_eq!(auto_chunksize(usize::MAX, usize::MAX), 1);
    }
}
