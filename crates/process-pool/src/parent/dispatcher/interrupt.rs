//! Interrupting one running task: SIGTERM to its worker, SIGKILL after a
//! grace period, a fresh worker in its place.
//!
//! # The escalation
//!
//! `ProcessPoolExecutor::interrupt(&future)` cancels a task that has not
//! started (Python's `cancel()`); for a task a worker holds it queues the
//! future's id and rings the doorbell. The dispatcher finds the task:
//!
//! * in a worker, not yet at the head of its pipe: the task is marked, and
//!   the steps below start when it becomes the head (the worker is busy
//!   with an earlier task until then);
//! * at the head of a worker (running): the worker stops taking tasks, the
//!   tasks not yet written to its pipe go back to the pool's queue (they
//!   never started), and the worker gets **SIGTERM**. Those already in its
//!   pipe stay with it: a worker whose task survives SIGTERM reads and
//!   runs them, and their results complete them (run elsewhere too, they
//!   would run twice); whatever is left when it ends is handled as for any
//!   dead worker (see `bury_interrupted`). Workers start with SIGTERM
//!   at its default action, so a task that did not install a handler dies
//!   at once. A task that did (to remove a temporary file, to flush a log)
//!   has the grace period to exit; after it the worker gets **SIGKILL**,
//!   which nothing can catch;
//! * in the pool's queue, re-queued after an earlier worker died (already
//!   running, so not cancellable): marked, and interrupted when it becomes
//!   a worker's head again.
//!
//! When the worker's exit status comes, the task fails with
//! [`TerminatedByRequest`], which names the signal that ended the worker
//! (or its exit code, when a handler exited) and whether the pool had to
//! escalate; the worker is replaced on demand, like any other. If the
//! task's result arrives before the signal lands, the result is kept: the
//! task finished first.
//!
//! # The grace period (`Builder::interrupt_grace`, default 5 s)
//!
//! The grace only matters to a task that caught SIGTERM, to clean up. Such
//! cleanup (close a file, remove a temporary one, send a last log line)
//! takes milliseconds, but a loaded or swapping machine can stall a process
//! for seconds: 5 s lets a handler finish there. Longer buys nothing
//! useful (a handler that needs more is doing work, not cleanup) while the
//! caller waits and the worker's slot stays taken. Service managers wait
//! longer (`docker stop` 10 s, Kubernetes 30 s, systemd 90 s), but they
//! stop a whole service with connections to close; this stops one task.
//! A zero grace sends SIGKILL at once; a grace too large for the clock
//! (`Duration::MAX`) never escalates.

use std::time::Instant;

use future::{DynError, TaskError};
use nix::sys::signal::Signal;

use super::worker::{EndReason, Phase};
use super::Dispatcher;
use crate::child::fork_server;
use crate::error::{ExitCause, TerminatedByRequest};
use crate::parent::task::Task;

/// Where a worker is in its interruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Escalation {
    /// When SIGKILL follows SIGTERM (`None`: never, the grace is too large
    /// for the clock).
    pub kill_at: Option<Instant>,
    /// SIGKILL was sent.
    pub killed: bool,
}

impl Dispatcher {
    /// Takes the requests `interrupt(&future)` queued, marks each task, and
    /// starts the escalation for every marked task that is running.
    pub(super) fn take_interrupts(&mut self) {
        let ids = std::mem::take(&mut self.shared.lock().interrupts);
        for id in ids {
            self.mark(id);
        }
        self.start_marked_heads();
    }

    /// Starts the escalation on every worker whose running task is marked
    /// (called again after every write: a marked task may have just become
    /// a worker's head, and the loop may then sleep in `poll`).
    pub(super) fn start_marked_heads(&mut self) {
        for i in 0..self.workers.len() {
            let w = &self.workers[i];
            let head_marked = w.sent > 0 && w.inflight.front().is_some_and(|t| t.interrupt);
            if head_marked && w.ended_by().is_none() {
                self.start_interrupt(i);
            }
        }
    }

    /// Marks the task whose future has this id, wherever the pool holds it.
    /// A future the pool no longer holds (it finished) is left alone.
    fn mark(&mut self, future_id: usize) {
        for w in &mut self.workers {
            if let Some(task) = w
                .inflight
                .iter_mut()
                .find(|t| t.sink.future_id() == future_id)
            {
                task.interrupt = true;
                return;
            }
        }
        let mut q = self.shared.lock();
        if let Some(task) = q.tasks.iter_mut().find(|t| t.sink.future_id() == future_id) {
            task.interrupt = true;
        }
    }

    /// Worker `i` runs a marked task: SIGTERM now (SIGKILL with a zero
    /// grace), the tasks queued behind it back to the pool's queue.
    fn start_interrupt(&mut self, i: usize) {
        let grace = self.shared.config.interrupt_grace;
        let signal = if grace.is_zero() {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let escalation = Escalation {
            kill_at: Instant::now().checked_add(grace),
            killed: signal == Signal::SIGKILL,
        };
        let w = &mut self.workers[i];
        w.enter(Phase::Dying {
            reason: Some(EndReason::Interrupted(escalation)),
        });
        // It keeps every task completely written to its pipe: its head runs,
        // and a worker that survives SIGTERM (a handler that cleans up and
        // returns) reads and runs the others until its pipe ends, so they
        // must not run elsewhere too. Only the tasks it cannot read whole
        // (not written, or cut off by the closed pipe) never start there.
        let behind: Vec<Task> = w.inflight.drain(w.sent..).collect();
        w.offset = 0;
        w.fds_sent = false;
        let pid = w.pid;
        if let Ok(server) = fork_server::server() {
            let _ = server.signal(pid, signal);
        }
        let behind = self.shared.counters.take_running(behind);
        self.requeue(behind);
    }

    /// Sends SIGKILL to every interrupted worker whose grace has run out.
    pub(super) fn check_escalations(&mut self, now: Instant) {
        for w in &mut self.workers {
            let exited = w.exit.cause().is_some();
            let Some(esc) = w.escalation_mut() else {
                continue;
            };
            let due = esc.kill_at.is_some_and(|at| now >= at);
            if !exited && !esc.killed && due {
                esc.killed = true;
                if let Ok(server) = fork_server::server() {
                    let _ = server.kill(w.pid);
                }
            }
        }
    }

    /// The earliest pending SIGKILL, for the poll timeout.
    pub(super) fn next_escalation(&self) -> Option<Instant> {
        self.workers
            .iter()
            .filter(|w| w.exit.cause().is_none())
            .filter_map(|w| w.escalation().filter(|e| !e.killed)?.kill_at)
            .min()
    }
}

/// The error an interrupted task's future ends with: `cause` is how its
/// worker ended; with a non-zero grace, SIGKILL was an escalation.
pub(super) fn terminated_error(
    pid: i32,
    cause: ExitCause,
    esc: Escalation,
    grace: std::time::Duration,
) -> TaskError {
    TaskError::Executor(DynError::new(TerminatedByRequest {
        pid,
        cause,
        escalated: esc.killed && !grace.is_zero(),
        grace,
    }))
}
