//! A task on its way through the pool: its encoded frame and the typed
//! promise its outcome goes to.
//!
//! The dispatcher is not generic: it moves bytes. Each task carries a boxed
//! [`Sink`] that knows the result type `R`, decodes the result bytes into it
//! (under `catch_unwind`, since `Deserialize` impls are user code) and
//! completes the promise.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use future::{panic_message, CallbackRunner, DynError, Promise, TaskError, TaskReport};
use serde::de::DeserializeOwned;

use crate::error::{CodecError, CodecStage};
use crate::parent::stats::Counters;
use crate::wire::codec;

/// One submitted task.
pub(crate) struct Task {
    /// Unique within the pool; echoed by the worker in its result.
    pub id: u64,
    /// The complete `TASK` frame, ready to write.
    pub frame: Vec<u8>,
    /// Where the outcome goes.
    pub sink: Box<dyn Sink>,
    /// The `SharedBytes` of the argument, whose descriptors go to the
    /// worker before the frame (see `fd_passing`); kept until the task ends,
    /// so that a re-queued task can send them again.
    pub fds: Vec<crate::SharedBytes>,
    /// `CLOCK_MONOTONIC` at `submit`, for the queue wait (see `cost`).
    pub enqueued_ns: u64,
    /// The task's number on the worker it was last given to (1: its first
    /// task; 0: not given to one yet).
    pub position: u64,
    /// Whether `set_running_or_notify_cancel` already returned true (a task
    /// re-queued after its worker died before starting it).
    pub running: bool,
    /// `interrupt(&future)` asked to stop it; applied when it is the head
    /// of a worker (see `dispatcher::interrupt`).
    pub interrupt: bool,
}

/// The typed end of a task.
pub(crate) trait Sink: Send {
    /// `Promise::set_running_or_notify_cancel` as the task is handed to the
    /// worker `pid`: false if the future was cancelled.
    fn set_running(&self, pid: i32) -> bool;
    /// Cancels the future if it is still pending (shutdown with `cancel_futures`).
    fn cancel(&self);
    /// The [`Future::id`](future::Future::id) of the task's future, to find
    /// the task `interrupt(&future)` names.
    fn future_id(&self) -> usize;
    /// Attaches where and how the task ran (`Promise::set_report`); called
    /// before `complete`, so a reader who sees it done sees the report.
    fn set_report(&self, report: TaskReport);
    /// Completes the future with the encoded value or an error, counting
    /// it as completed or failed in `counters` first (so that a reader who
    /// sees the future done also sees the count).
    fn complete(self: Box<Self>, outcome: Result<&[u8], TaskError>, counters: &Counters);
}

/// A [`Sink`] for results of type `R`.
pub(crate) struct TypedSink<R> {
    pub promise: Promise<R>,
    /// The future's done-callbacks run there, not on the completing
    /// (dispatcher) thread.
    pub callbacks: Arc<CallbackRunner>,
}

impl<R: DeserializeOwned + Send + 'static> Sink for TypedSink<R> {
    fn set_running(&self, _pid: i32) -> bool {
        // An Err means the future is already running or finished, which the
        // pool never causes; treat it as "do not run".
        self.promise.set_running_or_notify_cancel().unwrap_or(false)
    }

    fn cancel(&self) {
        self.promise.future().cancel();
    }

    fn future_id(&self) -> usize {
        self.promise.future().id()
    }

    fn set_report(&self, report: TaskReport) {
        self.promise.set_report(report);
    }

    fn complete(self: Box<Self>, outcome: Result<&[u8], TaskError>, counters: &Counters) {
        // User code runs in here on the dispatcher thread: the result's
        // `Deserialize` (caught below, to fail the task with its message),
        // and the `Drop` of a result nobody holds any more (the user dropped
        // the future, or cancelled it), which happens when the promise and
        // the value go. Contained, so the dispatcher survives it.
        future::contain(
            "process-pool dispatcher",
            "the completion of a task",
            move || (*self).complete_uncontained(outcome, counters),
        );
    }
}

impl<R: DeserializeOwned + Send + 'static> TypedSink<R> {
    fn complete_uncontained(self, outcome: Result<&[u8], TaskError>, counters: &Counters) {
        let outcome = outcome.and_then(|bytes| {
            match catch_unwind(AssertUnwindSafe(|| codec::decode::<R>(bytes))) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(message)) => Err(codec_error(CodecStage::DecodeResult, message)),
                Err(p) => Err(codec_error(
                    CodecStage::DecodeResult,
                    format!("panicked while decoding: {}", panic_message(&*p)),
                )),
            }
        });
        Counters::bump(if outcome.is_ok() {
            &counters.tasks_completed
        } else {
            &counters.tasks_failed
        });
        // Err: the future was already completed, e.g. cancelled; nothing to do.
        let _ = self
            .promise
            .set_outcome_deferred(outcome, |job| self.callbacks.run(job));
    }
}

/// `TaskError::Executor(CodecError { .. })`.
pub(crate) fn codec_error(stage: CodecStage, message: String) -> TaskError {
    TaskError::Executor(DynError::new(CodecError { stage, message }))
}
