//! One worker as the dispatcher sees it: its pipes, the tasks it holds, and
//! where it is in its life (`Phase`, the diagram in the module docs above)
//! and in its process's ending (`Exit`).
//!
//! The two are separate because they are observed separately: the phase is
//! what the *pool* decided (keep giving it tasks, close its pipe, kill it),
//! the exit is what the pool has *seen* of the process (its result pipe's
//! end-of-file, the exit status from the fork server). A worker can die by
//! itself in any phase; it is reaped when its exit is `Exited`, whatever
//! its phase.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::interrupt::Escalation;
use super::pipeline::{fold_task_time, pipeline_depth};
use crate::error::ExitCause;
use crate::parent::shared::Config;
use crate::parent::task::Task;
use crate::wire::frame::FrameBuf;

/// Why the pool ended a worker: the one name for "how a worker ended" on
/// the pool's side. (How its *process* ended, as the kernel tells the fork
/// server, is the public [`ExitCause`]; what to do when a worker dies
/// unexpectedly is the public policy `WorkerDeath`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EndReason {
    // Reasons to retire (close its task pipe; it exits by itself):
    /// The pool shut down and the worker is idle.
    Shutdown,
    /// It ran `max_tasks_per_child` tasks.
    MaxTasks,
    /// Its peak RSS passed `max_memory_per_child` after a task.
    MaxMemory,
    // Reasons to kill it:
    /// Its running task outran `task_timeout` (SIGKILL).
    Timeout,
    /// It sent a frame the pool cannot read (SIGKILL).
    Protocol,
    /// The pool broke (SIGKILL).
    Broken,
    /// `terminate_workers` / `kill_workers`; an interruption it was in
    /// keeps its SIGKILL escalation.
    Terminated { escalation: Option<Escalation> },
    /// `interrupt(&future)` named its running task (see `interrupt`).
    Interrupted(Escalation),
}

impl EndReason {
    /// Whether this reason closes the worker's task pipe (it exits by
    /// itself) rather than killing it.
    fn retires(self) -> bool {
        matches!(
            self,
            EndReason::Shutdown | EndReason::MaxTasks | EndReason::MaxMemory
        )
    }
}

/// Where a worker is in its life (the pool's decisions about it).
pub(super) enum Phase {
    /// Its task pipe is open: it takes tasks, up to its pipeline depth,
    /// until it reaches `max_tasks_per_child` or `max_memory_per_child`.
    Accepting { task_w: OwnedFd },
    /// The pool closed its task pipe while it held no task; it exits on
    /// end-of-file. `reason` is `Shutdown`, `MaxTasks` or `MaxMemory`.
    Retiring { reason: EndReason },
    /// It is being killed (`reason: Some`), or it died by itself: a write
    /// to its task pipe failed (`reason: None`). Its task pipe is closed.
    Dying { reason: Option<EndReason> },
}

/// What the pool has seen of the worker's process ending.
pub(super) enum Exit {
    /// Its result pipe is open and the fork server has not reported.
    Running { status_r: OwnedFd },
    /// Its result pipe ended at `at`; the exit status is awaited (see
    /// `death::check_silent_workers`: `kill_sent` once the worker lived on
    /// past `EOF_GRACE`).
    PipeEnded {
        status_r: OwnedFd,
        at: Instant,
        kill_sent: bool,
    },
    /// The exit status came (or was given up on: `Unknown`) and the result
    /// pipe was read to its end: the worker is reaped at the end of this
    /// turn of the loop.
    Exited(ExitCause),
}

impl Exit {
    /// The fork server's status pipe, while the status is awaited.
    pub fn status_fd(&self) -> Option<RawFd> {
        match self {
            Exit::Running { status_r } | Exit::PipeEnded { status_r, .. } => {
                Some(status_r.as_raw_fd())
            }
            Exit::Exited(_) => None,
        }
    }

    /// Whether the result pipe is still read (no end-of-file yet).
    pub fn reads_results(&self) -> bool {
        matches!(self, Exit::Running { .. })
    }

    /// The result pipe ended (end-of-file or an error): keep awaiting the
    /// status.
    pub fn pipe_ended(&mut self) {
        let old = std::mem::replace(self, Exit::Exited(ExitCause::Unknown));
        *self = match old {
            Exit::Running { status_r } => Exit::PipeEnded {
                status_r,
                at: Instant::now(),
                kill_sent: false,
            },
            other => other,
        };
    }

    /// How the process ended, once known.
    pub fn cause(&self) -> Option<ExitCause> {
        match self {
            Exit::Exited(cause) => Some(*cause),
            _ => None,
        }
    }
}

/// The dispatcher's view of one worker process.
///
/// Invariants (kept by [`Worker::enter`] and the functions that move
/// tasks):
/// * only an `Accepting` worker holds its task pipe, so only it is given
///   tasks, written to, or lent to `submit`;
/// * a `Retiring` worker holds no task: its pipe is closed only when its
///   list is empty;
/// * a worker `Dying` for a reason holds no task but, if `Interrupted`,
///   the ones completely written to its pipe (its head, and those it may
///   still read and run), and if killed for a `Timeout`, those written
///   behind its failed head (its head may have finished as it was killed,
///   and the next one started), until it is reaped; a worker that died by
///   itself (`Dying { reason: None }`, or still `Accepting`) keeps its
///   tasks until it is reaped, and then fails the head and re-queues the
///   rest;
/// * `sent <= inflight.len()`; `offset` counts bytes of `inflight[sent]`;
/// * `head_started` is `Some` only while `sent > 0` and the pool has not
///   ended the worker (the task timeout runs from it);
/// * the worker's frames are discarded once it is `Dying` for `Protocol`,
///   `Broken` or `Terminated` (see [`Worker::discards_frames`]);
/// * `Exit::Exited` means the result pipe will not be read again: the
///   worker is reaped (`death::reap`) before the next `poll`.
pub(super) struct Worker {
    pub pid: i32,
    pub phase: Phase,
    pub exit: Exit,
    /// Worker -> pool, non-blocking.
    pub result_r: OwnedFd,
    /// The descriptor socket (SharedBytes, see `fd_passing`), non-blocking.
    pub fds: OwnedFd,
    /// The descriptors of `inflight[sent]` were sent.
    pub fds_sent: bool,
    pub input: FrameBuf,
    /// Tasks given to this worker, in the order sent. The head is running.
    pub inflight: VecDeque<Task>,
    /// How many of `inflight` are completely written.
    pub sent: usize,
    /// Bytes of `inflight[sent]` already written.
    pub offset: usize,
    /// Tasks ever given to it (for `max_tasks_per_child`).
    pub assigned: u64,
    /// When the head task started (fully written and first in line).
    pub head_started: Option<Instant>,
    /// Its peak RSS passed `max_memory_per_child`: it takes no more tasks
    /// and retires once those in its pipe are done.
    pub over_memory: bool,
    /// Running average of this worker's task times in ns (0: none yet).
    pub avg_task_nanos: u64,
    /// It sent READY: its initializer (if any) succeeded. (Not a phase: a
    /// worker is given tasks before it is ready; they wait in its pipe.)
    pub ready: bool,
    /// Its peak RSS in bytes, from its exit status (the fork server's
    /// `wait4`): reported for a task it died running.
    pub peak_rss: Option<u64>,
    /// A result came after the pool killed it for a timeout: the task it
    /// read next from its pipe may have started (see `death::bury`).
    pub answered_after_kill: bool,
}

impl Worker {
    /// A worker just forked: accepting, alive.
    pub fn new(
        pid: i32,
        task_w: OwnedFd,
        result_r: OwnedFd,
        status_r: OwnedFd,
        fds: OwnedFd,
    ) -> Self {
        Worker {
            pid,
            phase: Phase::Accepting { task_w },
            exit: Exit::Running { status_r },
            result_r,
            fds,
            fds_sent: false,
            input: FrameBuf::default(),
            inflight: VecDeque::new(),
            sent: 0,
            offset: 0,
            assigned: 0,
            head_started: None,
            over_memory: false,
            avg_task_nanos: 0,
            ready: false,
            peak_rss: None,
            answered_after_kill: false,
        }
    }

    /// The one transition function: moves the worker to `next` if its
    /// phase allows it, and returns whether it did. The rules:
    ///
    /// * only an `Accepting` worker retires, or is found dead by a failed
    ///   write (`Dying { reason: None }`);
    /// * a bad frame (`Protocol`) kills a worker in any phase;
    /// * `Terminated` overrides every phase but the pool's own SIGKILLs
    ///   (`Timeout`, `Protocol`, `Broken`), and keeps an interruption's
    ///   pending SIGKILL;
    /// * every other reason to kill applies to a worker the pool has not
    ///   ended yet (`Accepting`, or dead by itself).
    ///
    /// Leaving `Accepting` closes the task pipe (the worker reads
    /// end-of-file); entering `Dying` for a reason stops the head's
    /// timeout clock.
    pub fn enter(&mut self, next: Phase) -> bool {
        let accepting = matches!(self.phase, Phase::Accepting { .. });
        let allowed = match &next {
            Phase::Accepting { .. } => false, // only a new worker accepts
            Phase::Retiring { reason } => accepting && reason.retires(),
            Phase::Dying { reason: None } => accepting,
            Phase::Dying {
                reason: Some(reason),
            } => match reason {
                EndReason::Protocol => true,
                EndReason::Terminated { .. } => !matches!(
                    self.ended_by(),
                    Some(EndReason::Timeout | EndReason::Protocol | EndReason::Broken)
                ),
                other => !other.retires() && self.ended_by().is_none(),
            },
        };
        if !allowed {
            return false;
        }
        let next = match next {
            Phase::Dying {
                reason: Some(EndReason::Terminated { .. }),
            } => Phase::Dying {
                reason: Some(EndReason::Terminated {
                    escalation: self.escalation(),
                }),
            },
            next => next,
        };
        if matches!(next, Phase::Dying { reason: Some(_) }) {
            self.head_started = None;
        }
        self.phase = next; // drops the task pipe when leaving Accepting
        true
    }

    /// Why the pool ended this worker, if it did.
    pub fn ended_by(&self) -> Option<EndReason> {
        match self.phase {
            Phase::Accepting { .. } | Phase::Dying { reason: None } => None,
            Phase::Retiring { reason } => Some(reason),
            Phase::Dying { reason } => reason,
        }
    }

    /// The SIGKILL steps of an interruption, while they apply (also after
    /// `terminate_workers` overrode the interruption).
    pub fn escalation(&self) -> Option<Escalation> {
        match self.ended_by()? {
            EndReason::Interrupted(esc) => Some(esc),
            EndReason::Terminated { escalation } => escalation,
            _ => None,
        }
    }

    /// The same, to record that SIGKILL was sent.
    pub fn escalation_mut(&mut self) -> Option<&mut Escalation> {
        match &mut self.phase {
            Phase::Dying {
                reason:
                    Some(EndReason::Interrupted(esc))
                    | Some(EndReason::Terminated {
                        escalation: Some(esc),
                    }),
            } => Some(esc),
            _ => None,
        }
    }

    /// The task pipe, while the worker accepts tasks.
    pub fn task_pipe(&self) -> Option<RawFd> {
        match &self.phase {
            Phase::Accepting { task_w } => Some(task_w.as_raw_fd()),
            _ => None,
        }
    }

    /// Whether what it still sends is ignored (after a bad frame, once the
    /// pool broke, or once terminated: its tasks were already failed).
    pub fn discards_frames(&self) -> bool {
        matches!(
            self.phase,
            Phase::Dying {
                reason: Some(
                    EndReason::Protocol | EndReason::Broken | EndReason::Terminated { .. }
                )
            }
        )
    }

    /// How many tasks this worker may hold at once (see "Pipelining").
    pub fn depth(&self, config: &Config) -> usize {
        if config.adaptive_depth {
            pipeline_depth(self.avg_task_nanos, config.tasks_per_worker)
        } else {
            config.tasks_per_worker
        }
    }

    /// Whether the next task may go to this worker.
    pub fn accepting(&self, config: &Config) -> bool {
        matches!(self.phase, Phase::Accepting { .. })
            && !self.over_memory
            && config
                .max_tasks_per_child
                .is_none_or(|max| self.assigned < max)
    }

    /// Takes the head task off, its result having come: the next one, if
    /// written, starts now; the head's time feeds the pipeline depth.
    pub fn pop_head(&mut self) -> Task {
        let task = self
            .inflight
            .pop_front()
            .expect("the caller checked the head");
        self.sent -= 1;
        let now = Instant::now();
        if let Some(started) = self.head_started {
            fold_task_time(&mut self.avg_task_nanos, now - started);
        }
        // The next task's clock runs only on a worker the pool has not ended
        // (an interrupted worker may still answer the tasks in its pipe).
        self.head_started = (self.sent > 0 && self.ended_by().is_none()).then_some(now);
        task
    }

    /// Takes the running head and the tasks not completely written, leaving
    /// it those written behind the head: a worker killed for its head's
    /// timeout may have read and started the next one (see `death::bury`).
    pub fn take_head_and_unwritten(&mut self) -> Vec<Task> {
        let unwritten: Vec<Task> = self.inflight.drain(self.sent..).collect();
        self.offset = 0;
        self.fds_sent = false;
        self.head_started = None;
        let head = self.inflight.pop_front();
        self.sent = self.inflight.len();
        head.into_iter().chain(unwritten).collect()
    }

    /// Takes every task it holds (to fail or re-queue them): nothing is
    /// being written or running on it any more, as far as the pool counts.
    pub fn take_tasks(&mut self) -> Vec<Task> {
        self.sent = 0;
        self.offset = 0;
        self.fds_sent = false;
        self.head_started = None;
        self.inflight.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn fd() -> OwnedFd {
        UnixStream::pair().expect("a socket pair").0.into()
    }

    fn worker() -> Worker {
        Worker::new(1, fd(), fd(), fd(), fd())
    }

    fn dying(reason: EndReason) -> Phase {
        Phase::Dying {
            reason: Some(reason),
        }
    }

    #[test]
    fn the_transition_table_keeps_the_first_reason_but_for_protocol_and_terminate() {
        use EndReason::*;
        // Retiring closes the task pipe; a retiring worker is not killed for
        // a timeout, but a bad frame or terminate_workers still end it.
        let mut w = worker();
        assert!(w.task_pipe().is_some());
        assert!(w.enter(Phase::Retiring { reason: MaxTasks }));
        assert!(w.task_pipe().is_none());
        assert!(!w.enter(dying(Timeout)));
        assert!(!w.enter(Phase::Retiring { reason: Shutdown }));
        assert!(w.enter(dying(Terminated { escalation: None })));
        assert!(w.discards_frames());
        // ... and terminate_workers does not override the pool's SIGKILLs.
        assert!(w.enter(dying(Protocol)));
        assert!(!w.enter(dying(Terminated { escalation: None })));
        assert_eq!(w.ended_by(), Some(Protocol));

        // Only reasons to retire retire.
        let mut w = worker();
        assert!(!w.enter(Phase::Retiring { reason: Timeout }));
        // A worker found dead by a failed write may still be timed out.
        assert!(w.enter(Phase::Dying { reason: None }));
        assert_eq!(w.ended_by(), None);
        assert!(!w.enter(Phase::Retiring { reason: Shutdown }));
        assert!(w.enter(dying(Timeout)));
        assert!(!w.enter(dying(Broken)), "the first reason to kill stays");
        // A timed-out worker's late result is read (it says whether the
        // next task in its pipe started); a broken pool's are not (every
        // task already failed: a late one is no protocol fault).
        assert!(!w.discards_frames());
        let mut w = worker();
        assert!(w.enter(dying(Broken)));
        assert!(w.discards_frames());

        // An interruption's pending SIGKILL survives terminate_workers.
        let mut w = worker();
        w.head_started = Some(Instant::now());
        let esc = Escalation {
            kill_at: Some(Instant::now()),
            killed: false,
        };
        assert!(w.enter(dying(Interrupted(esc))));
        assert_eq!(w.head_started, None, "the timeout clock stops");
        assert!(!w.discards_frames(), "its task's result is still wanted");
        assert!(w.enter(dying(Terminated { escalation: None })));
        assert_eq!(w.escalation(), Some(esc));
        // ... and a second terminate (kill_workers after terminate_workers).
        assert!(w.enter(dying(Terminated { escalation: None })));
        assert_eq!(w.escalation(), Some(esc));
        assert!(!w.enter(Phase::Accepting { task_w: fd() }));
    }
}
