//! Recording the schedule (`Builder::trace`): the worker records a task's
//! start and end (`future::trace`).
//!
//! The wrapping happens at submit, and only when the pool has a recorder:
//! an untraced pool pushes the user's closure as it is, so recording
//! costs nothing but the test of `Config::trace` there.
//!
//! `submit` queues a [`TracedJob`]: the job and the task's number, one word
//! more, so that a small task still fits the queue slot's inline words
//! (`raw.rs`; a job that does not is boxed, an allocation by the submitter
//! freed by a worker, which is what a traced task cost most before). The
//! worker finds the recorder in its own thread-local ([`work_for`]), set
//! once when it starts. `map`'s items still wrap their closure ([`traced`]).

use std::cell::OnceCell;

use future::trace::{LocalRun, Recorder, TaskTrace};
use future::TaskError;

use crate::job::{Job, Ran, RunHooks};

thread_local! {
    /// The recorder of the traced pool this worker thread works for.
    static WORKER_RECORDER: OnceCell<Recorder> = const { OnceCell::new() };
}

/// Called by a worker thread as it starts: the recorder of its pool, if
/// the pool has one, is where it records the [`TracedJob`]s it runs.
pub(crate) fn work_for(recorder: Option<&Recorder>) {
    if let Some(recorder) = recorder {
        let _ = WORKER_RECORDER.try_with(|r| r.set(recorder.clone()));
    }
}

/// A job whose submission was recorded as task number `task`.
pub(crate) struct TracedJob<J> {
    task: u64,
    job: J,
}

impl<J> TracedJob<J> {
    /// Records the submission, from the current thread.
    pub(crate) fn new(recorder: &Recorder, job: J) -> Self {
        TracedJob {
            task: recorder.submitted_number(),
            job,
        }
    }
}

impl<J: Job> Job for TracedJob<J> {
    fn run(self, hooks: &mut dyn RunHooks) {
        let mut this = Some(self);
        let _ = WORKER_RECORDER.try_with(|recorder| {
            let Some(recorder) = recorder.get() else {
                return;
            };
            if let Some(TracedJob { task, job }) = this.take() {
                job.run(&mut Recording {
                    hooks: &mut *hooks,
                    recorder,
                    task,
                    run: None,
                });
            }
        });
        // Not on a traced pool's worker (no such caller today): untraced.
        if let Some(TracedJob { job, .. }) = this {
            job.run(hooks);
        }
    }

    fn cancel(self) {
        self.job.cancel();
    }

    fn fail(self, error: TaskError) {
        self.job.fail(error);
    }
}

/// The worker's hooks, recording the start where the job starts its body
/// and the end before the outcome is published (so a reader who sees the
/// future done finds every event recorded).
struct Recording<'a> {
    hooks: &'a mut dyn RunHooks,
    recorder: &'a Recorder,
    task: u64,
    /// Dropped unended if the job unwinds past us: recorded as failed.
    run: Option<LocalRun<'a>>,
}

impl RunHooks for Recording<'_> {
    fn started(&mut self) {
        self.hooks.started();
        self.run = Some(self.recorder.started_here(self.task));
    }

    fn before_publish(&mut self, ran: Ran) {
        if let Some(run) = self.run.take() {
            run.ended(ran == Ran::Completed);
        }
        self.hooks.before_publish(ran);
    }

    fn before_callbacks(&mut self) {
        self.hooks.before_callbacks();
    }
}

/// `body`, recording its start on the worker thread that runs it and its
/// end there: failed if it returns an error or panics (the panic goes on
/// to the pool's own `catch_unwind`).
pub(crate) fn traced<T>(
    recorder: &Recorder,
    body: impl FnOnce() -> Result<T, TaskError>,
) -> impl FnOnce() -> Result<T, TaskError> {
    let mut trace = recorder.submitted();
    move || {
        trace.started_here();
        let mut end = EndOnUnwind(Some(trace));
        let outcome = body();
        if let Some(trace) = end.0.take() {
            trace.ended(outcome.is_ok());
        }
        outcome
    }
}

/// Records a failed end if the body unwinds past it.
struct EndOnUnwind(Option<TaskTrace>);

impl Drop for EndOnUnwind {
    fn drop(&mut self) {
        if let Some(trace) = self.0.take() {
            trace.ended(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::PromiseJob;

    struct NoHooks;
    impl RunHooks for NoHooks {
        fn started(&mut self) {}
        fn before_publish(&mut self, _ran: Ran) {}
    }

    #[test]
    fn a_traced_job_on_a_thread_without_a_recorder_runs_untraced() {
        // This test's thread is no traced pool's worker.
        let recorder = Recorder::new();
        let (promise, future) = future::promise::<u64>();
        let job = TracedJob::new(&recorder, PromiseJob::new(|| Ok(7), promise));
        job.run(&mut NoHooks);
        assert_eq!(future.into_result().unwrap(), 7);
        assert_eq!(recorder.events().len(), 1, "its submission only");
    }
}
