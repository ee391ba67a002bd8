//! The state shared by the pool's handle, the threads that call `submit`,
//! and the dispatcher thread: settings, the queue of tasks not yet handed to
//! a worker, the pool's life flags, and the doorbell.
//!
//! # Doorbell protocol (no lost wake-ups)
//!
//! The queue's mutex guards a flag `dispatcher_waiting`. Before sleeping the
//! dispatcher takes tasks while it has room, and sets the flag (under the
//! lock) only if it stopped because the queue was empty. `submit` pushes
//! under the same lock and rings the eventfd only if it finds the flag set,
//! clearing it. So a task pushed into an empty queue always rings, and a
//! flood of submits while the workers are full rings no bell at all: the
//! dispatcher looks at the queue again after every result.
//!
//! # Buffer recycling
//!
//! Big frame buffers (1-64 MiB) are kept for reuse, at most two per pool:
//! memory that is already mapped costs no page faults when the next big
//! argument is encoded into it.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::dispatcher::{Handed, Lane};
use crate::stats::Counters;
use crate::sys;
use crate::task::Task;
use future::CallbackRunner;

/// What to do when a worker dies unexpectedly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkerDeath {
    /// Fail only the task it was running, re-queue the ones it had not
    /// started, and fork a replacement (the default).
    #[default]
    Replace,
    /// Python's behaviour: the pool is broken; every pending future fails
    /// with `TaskError::BrokenExecutor` and `submit` refuses new work.
    BreakPool,
}

/// A pool's settings (see `Builder`).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub max_workers: usize,
    pub initializer: Option<fn()>,
    pub max_tasks_per_child: Option<u64>,
    /// Peak RSS in bytes past which a worker retires after its task.
    pub max_memory_per_child: Option<u64>,
    /// Measure CPU times and peak RSS per task (see `Builder::report_usage`).
    pub report_usage: bool,
    pub task_timeout: Option<Duration>,
    pub on_worker_death: WorkerDeath,
    pub tasks_per_worker: usize,
    /// Whether short tasks may deepen the pipeline (unless the user set
    /// `tasks_per_worker` explicitly).
    pub adaptive_depth: bool,
    pub max_frame: usize,
    pub pipe_size: usize,
    /// Where task transitions are recorded (`Builder::trace`).
    pub trace: Option<future::trace::Recorder>,
    /// How long an interrupted task's worker has between SIGTERM and
    /// SIGKILL (see `dispatcher::interrupt`).
    pub interrupt_grace: Duration,
}

/// The state shared by the pool's handle, `submit` callers and the dispatcher.
pub(crate) struct Shared {
    pub queue: Mutex<Queue>,
    pub doorbell: OwnedFd,
    pub config: Config,
    pub counters: Counters,
    pub next_id: AtomicU64,
    /// Big frame buffers kept for reuse (see `recycle_buffer`).
    pub spare: Mutex<Vec<Vec<u8>>>,
    /// Whether idle workers may be lent to `submit` (no task timeout, and
    /// SIGPIPE ignored: `submit` writes on the caller's thread, where a
    /// dead worker's pipe must give EPIPE, not a fatal signal).
    pub lanes_allowed: bool,
    /// Where done-callbacks run (never on the dispatcher thread).
    pub callbacks: Arc<CallbackRunner>,
}

/// Tasks not yet handed to a worker, and the pool's life flags.
#[derive(Default)]
pub(crate) struct Queue {
    pub tasks: VecDeque<Task>,
    pub shutdown: bool,
    pub broken: Option<String>,
    /// `terminate_workers` / `kill_workers` asked the dispatcher to send
    /// this signal to every worker (taken by the dispatcher).
    pub force: Option<Signal>,
    /// `interrupt(&future)` requests: future ids, taken by the dispatcher.
    pub interrupts: Vec<usize>,
    pub dispatcher_waiting: bool,
    /// Idle workers lent to `submit` while the dispatcher sleeps (see
    /// "Direct hand-off" in the module docs).
    pub lanes: Vec<Lane>,
    /// Tasks `submit` wrote straight into a lent worker's pipe.
    pub handed: Vec<Handed>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock would be our bug; the queue is
        // still consistent (every operation on it is a single push/pop).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ring(&self) {
        sys::ring(&self.doorbell);
    }

    /// An empty buffer for a task frame: a recycled big one if there is
    /// one (already-mapped memory: no page faults when a 16 MiB argument is
    /// encoded into it), else a small new one.
    pub fn recycled_buffer(&self) -> Vec<u8> {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        spare.pop().unwrap_or_else(|| Vec::with_capacity(64))
    }

    /// Keeps the buffer of a finished task frame for reuse, if it is big
    /// (small ones are cheap to allocate) and the spare list has room.
    pub fn recycle_buffer(&self, mut buf: Vec<u8>) {
        if buf.capacity() < RECYCLE_MIN || buf.capacity() > RECYCLE_MAX {
            return;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < RECYCLE_COUNT {
            buf.clear();
            spare.push(buf);
        }
    }
}

/// Frame buffers between these capacities are recycled, at most
/// `RECYCLE_COUNT` of them per pool: the memory a pool keeps is bounded.
const RECYCLE_MIN: usize = 1 << 20;
const RECYCLE_MAX: usize = 64 << 20;
const RECYCLE_COUNT: usize = 2;
