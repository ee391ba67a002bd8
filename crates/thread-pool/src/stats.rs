//! `stats()`: a cheap snapshot of what the pool is doing.
//!
//! Task counters live with the worker that updates them, one cache line per
//! worker, so the hot path never writes a line that another worker writes
//! (a shared `completed += 1` would bounce one cache line between cores on
//! every task). Each counter has a single writer, its worker, which stores
//! `load + 1` with Relaxed ordering: no read-modify-write is needed, and
//! Relaxed is enough because `stats()` only promises a snapshot, not a
//! consistent cut. A worker bumps its counters *before* it publishes the
//! task's outcome, so a reader that has seen a future complete (through the
//! future's mutex, a happens-before edge) also sees it counted.
//!
//! When a worker exits, its counts are folded into the pool's `retired`
//! totals, so nothing is lost when idle workers time out.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a pool, from [`ThreadPoolExecutor::stats`](crate::ThreadPoolExecutor::stats).
///
/// The fields are read one by one while the pool runs, so they need not add
/// up exactly at any single instant; each one is exact once the pool is quiet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Worker threads started and not yet exited.
    pub workers_alive: usize,
    /// Workers not running a task: starting (in the initializer), looking
    /// for work, or parked.
    pub workers_idle: usize,
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Tasks running right now.
    pub running: usize,
    /// Tasks that returned a value.
    pub completed: u64,
    /// Tasks that returned an error or panicked, or were failed because the
    /// pool broke before they ran.
    pub failed: u64,
    /// Tasks cancelled before they ran (by the user, or by
    /// `shutdown(cancel_futures = true)`).
    pub cancelled: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "workers {} alive ({} idle); tasks: {} queued, {} running, {} completed, {} failed, {} cancelled",
            self.workers_alive,
            self.workers_idle,
            self.queued,
            self.running,
            self.completed,
            self.failed,
            self.cancelled
        )
    }
}

/// Per-worker task counters; written only by their worker.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    running: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

/// `counter += 1` by its single writer: a plain load and store, no RMW.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

impl WorkerCounters {
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running as u64, Relaxed);
    }
    pub(crate) fn completed(&self) {
        bump(&self.completed);
    }
    pub(crate) fn failed(&self) {
        bump(&self.failed);
    }
    pub(crate) fn cancelled(&self) {
        bump(&self.cancelled);
    }

    /// Adds this worker's counts into `stats`.
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        stats.running += self.running.load(Relaxed) as usize;
        stats.completed += self.completed.load(Relaxed);
        stats.failed += self.failed.load(Relaxed);
        stats.cancelled += self.cancelled.load(Relaxed);
    }
}

/// Pool-wide counts that are not any one worker's: exited workers' totals
/// and tasks failed or cancelled straight out of the queue. Updated under
/// the pool's registry mutex or with RMWs, read by `stats()`.
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cancelled: AtomicU64,
}

impl Totals {
    pub(crate) fn absorb(&self, worker: &WorkerCounters) {
        let mut s = Stats::default();
        worker.add_to(&mut s);
        self.completed.fetch_add(s.completed, Relaxed);
        self.failed.fetch_add(s.failed, Relaxed);
        self.cancelled.fetch_add(s.cancelled, Relaxed);
    }

    pub(crate) fn add_to(&self, stats: &mut Stats) {
        stats.completed += self.completed.load(Relaxed);
        stats.failed += self.failed.load(Relaxed);
        stats.cancelled += self.cancelled.load(Relaxed);
    }
}
