//! Recording the schedule (`Builder::trace`): a [`Sink`] wrapped so that
//! the dispatcher records when a task is handed to a worker process, and
//! when it ends (`future::trace`).
//!
//! Only a pool with a recorder wraps its sinks: an untraced pool pays the
//! test of `Config::trace` at submit and nothing else.
//!
//! "Started" is the moment the task is written to its worker's pipe. A
//! worker may hold two tasks (its pipeline), so the second one's start is
//! recorded before the first one ends; the timeline writers draw a run from
//! the later of its start and the end of the run before it on the same
//! lane, since a worker process runs one task at a time.

use std::sync::Mutex;

use future::trace::TaskTrace;
use future::{TaskError, TaskReport};

use crate::parent::stats::Counters;
use crate::parent::task::Sink;

/// A sink that records its task's transitions, then does what `inner` does.
pub(crate) struct TracedSink {
    pub inner: Box<dyn Sink>,
    /// Taken when the task ends. A lock, because `set_running` takes
    /// `&self`; only the dispatcher and a submitter's hand-off touch it,
    /// one at a time.
    pub trace: Mutex<Option<TaskTrace>>,
}

impl Sink for TracedSink {
    fn set_running(&self, pid: i32) -> bool {
        let running = self.inner.set_running(pid);
        if running {
            if let Some(trace) = self.lock().as_mut() {
                trace.started(format!("process {pid}"));
            }
        }
        running
    }

    fn cancel(&self) {
        self.inner.cancel();
    }

    fn set_report(&self, report: TaskReport) {
        self.inner.set_report(report);
    }

    fn future_id(&self) -> usize {
        self.inner.future_id()
    }

    fn complete(self: Box<Self>, outcome: Result<&[u8], TaskError>, counters: &Counters) {
        // Whether the result decodes is known only inside `inner`; an
        // undecodable result is drawn as finished (the worker's part was).
        if let Some(trace) = self.lock().take() {
            trace.ended(outcome.is_ok());
        }
        self.inner.complete(outcome, counters);
    }
}

impl TracedSink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<TaskTrace>> {
        // Nothing panics with the lock held but an allocation failure.
        self.trace.lock().unwrap_or_else(|p| p.into_inner())
    }
}
