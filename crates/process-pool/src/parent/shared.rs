//! The state shared by the pool's handle, the threads that call `submit`,
//! and the dispatcher thread: settings, the queue of tasks not yet handed to
//! a worker, the pool's life (`Life`), and the doorbell.
//!
//! # Doorbell protocol (no lost wake-ups)
//!
//! The pool state's mutex guards a flag `dispatcher_waiting`. Before sleeping the
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

use crate::error::SubmitError;
use crate::parent::dispatcher::{HandedTask, LentPipe};
use crate::parent::stats::Counters;
use crate::parent::task::Task;
use crate::sys;
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
    pub state: Mutex<PoolState>,
    pub doorbell: OwnedFd,
    pub config: Config,
    pub counters: Counters,
    pub next_id: AtomicU64,
    /// Big frame buffers kept for reuse (see `recycle_buffer`).
    pub spare: Mutex<Vec<Vec<u8>>>,
    /// Whether idle workers may be lent to `submit` (no task timeout, and
    /// SIGPIPE ignored: `submit` writes on the caller's thread, where a
    /// dead worker's pipe must give EPIPE, not a fatal signal).
    pub handoff_allowed: bool,
    /// Where done-callbacks run (never on the dispatcher thread).
    pub callbacks: Arc<CallbackRunner>,
}

/// Everything the pool's mutex guards: the pool's life, the tasks not yet
/// handed to a worker, the dispatcher's requests and the doorbell flag.
#[derive(Default)]
pub(crate) struct PoolState {
    pub life: Life,
    pub tasks: VecDeque<Task>,
    /// `interrupt(&future)` requests: future ids, taken by the dispatcher.
    pub interrupts: Vec<usize>,
    /// The dispatcher sleeps with an empty queue: the next `submit` rings
    /// (see "Doorbell protocol" above).
    pub dispatcher_waiting: bool,
    /// Task pipes of idle workers, lent to `submit` while the dispatcher
    /// sleeps (see `dispatcher::handoff`).
    pub lent_pipes: Vec<LentPipe>,
    /// Tasks `submit` wrote straight into a lent pipe.
    pub handed: Vec<HandedTask>,
}

/// The pool's life: where `submit`, `shutdown`, `terminate_workers` and the
/// dispatcher agree on what the pool still does.
///
/// ```text
///   Open --shutdown--> ShuttingDown --terminate/kill_workers--> Terminating
///    |                      |                                       |
///    +---------- a worker's initializer failed, BreakPool policy, --+--> Broken
///                the fork server is gone
/// ```
///
/// Only `Open` accepts tasks. `ShuttingDown` and `Terminating` run the
/// queue out and retire the workers; `Terminating` first has every worker
/// signalled. `Broken` fails everything pending and is final: nothing leaves
/// it (`terminate_workers` on a broken pool is a no-op: breaking already
/// killed every worker).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum Life {
    /// Accepting tasks.
    #[default]
    Open,
    /// `shutdown` was called: no new tasks; queued and running ones finish.
    ShuttingDown,
    /// `terminate_workers` / `kill_workers`: shut down, and every worker is
    /// to get `signal`, which the dispatcher takes (`None` once sent).
    Terminating { signal: Option<Signal> },
    /// Python's "broken" pool: every pending future fails with this message
    /// and `submit` refuses.
    Broken(String),
}

impl Life {
    /// Whether `submit` may queue a task; else the error it returns.
    pub fn check_open(&self) -> Result<(), SubmitError> {
        match self {
            Life::Open => Ok(()),
            Life::ShuttingDown | Life::Terminating { .. } => Err(SubmitError::Shutdown),
            Life::Broken(why) => Err(SubmitError::Broken(why.clone())),
        }
    }

    /// `shutdown`: Open -> ShuttingDown (any other state stays).
    pub fn shut_down(&mut self) {
        if *self == Life::Open {
            *self = Life::ShuttingDown;
        }
    }

    /// `terminate_workers` / `kill_workers`: -> Terminating with `signal`
    /// pending (a broken pool stays broken).
    pub fn terminate(&mut self, signal: Signal) {
        if !matches!(self, Life::Broken(_)) {
            *self = Life::Terminating {
                signal: Some(signal),
            };
        }
    }

    /// -> Broken; the first reason stays.
    pub fn break_with(&mut self, why: &str) {
        if !matches!(self, Life::Broken(_)) {
            *self = Life::Broken(why.to_string());
        }
    }

    /// The signal `terminate` asked for, once (the dispatcher takes it).
    pub fn take_signal(&mut self) -> Option<Signal> {
        match self {
            Life::Terminating { signal } => signal.take(),
            _ => None,
        }
    }

    /// Why the pool is broken, if it is.
    pub fn broken(&self) -> Option<&str> {
        match self {
            Life::Broken(why) => Some(why),
            _ => None,
        }
    }

    /// Whether the pool runs its queue out and retires its workers.
    pub fn is_shutting_down(&self) -> bool {
        matches!(self, Life::ShuttingDown | Life::Terminating { .. })
    }
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding this lock would be our bug; the state is
        // still consistent (every operation on it is a single push, pop or
        // transition).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
