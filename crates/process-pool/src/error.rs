//! The pool's error types.
//!
//! Two families:
//!
//! * Errors returned by the pool's own methods: [`BuildError`] (building a
//!   pool), [`SubmitError`] (submitting to it), [`ForkServerError`] (the fork
//!   server could not be started or reached).
//! * Errors a *future* can end with, carried inside
//!   `TaskError::Executor(DynError)`; downcast with
//!   `dyn_error.downcast_ref::<WorkerDied>()` and friends: [`WorkerDied`],
//!   [`TaskTimedOut`], [`WorkerTerminated`], [`TerminatedByRequest`], [`ProtocolError`],
//!   [`CodecError`], [`SpawnFailed`].
//!   A task's own `Err(e)` arrives as `TaskError::Failed` (type name and
//!   message), a panic as `TaskError::Panicked(message)`, and with the
//!   `BreakPool` policy a dead worker fails every pending future with
//!   `TaskError::BrokenExecutor`, as in Python.

use std::fmt;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::wire::frame::FrameError;

/// How a worker process ended, as reported by `waitpid` in the fork server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCause {
    /// It called `exit(code)` (or returned from its loop with this code).
    Exited(i32),
    /// It was killed by a signal (the number; see [`ExitCause::signal_name`]).
    Signaled(i32),
    /// The exit status could not be learned (the fork server itself is gone).
    Unknown,
}

impl ExitCause {
    /// The signal's name (`"SIGKILL"`), if the worker was killed by a signal.
    pub fn signal_name(&self) -> Option<&'static str> {
        match self {
            ExitCause::Signaled(n) => Some(
                Signal::try_from(*n)
                    .map(|s| s.as_str())
                    .unwrap_or("an unknown signal"),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for ExitCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitCause::Exited(code) => write!(f, "exited with code {code}"),
            ExitCause::Signaled(n) => write!(
                f,
                "was killed by signal {} ({n})",
                self.signal_name().unwrap_or("?")
            ),
            ExitCause::Unknown => f.write_str("ended with an unknown status"),
        }
    }
}

/// The worker running the task died (crash, `exit`, kill -9, OOM killer).
/// The pool replaced it; other tasks were not affected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerDied {
    /// The worker's process id.
    pub pid: i32,
    /// How it ended.
    pub cause: ExitCause,
}

impl fmt::Display for WorkerDied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker process {} {} while running the task (the worker was replaced)",
            self.pid, self.cause
        )
    }
}

impl std::error::Error for WorkerDied {}

/// `terminate_workers()` or `kill_workers()` signalled the worker that held
/// this task before the task finished (it may have been running, or waiting
/// in the worker's pipe). The pool is shut down; nothing was replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerTerminated {
    /// The worker's process id.
    pub pid: i32,
    /// The signal sent: `"SIGTERM"` (`terminate_workers`) or `"SIGKILL"`
    /// (`kill_workers`).
    pub signal: &'static str,
}

impl fmt::Display for WorkerTerminated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = if self.signal == "SIGKILL" {
            "kill_workers()"
        } else {
            "terminate_workers()"
        };
        write!(
            f,
            "worker process {} was stopped by {method} ({}) before the task finished",
            self.pid, self.signal
        )
    }
}

impl std::error::Error for WorkerTerminated {}

/// `interrupt(&future)` stopped the task while it ran: its worker got
/// SIGTERM and, if it was still alive after the grace period, SIGKILL. The
/// worker was replaced; other tasks were not affected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminatedByRequest {
    /// The worker's process id.
    pub pid: i32,
    /// How the worker ended: `Signaled(15)` when SIGTERM took effect,
    /// `Signaled(9)` after SIGKILL, `Exited(code)` when a SIGTERM handler
    /// of the task exited.
    pub cause: ExitCause,
    /// The worker outlived SIGTERM for the whole grace period and SIGKILL
    /// was sent.
    pub escalated: bool,
    /// The pool's grace period between SIGTERM and SIGKILL (zero: SIGKILL
    /// at once).
    pub grace: Duration,
}

impl TerminatedByRequest {
    /// The signal that ended the worker (`"SIGTERM"`, `"SIGKILL"`), if one did.
    pub fn signal(&self) -> Option<&'static str> {
        self.cause.signal_name()
    }
}

impl fmt::Display for TerminatedByRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "terminated by request: worker process {} ", self.pid)?;
        if self.escalated {
            write!(
                f,
                "was still running {:?} after SIGTERM and {}",
                self.grace, self.cause
            )?;
        } else if self.grace.is_zero() {
            write!(f, "{} (no grace period: SIGKILL at once)", self.cause)?;
        } else {
            write!(f, "{} after SIGTERM", self.cause)?;
        }
        f.write_str(" (the worker was replaced)")
    }
}

impl std::error::Error for TerminatedByRequest {}

/// The task ran longer than the pool's per-task timeout; its worker was
/// killed with SIGKILL and replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTimedOut {
    /// The worker's process id.
    pub pid: i32,
    /// The timeout that expired.
    pub timeout: Duration,
}

impl fmt::Display for TaskTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "task did not finish within {:?}; worker process {} was killed (SIGKILL) and replaced",
            self.timeout, self.pid
        )
    }
}

impl std::error::Error for TaskTimedOut {}

/// A worker sent bytes that are not a valid frame (or ended inside one).
/// The worker was killed and replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The worker's process id.
    pub pid: i32,
    /// What was wrong.
    pub error: FrameError,
    /// How the worker ended, when it is known.
    pub cause: Option<ExitCause>,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "worker process {} broke the pipe protocol: {}",
            self.pid, self.error
        )?;
        match self.cause {
            Some(cause) => write!(f, "; the worker {cause} and was replaced"),
            None => f.write_str("; the worker was killed and replaced"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Where in a task's journey a value failed to (de)serialise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecStage {
    /// Encoding the argument, in the parent (at `submit`).
    EncodeArgs,
    /// Decoding the argument, in the worker.
    DecodeArgs,
    /// Encoding the result, in the worker.
    EncodeResult,
    /// Decoding the result, in the parent.
    DecodeResult,
}

impl fmt::Display for CodecStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodecStage::EncodeArgs => "encoding the argument in the parent",
            CodecStage::DecodeArgs => "decoding the argument in the worker",
            CodecStage::EncodeResult => "encoding the result in the worker",
            CodecStage::DecodeResult => "decoding the result in the parent",
        })
    }
}

/// A value could not cross the pipe (Python's `PicklingError` family). Only
/// this task fails; the worker and the pool go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError {
    /// Where it failed.
    pub stage: CodecStage,
    /// The serializer's message (or the panic message of a panicking impl);
    /// for a streamed result (over 256 KiB) whose impl failed only on its
    /// second run, where and that it failed, not the impl's own text.
    pub message: String,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed {}: {}", self.stage, self.message)
    }
}

impl std::error::Error for CodecError {}

/// No worker could be started for the task, and none was left to run it: the
/// fork server could not fork or create pipes, or this process could not
/// receive the worker's descriptors (at its open-file limit). The pool stays
/// usable; the next `submit` tries again. (If the fork server itself is gone,
/// the pool breaks instead: `TaskError::BrokenExecutor`.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnFailed {
    /// Why.
    pub message: String,
}

impl fmt::Display for SpawnFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not start a worker process: {}", self.message)
    }
}

impl std::error::Error for SpawnFailed {}

/// The fork server could not be started, or stopped answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForkServerError {
    /// A system call failed while starting it or talking to it.
    Io(String),
    /// It is gone (killed, or it exited).
    Gone,
    /// This process is itself a pool worker (or the fork server): pools
    /// cannot be nested.
    InsideWorker,
    /// This process is a raw `fork()` of the process that started the fork
    /// server; only that process may use it.
    ForkedChild,
    /// The fork server was not started early, and this process already
    /// runs `threads` threads: forking it now would copy into it, and into
    /// every worker, whatever lock another thread holds at that instant,
    /// held forever. Call [`start_fork_server`](crate::start_fork_server)
    /// first thing in `main`, or accept the risk with
    /// [`start_fork_server_late`](crate::start_fork_server_late).
    LateStart {
        /// Threads in this process at the attempt.
        threads: usize,
    },
}

impl fmt::Display for ForkServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForkServerError::Io(msg) => write!(f, "fork server: {msg}"),
            ForkServerError::Gone => f.write_str(
                "the fork server is gone (it was killed or exited); no new workers can start",
            ),
            ForkServerError::InsideWorker => f.write_str(
                "cannot create a process pool inside a pool worker (process pools do not nest)",
            ),
            ForkServerError::ForkedChild => f.write_str(
                "this process was fork()ed from the one that started the fork server; \
                 process pools can only be used in that process",
            ),
            ForkServerError::LateStart { threads } => write!(
                f,
                "refusing to start the fork server in a process that already runs {threads} \
                 threads: a lock another thread holds at that instant (the stdout lock, the \
                 environment lock, any Mutex) would stay locked in every worker, and a task \
                 that needs it would hang forever. Call process_pool::start_fork_server() \
                 first thing in main, before any thread starts (in a test binary: from a \
                 constructor that runs before main), or accept the risk with \
                 process_pool::start_fork_server_late()"
            ),
        }
    }
}

impl std::error::Error for ForkServerError {}

/// A pool could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// `max_workers` was 0 (Python: `ValueError("max_workers must be greater than 0")`).
    ZeroWorkers,
    /// `max_tasks_per_child` was 0 (Python: `ValueError("max_tasks_per_child must be >= 1")`).
    ZeroMaxTasksPerChild,
    /// `max_memory_per_child` was 0: every worker would retire after its first task.
    ZeroMaxMemoryPerChild,
    /// `tasks_per_worker` was 0.
    ZeroTasksPerWorker,
    /// The fork server is unavailable.
    ForkServer(ForkServerError),
    /// The dispatcher's doorbell or thread could not be created.
    Io(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroWorkers => f.write_str("max_workers must be greater than 0"),
            BuildError::ZeroMaxTasksPerChild => f.write_str("max_tasks_per_child must be >= 1"),
            BuildError::ZeroMaxMemoryPerChild => f.write_str(
                "max_memory_per_child must be at least 1 byte (a limit of 0 would retire \
                 every worker after one task; use max_tasks_per_child(1) for that)",
            ),
            BuildError::ZeroTasksPerWorker => f.write_str("tasks_per_worker must be >= 1"),
            BuildError::ForkServer(e) => write!(f, "{e}"),
            BuildError::Io(msg) => write!(f, "could not start the pool: {msg}"),
        }
    }
}

impl std::error::Error for BuildError {}

impl From<ForkServerError> for BuildError {
    fn from(e: ForkServerError) -> Self {
        BuildError::ForkServer(e)
    }
}

/// A task could not be submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// `shutdown` was called (Python: `RuntimeError('cannot schedule new futures after shutdown')`).
    Shutdown,
    /// The pool is broken (a worker died under the `BreakPool` policy, or an
    /// initializer failed); the message says why.
    Broken(String),
    /// `map` was given a chunk size of 0 (Python: `ValueError("chunksize must be >= 1.")`).
    ZeroChunksize,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Shutdown => f.write_str("cannot schedule new futures after shutdown"),
            SubmitError::Broken(why) => write!(
                f,
                "the process pool is broken and not usable anymore: {why}"
            ),
            SubmitError::ZeroChunksize => f.write_str("chunksize must be >= 1"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// The error a windowed `map` ([`map_windowed`](crate::ProcessPoolExecutor::map_windowed))
/// yields once, last, when the pool was shut down before the whole input
/// was submitted: the rest was never run. (The pool is not broken.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapShutDown {
    /// Items this map submitted (and yielded before this error).
    pub submitted: usize,
}

impl fmt::Display for MapShutDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the pool was shut down while this windowed map had input left: the {} items \
             submitted before it were yielded, the rest were never submitted",
            self.submitted
        )
    }
}

impl std::error::Error for MapShutDown {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_signal_or_exit_code() {
        let e = WorkerDied {
            pid: 42,
            cause: ExitCause::Signaled(9),
        };
        assert_eq!(
            e.to_string(),
            "worker process 42 was killed by signal SIGKILL (9) while running the task (the worker was replaced)"
        );
        let e = WorkerDied {
            pid: 42,
            cause: ExitCause::Exited(3),
        };
        assert!(e.to_string().contains("exited with code 3"));
        assert_eq!(ExitCause::Signaled(11).signal_name(), Some("SIGSEGV"));
    }
}
