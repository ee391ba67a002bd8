//! Killing, reaping, replacing and breaking: what happens when a worker ends.
//!
//! A worker ends because the pool ended it (a task timeout, a bad frame,
//! `max_tasks_per_child`, shutdown, a broken pool: its `EndReason`, entered
//! with `Worker::enter`) or by itself (a crash, `exit`). Either way the pool
//! waits for its exit status from the fork server, reads what the worker
//! left in its result pipe (end-of-file may never come while a process the
//! task forked holds the pipe: see `drain_after_exit`), and then, REAPED,
//! accounts for it (`bury`): the task it was running fails with an error
//! naming the signal or exit code, the tasks it had not started go back to
//! the queue, and the reason is counted. With `WorkerDeath::BreakPool`, or
//! when an initializer failed, the whole pool breaks instead (`break_pool`,
//! Python's `_terminate_broken`).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::interrupt::Escalation;

use future::{DynError, TaskError, WorkerEnd};

use super::worker::{EndReason, Exit, Phase, Worker};
use super::{Dispatcher, WorkerDeath};
use crate::child::fork_server::{self, decode_status, STATUS_LEN};
use crate::error::{
    ExitCause, ForkServerError, ProtocolError, SpawnFailed, TaskTimedOut, WorkerDied,
    WorkerTerminated,
};
use crate::parent::stats::Counters;
use crate::parent::task::Task;
use crate::sys;
use crate::wire::cost;
use crate::wire::frame::{FrameBuf, FrameError};

/// How long a worker may stay alive after closing its result pipe.
pub(super) const EOF_GRACE: Duration = Duration::from_secs(1);
/// How long to wait for the fork server's exit status after that.
pub(super) const STATUS_GRACE: Duration = Duration::from_secs(5);

impl Dispatcher {
    /// Worker `i` sent garbage: kill it, fail its running task with an
    /// error naming it, re-queue the rest.
    pub(super) fn protocol_fault(&mut self, i: usize, error: FrameError) {
        let w = &mut self.workers[i];
        let pid = w.pid;
        w.input = FrameBuf::default(); // and what follows is discarded
        let err = ProtocolError {
            pid,
            error,
            cause: None,
        };
        self.end_worker(
            i,
            EndReason::Protocol,
            TaskError::Executor(DynError::new(err)),
        );
    }
    /// Kills worker `i` on purpose: its head task fails with `error`, the
    /// tasks it had not started go back to the queue. After a timeout, those
    /// already in its pipe stay with it until it is reaped: its head may
    /// have finished as the kill came, and the next one started.
    pub(super) fn end_worker(&mut self, i: usize, reason: EndReason, error: TaskError) {
        self.complete_finished(); // the results read before come first
        let w = &mut self.workers[i];
        w.enter(Phase::Dying {
            reason: Some(reason),
        });
        let pid = w.pid;
        let taken = if reason == EndReason::Timeout {
            w.take_head_and_unwritten()
        } else {
            w.take_tasks()
        };
        let mut tasks: Vec<Task> = self.shared.counters.take_running(taken);
        if let Ok(server) = fork_server::server() {
            let _ = server.kill(pid);
        }
        if !tasks.is_empty() {
            let head = tasks.remove(0);
            let mut report = cost::placed(pid, head.position);
            if reason == EndReason::Timeout {
                report.deadline = self.shared.config.task_timeout;
            }
            head.sink.set_report(report);
            head.sink.complete(Err(error), &self.shared.counters);
        }
        self.requeue(tasks);
    }
    /// Puts tasks a worker never started back at the front of the queue.
    pub(super) fn requeue(&mut self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        let mut q = self.shared.lock();
        if let Some(msg) = q.life.broken().map(str::to_string) {
            drop(q);
            return self.fail_all(tasks, &msg);
        }
        for t in tasks.into_iter().rev() {
            q.tasks.push_front(t);
        }
    }
    /// The fork server reported worker `i`'s exit status: read what it
    /// left in its result pipe, then it is `Exited` (reaped this turn).
    pub(super) fn read_status(&mut self, i: usize) {
        let Some(fd) = self.workers[i].exit.status_fd() else {
            return;
        };
        let mut word = Vec::with_capacity(STATUS_LEN);
        // Anything but a whole status: the fork server died without
        // reporting, and `decode_status` says unknown.
        let _ = sys::read_into(fd, &mut word, STATUS_LEN);
        let reaped = decode_status(&word);
        let cause = reaped.cause;
        self.workers[i].peak_rss = reaped.peak_rss;
        self.drain_after_exit(i);
        self.workers[i].exit = Exit::Exited(cause); // closes the status pipe
    }
    /// Worker `i` is gone: its exit status came. Everything it wrote is in
    /// its result pipe by now, so read what is there and take that as the
    /// end. Waiting for end-of-file instead would wait for any process the
    /// task forked without `exec`: such a helper inherits the pipe's write
    /// end and may keep it open for as long as it lives, and the pool would
    /// notice the death (and finish a waited shutdown) only then. Whatever
    /// such a helper writes is not the worker's, and is not read.
    fn drain_after_exit(&mut self, i: usize) {
        // A bound, in reads of up to 16 chunks each, against a helper that
        // writes without end; a dead worker's pipe holds at most its size.
        const MAX_READS: usize = 4096;
        for _ in 0..MAX_READS {
            let w = &self.workers[i];
            if !w.exit.reads_results() || !sys::readable_now(w.result_r.as_raw_fd()) {
                break;
            }
            self.read(i);
        }
    }
    /// Kills workers whose running task outran the timeout.
    pub(super) fn check_deadlines(&mut self) {
        self.check_silent_workers();
        self.check_escalations(Instant::now());
        let Some(timeout) = self.shared.config.task_timeout else {
            return;
        };
        let now = Instant::now();
        for i in 0..self.workers.len() {
            let w = &self.workers[i];
            if w.ended_by().is_none() && w.head_started.is_some_and(|s| now >= s + timeout) {
                let err = TaskTimedOut {
                    pid: w.pid,
                    timeout,
                };
                let error = TaskError::Executor(DynError::new(err));
                self.end_worker(i, EndReason::Timeout, error);
            }
        }
    }
    /// A worker whose result pipe ended but whose exit status has not come:
    /// normally the status follows within microseconds. After
    /// `EOF_GRACE` the worker evidently closed its pipe and lives on (a task
    /// that closed every descriptor): it is useless, so it is killed. After
    /// `STATUS_GRACE` more, the fork server is not answering: the status is
    /// taken as unknown, so that nothing waits forever.
    pub(super) fn check_silent_workers(&mut self) {
        let now = Instant::now();
        for i in 0..self.workers.len() {
            let w = &mut self.workers[i];
            let Exit::PipeEnded { at, kill_sent, .. } = &mut w.exit else {
                continue;
            };
            if now >= *at + EOF_GRACE + STATUS_GRACE {
                w.exit = Exit::Exited(ExitCause::Unknown);
            } else if now >= *at + EOF_GRACE && !*kill_sent {
                *kill_sent = true;
                if let Ok(server) = fork_server::server() {
                    let _ = server.kill(w.pid);
                }
            }
        }
    }
    /// Removes workers that are gone (`Exit::Exited`: REAPED).
    pub(super) fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            if let Some(cause) = self.workers[i].exit.cause() {
                let w = self.workers.swap_remove(i);
                self.bury(w, cause);
            } else {
                i += 1;
            }
        }
    }
    /// Accounts for a worker that ended, and fails or re-queues its tasks.
    pub(super) fn bury(&mut self, mut w: Worker, cause: ExitCause) {
        self.complete_finished(); // the results read before come first
        let counters = &self.shared.counters;
        let unexpected = match w.ended_by() {
            Some(EndReason::Timeout) => {
                Counters::bump(&counters.exit_timeout);
                false
            }
            Some(EndReason::Protocol) => {
                Counters::bump(&counters.exit_protocol);
                false
            }
            Some(EndReason::MaxTasks) if cause == ExitCause::Exited(0) => {
                Counters::bump(&counters.exit_max_tasks);
                false
            }
            Some(EndReason::MaxMemory) if cause == ExitCause::Exited(0) => {
                Counters::bump(&counters.exit_max_memory);
                false
            }
            Some(EndReason::Terminated { .. }) => {
                Counters::bump(&counters.exit_signal);
                false
            }
            Some(EndReason::Interrupted(escalation)) => {
                match cause {
                    ExitCause::Signaled(_) => Counters::bump(&counters.exit_signal),
                    _ => Counters::bump(&counters.exit_code),
                }
                return self.bury_interrupted(w, cause, escalation);
            }
            Some(EndReason::Shutdown) if cause == ExitCause::Exited(0) => false,
            Some(EndReason::Broken) => false,
            _ => {
                match cause {
                    ExitCause::Signaled(_) => Counters::bump(&counters.exit_signal),
                    _ => Counters::bump(&counters.exit_code),
                }
                true
            }
        };
        let mut tasks: Vec<Task> = self.shared.counters.take_running(w.take_tasks());
        if w.answered_after_kill && !tasks.is_empty() {
            // Killed for a timeout, it answered after all: it then read the
            // next task in its pipe, which may have started. It fails as on
            // any worker death; run elsewhere too, it could run twice.
            let next = tasks.remove(0);
            self.fail_as_died(&w, cause, next);
        }
        if !unexpected {
            // Tasks of a worker we ended were already failed or re-queued;
            // those left (behind a timed-out head) never started there.
            return self.requeue(tasks);
        }
        let config = &self.shared.config;
        let init_failed = config.initializer.is_some() && !w.ready;
        if init_failed || config.on_worker_death == WorkerDeath::BreakPool {
            let msg = if init_failed {
                format!(
                    "the initializer of worker process {} failed: the worker {cause}",
                    w.pid
                )
            } else {
                format!(
                    "a process in the process pool was terminated abruptly while the future was \
                     running or pending (worker process {} {cause})",
                    w.pid
                )
            };
            self.fail_all(tasks, &msg);
            return self.break_pool(msg);
        }
        if !tasks.is_empty() {
            let head = tasks.remove(0);
            let error = match w.input.leftover() {
                Some(truncated) if !w.discards_frames() => DynError::new(ProtocolError {
                    pid: w.pid,
                    error: truncated,
                    cause: Some(cause),
                }),
                _ => DynError::new(WorkerDied { pid: w.pid, cause }),
            };
            let mut report = cost::placed(w.pid, head.position);
            report.worker_end = Some(worker_end(cause));
            // The worker sent nothing about this task: its peak RSS is the
            // one the fork server read when it reaped it.
            report.peak_rss_bytes = w.peak_rss;
            head.sink.set_report(report);
            head.sink
                .complete(Err(TaskError::Executor(error)), counters);
        }
        self.requeue(tasks);
    }
    /// Fails `task`, which worker `w` may have been running when it ended,
    /// with [`WorkerDied`] and a report of how the worker ended.
    fn fail_as_died(&self, w: &Worker, cause: ExitCause, task: Task) {
        let mut report = cost::placed(w.pid, task.position);
        report.worker_end = Some(worker_end(cause));
        report.peak_rss_bytes = w.peak_rss;
        task.sink.set_report(report);
        let error = DynError::new(WorkerDied { pid: w.pid, cause });
        task.sink
            .complete(Err(TaskError::Executor(error)), &self.shared.counters);
    }
    /// An interrupted worker ended: its task, if its result did not come
    /// first, fails with `TerminatedByRequest`. If it did, the worker went
    /// on to the tasks in its pipe (`start_interrupt` left them with it):
    /// the first one without a result may have started, so it fails as on
    /// any worker death; the rest never started and go back to the queue.
    fn bury_interrupted(&mut self, mut w: Worker, cause: ExitCause, esc: Escalation) {
        let mut tasks: Vec<Task> = self.shared.counters.take_running(w.take_tasks());
        if !tasks.is_empty() {
            let head = tasks.remove(0);
            let error = if head.interrupt {
                let grace = self.shared.config.interrupt_grace;
                super::interrupt::terminated_error(w.pid, cause, esc, grace)
            } else {
                let mut report = cost::placed(w.pid, head.position);
                report.worker_end = Some(worker_end(cause));
                report.peak_rss_bytes = w.peak_rss;
                head.sink.set_report(report);
                TaskError::Executor(DynError::new(WorkerDied { pid: w.pid, cause }))
            };
            head.sink.complete(Err(error), &self.shared.counters);
        }
        self.requeue(tasks);
    }
    /// `terminate_workers` / `kill_workers`, if one was asked for (the pool
    /// is already shut down): the queued tasks are cancelled, and every
    /// worker that is not already being killed gets the signal. The tasks
    /// it held fail with [`WorkerTerminated`]; whatever it still sends is
    /// discarded. Nothing is replaced: the queue is left empty, so the loop
    /// ends once the workers are reaped.
    pub(super) fn terminate_all(&mut self) {
        let Some(signal) = self.shared.lock().life.take_signal() else {
            return;
        };
        // The results read before come first.
        self.complete_finished();
        // A task a submitter handed straight to a worker must be in that
        // worker's list before the worker is signalled.
        self.reclaim_lent_pipes();
        let counters = &self.shared.counters;
        let queued: Vec<Task> = self.shared.lock().tasks.drain(..).collect();
        for task in queued {
            if task.running {
                // Re-queued after an earlier worker death: already running,
                // so it cannot be cancelled.
                let msg = format!(
                    "the pool's workers were stopped ({}) before this task was started again",
                    signal.as_str()
                );
                task.sink
                    .complete(Err(TaskError::BrokenExecutor(msg)), counters);
            } else {
                task.sink.cancel();
                Counters::bump(&counters.tasks_cancelled);
            }
        }
        let server = fork_server::server().ok();
        for w in &mut self.workers {
            let terminated = Phase::Dying {
                reason: Some(EndReason::Terminated { escalation: None }),
            };
            // One already killed with SIGKILL is not signalled; it holds
            // tasks only after a timeout (those in its pipe): they fail too.
            if w.enter(terminated) {
                if let Some(server) = server {
                    let _ = server.signal(w.pid, signal);
                }
            }
            let err = WorkerTerminated {
                pid: w.pid,
                signal: signal.as_str(),
            };
            let tasks = counters.take_running(w.take_tasks());
            for task in tasks {
                task.sink.set_report(cost::placed(w.pid, task.position));
                task.sink.complete(
                    Err(TaskError::Executor(DynError::new(err.clone()))),
                    counters,
                );
            }
        }
    }
    /// No worker could be started and none is left to run the queue.
    ///
    /// If the fork server is gone (or unusable from this process), nothing
    /// will ever run: the pool breaks, as Python's does. Any other failure
    /// (no free descriptor, no memory, a process limit: `ForkServerError::Io`)
    /// may pass: the queued tasks fail with [`SpawnFailed`], and the pool
    /// stays usable, so the next `submit` tries again.
    pub(super) fn spawn_failed(&mut self, e: ForkServerError) {
        let err = SpawnFailed {
            message: e.to_string(),
        };
        if !matches!(e, ForkServerError::Io(_)) {
            return self.break_pool(err.to_string());
        }
        let queued: Vec<Task> = self.shared.lock().tasks.drain(..).collect();
        for task in queued {
            task.sink.complete(
                Err(TaskError::Executor(DynError::new(err.clone()))),
                &self.shared.counters,
            );
        }
    }
    /// Python's `_terminate_broken`: every pending future fails with
    /// `BrokenExecutor(msg)`, every worker is killed, `submit` refuses.
    pub(super) fn break_pool(&mut self, msg: String) {
        let queued: Vec<Task> = {
            let mut q = self.shared.lock();
            q.life.break_with(&msg);
            q.tasks.drain(..).collect()
        };
        self.fail_all(queued, &msg);
        for i in 0..self.workers.len() {
            let w = &mut self.workers[i];
            let tasks: Vec<Task> = self.shared.counters.take_running(w.take_tasks());
            // Killed either way; the reason is kept if the pool already had one.
            w.enter(Phase::Dying {
                reason: Some(EndReason::Broken),
            });
            let pid = w.pid;
            if let Ok(server) = fork_server::server() {
                let _ = server.kill(pid);
            }
            self.fail_all(tasks, &msg);
        }
    }
    pub(super) fn fail_all(&mut self, tasks: Vec<Task>, msg: &str) {
        self.complete_finished(); // the results read before come first
        for t in tasks {
            t.sink.complete(
                Err(TaskError::BrokenExecutor(msg.to_string())),
                &self.shared.counters,
            );
        }
    }
    /// Closes the task pipe of every idle worker (it exits on end-of-file).
    pub(super) fn retire_idle(&mut self, reason: EndReason) {
        for w in &mut self.workers {
            if w.inflight.is_empty() {
                w.enter(Phase::Retiring { reason });
            }
        }
    }
}

/// The report's words for how a worker ended.
fn worker_end(cause: ExitCause) -> WorkerEnd {
    match cause {
        ExitCause::Exited(code) => WorkerEnd::Exited(code),
        ExitCause::Signaled(signal) => WorkerEnd::Signaled(signal),
        ExitCause::Unknown => WorkerEnd::Unknown,
    }
}
