//! Where and how a task ran: the report an executor may attach to a future.
//!
//! Python's futures say only what a task returned. An executor that can
//! measure more (a process pool, a Celery worker) attaches a [`TaskReport`]
//! to the future before it completes it, with `Promise::set_report`; a
//! reader gets it with `Future::report`. Every field is an `Option`: `None`
//! where the executor cannot know (a thread pool shares one process, so it
//! has no worker pid or peak RSS of its own; a worker that died sent no
//! measurement of the task that killed it: only its peak RSS is known,
//! read by the process that reaped it).
//!
//! The report is set before the outcome, under the same lock, so a reader
//! who sees the future done also sees its report.

use std::time::Duration;

/// How a worker process ended, when a task failed because its worker died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerEnd {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// Its end is not known (the status never came).
    Unknown,
}

/// Where and how one task ran (see the module docs).
///
/// Times are measured where they are true: the queue wait from the
/// submitting process's clock at `submit` to the worker's clock when it
/// began the task (one system-wide monotonic clock; for a Celery worker,
/// which may be on another machine, from the message's arrival at the
/// worker to the task's start); the run time and the
/// CPU times inside the worker, around the task (the CPU times are
/// `getrusage(RUSAGE_SELF)` deltas, so they include the encoding of the
/// result); the peak RSS is the worker's `ru_maxrss` after the task, so it
/// is the worker's peak so far, not this task's alone (for a task whose
/// worker died under it, the dead worker's `ru_maxrss` as its reaper read
/// it: its peak over its whole life).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskReport {
    /// The worker process that ran (or was running) the task.
    pub worker_pid: Option<u32>,
    /// The task's number on that worker: 1 for the first task it was given.
    pub position: Option<u64>,
    /// From `submit` (Celery: the message's arrival at the worker) to the
    /// worker beginning the task.
    pub queued: Option<Duration>,
    /// From the worker beginning the task to its result being encoded.
    pub run_time: Option<Duration>,
    /// User CPU time the worker spent on the task.
    pub user_cpu: Option<Duration>,
    /// System CPU time the worker spent on the task.
    pub system_cpu: Option<Duration>,
    /// The worker's peak resident set size so far, in bytes.
    pub peak_rss_bytes: Option<u64>,
    /// The task failed because its worker ended: how it ended.
    pub worker_end: Option<WorkerEnd>,
    /// The task failed because this per-task deadline fired.
    pub deadline: Option<Duration>,
    /// The name of the worker that ran it, where workers have names (a
    /// Celery worker's node name, `celery@host`).
    pub worker_host: Option<String>,
    /// How many times the task was delivered to a worker, where a broker
    /// counts deliveries (a Celery worker's lease: 1 unless its first
    /// worker lost it).
    pub attempts: Option<u64>,
}

impl TaskReport {
    /// An empty report (every field `None`), to fill in field by field.
    pub fn new() -> Self {
        TaskReport::default()
    }
}
