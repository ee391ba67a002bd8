//! Counters describing a pool, for `ProcessPoolExecutor::stats()`.
//!
//! The dispatcher thread owns the truth; it publishes these counters with
//! relaxed atomic stores and readers load them with relaxed loads. Relaxed is
//! enough: each counter is independent, a snapshot is only a diagnostic (the
//! fields are not read as one consistent instant), and no other memory is
//! published through them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::wire::cost::Cost;

/// Why workers left the pool (each was, or will be on demand, replaced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerExits {
    /// Killed by a signal we did not send (crash, kill -9 from outside, OOM).
    pub signal: u64,
    /// Exited on their own with a code (a task called `exit`, a failed initializer).
    pub exit_code: u64,
    /// Killed by the pool because a task outran the per-task timeout.
    pub timeout: u64,
    /// Retired after `max_tasks_per_child` tasks.
    pub max_tasks_per_child: u64,
    /// Killed by the pool because they broke the frame protocol.
    pub protocol_error: u64,
    /// Retired because their peak RSS passed `max_memory_per_child`.
    pub max_memory_per_child: u64,
}

/// A snapshot of a pool's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Worker processes alive now.
    pub workers_alive: u64,
    /// Of those, how many hold no task.
    pub workers_idle: u64,
    /// Workers forked so far (first ones and replacements).
    pub workers_started: u64,
    /// Tasks waiting in the pool's queue (still cancellable).
    pub tasks_queued: u64,
    /// Tasks handed to a worker and not finished (running or about to).
    pub tasks_running: u64,
    /// Tasks that finished with a value.
    pub tasks_completed: u64,
    /// Tasks that finished with an error (including worker deaths, timeouts).
    pub tasks_failed: u64,
    /// Tasks cancelled before they ran.
    pub tasks_cancelled: u64,
    /// Of the tasks handed to a worker, how many `submit` wrote itself into
    /// the pipe of an idle worker (the direct hand-off, see
    /// `docs/process-pool.md`), without waking the pool's thread.
    pub tasks_handed_off: u64,
    /// Workers that left the pool abnormally or were retired, by reason.
    pub worker_exits: WorkerExits,
    /// The sum of the finished tasks' queue waits (see `Future::report`).
    pub task_queue_wait: Duration,
    /// The sum of the finished tasks' run times, measured in the workers.
    pub task_run_time: Duration,
    /// The sum of the finished tasks' user CPU times.
    pub task_user_cpu: Duration,
    /// The sum of the finished tasks' system CPU times.
    pub task_system_cpu: Duration,
    /// The highest peak RSS any worker reported, in bytes.
    pub peak_rss_bytes: u64,
}

/// The shared counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub workers_alive: AtomicU64,
    pub workers_idle: AtomicU64,
    pub workers_started: AtomicU64,
    pub tasks_running: AtomicU64,
    pub tasks_completed: AtomicU64,
    pub tasks_failed: AtomicU64,
    pub tasks_cancelled: AtomicU64,
    pub tasks_handed_off: AtomicU64,
    pub exit_signal: AtomicU64,
    pub exit_code: AtomicU64,
    pub exit_timeout: AtomicU64,
    pub exit_max_tasks: AtomicU64,
    pub exit_protocol: AtomicU64,
    pub exit_max_memory: AtomicU64,
    /// Sums over finished tasks, in nanoseconds, and the highest peak RSS
    /// (see `Counters::add_cost`).
    pub queue_wait_ns: AtomicU64,
    pub run_ns: AtomicU64,
    pub user_ns: AtomicU64,
    pub system_ns: AtomicU64,
    pub peak_rss: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Tasks leaving workers' hands (re-queued or failed): no longer running.
    pub fn take_running<T>(&self, tasks: Vec<T>) -> Vec<T> {
        self.tasks_running.fetch_sub(tasks.len() as u64, Relaxed);
        tasks
    }

    /// Adds a finished task's cost (see `cost`) to the sums.
    pub fn add_cost(&self, cost: &Cost, queued_ns: u64) {
        self.queue_wait_ns.fetch_add(queued_ns, Relaxed);
        self.run_ns.fetch_add(cost.run_ns(), Relaxed);
        if let Some(u) = cost.usage {
            self.user_ns.fetch_add(u.user_ns, Relaxed);
            self.system_ns.fetch_add(u.system_ns, Relaxed);
            self.peak_rss.fetch_max(u.peak_rss, Relaxed);
        }
    }

    pub fn snapshot(&self, tasks_queued: u64) -> Stats {
        Stats {
            workers_alive: self.workers_alive.load(Relaxed),
            workers_idle: self.workers_idle.load(Relaxed),
            workers_started: self.workers_started.load(Relaxed),
            tasks_queued,
            tasks_running: self.tasks_running.load(Relaxed),
            tasks_completed: self.tasks_completed.load(Relaxed),
            tasks_failed: self.tasks_failed.load(Relaxed),
            tasks_cancelled: self.tasks_cancelled.load(Relaxed),
            tasks_handed_off: self.tasks_handed_off.load(Relaxed),
            worker_exits: WorkerExits {
                signal: self.exit_signal.load(Relaxed),
                exit_code: self.exit_code.load(Relaxed),
                timeout: self.exit_timeout.load(Relaxed),
                max_tasks_per_child: self.exit_max_tasks.load(Relaxed),
                protocol_error: self.exit_protocol.load(Relaxed),
                max_memory_per_child: self.exit_max_memory.load(Relaxed),
            },
            task_queue_wait: Duration::from_nanos(self.queue_wait_ns.load(Relaxed)),
            task_run_time: Duration::from_nanos(self.run_ns.load(Relaxed)),
            task_user_cpu: Duration::from_nanos(self.user_ns.load(Relaxed)),
            task_system_cpu: Duration::from_nanos(self.system_ns.load(Relaxed)),
            peak_rss_bytes: self.peak_rss.load(Relaxed),
        }
    }
}
