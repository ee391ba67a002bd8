//! Direct hand-off: idle workers lent to `submit` (one wake-up less on an
//! idle pool).
//!
//! # How
//!
//! Waking the dispatcher costs a thread wake-up, and on an idle pool it is
//! pure overhead: the task could go straight to an idle worker. So when the
//! dispatcher goes to sleep with nothing queued, it *lends* the task pipe of
//! each idle worker to submitters: a `LentPipe { pid, fd }` in the pool
//! state. `submit` of a small frame (at most `PIPE_BUF` bytes, so the write
//! into the idle worker's empty pipe is all-or-nothing) pops a lent pipe,
//! writes the frame itself, and records a `HandedTask`, all under the pool's
//! lock. The dispatcher wakes up when the result arrives, and the first
//! thing it does after every `poll` is to take the pipes back and adopt the
//! handed tasks
//! (under the same lock), before it touches any worker. So a lent descriptor
//! is never closed while lent, a result never arrives for a task the
//! dispatcher does not know (the hand-off record is pushed under the lock
//! before the submitter releases it), and a worker never gets a second task
//! through a lent pipe. Pipes are not lent when a task timeout is configured
//! (the sleeping dispatcher would not know a new deadline), nor when the
//! program restored SIGPIPE's default action (a write on the caller's
//! thread to a worker that just died must fail with EPIPE, not kill the
//! program; the dispatcher's own thread blocks SIGPIPE).
//!
//! # Lend, then wake
//!
//! A caller woken by its result typically submits its next task at once,
//! so the dispatcher completes the turn's small results only after `intake`
//! has lent the pipes again (see `results::Finished`): the woken caller
//! finds its idle worker lent, and every back-to-back round trip after the
//! first is a hand-off (`stats().tasks_handed_off`,
//! `tests/round_trip_path.rs`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use future::{DynError, TaskError};

use super::Dispatcher;
use crate::error::SpawnFailed;
use crate::parent::shared::PoolState;
use crate::parent::stats::Counters;
use crate::parent::task::Task;
use crate::sys;

/// An idle worker's task pipe, lent to `submit` for one task.
pub(crate) struct LentPipe {
    pub pid: i32,
    pub fd: std::os::fd::RawFd,
}

/// A task written by `submit` through a [`LentPipe`].
pub(crate) struct HandedTask {
    pub pid: i32,
    pub task: Task,
    pub at: Instant,
}

/// Frames up to this size may be handed off: `PIPE_BUF`, so the non-blocking
/// write into the (empty) pipe of an idle worker is all-or-nothing.
pub(crate) const HANDOFF_MAX_FRAME: usize = libc::PIPE_BUF;

/// Writes a small task straight into the pipe of an idle worker lent by
/// the sleeping dispatcher. Called by `submit` with the pool's state locked. Gives
/// the task back if no pipe is lent or the write fails.
pub(crate) fn hand_off(counters: &Counters, q: &mut PoolState, mut task: Task) -> Result<(), Task> {
    let Some(lent) = q.lent_pipes.pop() else {
        return Err(task);
    };
    // The lent pipe is empty (its worker is idle) and the frame is at
    // most PIPE_BUF bytes: the non-blocking write is all-or-nothing.
    match sys::writev(lent.fd, &[std::io::IoSlice::new(&task.frame)]) {
        Ok(n) if n == task.frame.len() => {
            // Marked running only once written: a task given back stays
            // pending (cancellable) in the queue. A fresh future, nobody
            // else holds it yet: it cannot have been cancelled, and the
            // result of a task that ran anyway would find it done.
            let _ = task.sink.set_running(lent.pid);
            task.running = true;
            // Relaxed: a statistics counter (see `stats`).
            counters.tasks_running.fetch_add(1, Relaxed);
            Counters::bump(&counters.tasks_handed_off);
            q.handed.push(HandedTask {
                pid: lent.pid,
                task,
                at: Instant::now(),
            });
            Ok(())
        }
        // The worker died (EPIPE) or the pipe is unexpectedly full: the
        // queue path handles the task, still pending.
        _ => Err(task),
    }
}

impl Dispatcher {
    /// Lends the pipes of idle workers to `submit` (called with the pool's
    /// state locked, just before the dispatcher sleeps).
    pub(super) fn lend_idle_pipes(&self, q: &mut PoolState) {
        let config = &self.shared.config;
        for w in &self.workers {
            if w.accepting(config) && w.inflight.is_empty() {
                if let Some(fd) = w.task_pipe() {
                    q.lent_pipes.push(LentPipe { pid: w.pid, fd });
                }
            }
        }
    }
    /// Takes lent pipes back and adopts the tasks written through them.
    pub(super) fn reclaim_lent_pipes(&mut self) {
        let handed = {
            let mut q = self.shared.lock();
            q.lent_pipes.clear();
            std::mem::take(&mut q.handed)
        };
        for h in handed {
            match self.workers.iter_mut().find(|w| w.pid == h.pid) {
                Some(w) => {
                    // The worker was idle, so this task is its head and is
                    // completely written.
                    let mut task = h.task;
                    w.assigned += 1;
                    task.position = w.assigned;
                    w.inflight.push_back(task);
                    w.sent += 1;
                    if w.sent == 1 {
                        w.head_started = Some(h.at);
                    }
                }
                // Impossible (a lent worker is never removed), but never
                // lose a task: its future fails instead of hanging.
                None => {
                    // The results read before come first.
                    self.complete_finished();
                    self.shared.counters.tasks_running.fetch_sub(1, Relaxed);
                    let err = SpawnFailed {
                        message: "internal error: a task was handed to an unknown worker".into(),
                    };
                    h.task.sink.complete(
                        Err(TaskError::Executor(DynError::new(err))),
                        &self.shared.counters,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parent::task::TypedSink;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;

    /// A hand-off whose write fails (the lent worker died: EPIPE) gives the
    /// task back as it was: not running, so its future can still be
    /// cancelled while it waits in the queue, and the worker that runs it
    /// later is the one its future is marked running on.
    #[test]
    fn a_failed_hand_off_leaves_the_task_pending() {
        let (promise, future) = future::promise::<u64>();
        let task = Task {
            id: 1,
            frame: vec![0; 16],
            sink: Box::new(TypedSink {
                promise,
                callbacks: Arc::new(future::CallbackRunner::new("handoff-test")),
            }),
            fds: Vec::new(),
            enqueued_ns: 0,
            position: 0,
            running: false,
            interrupt: false,
        };
        // A pipe whose read end is closed: the write fails with EPIPE (the
        // test harness ignores SIGPIPE, as the pool requires for hand-offs).
        let (r, w) = sys::pipe_cloexec().unwrap();
        drop(r);
        let mut q = PoolState::default();
        q.lent_pipes.push(LentPipe {
            pid: 42,
            fd: w.as_raw_fd(),
        });
        let counters = Counters::default();
        let task = hand_off(&counters, &mut q, task).expect_err("the write fails");
        assert!(q.handed.is_empty());
        assert!(!task.running, "the task given back is marked running");
        assert!(!future.running(), "its future is marked running");
        assert!(future.cancel(), "its future can no longer be cancelled");
    }
}
