//! Running tasks in worker processes: our process pool behind the worker.
//!
//! The process pool runs plain `fn`s whose address is valid in its forked
//! workers; a Celery task is found by name at run time. So the worker sends
//! every task through one `fn`, [`dispatch`], which looks the name up in a
//! process-wide registry. That registry must be installed
//! ([`install_process_registry`]) *before* the fork server starts, so that
//! every worker process, forked from the fork server, inherits it:
//!
//! ```no_run
//! // At the top of `main`:
//! celery::install_process_registry(celery::tasks::builtin());
//! process_pool::start_fork_server(); // then threads, pools, the worker
//! ```

use std::sync::{Arc, Mutex, OnceLock};

use future::{FutureError, TaskError, TaskReport};
use process_pool::{ExitCause, ProcessPoolExecutor, TerminatedByRequest, WorkerDied};

use crate::terminate::Terminable;
use serde_json::Value;

use crate::limits::{self, Limits};
use crate::meta::Outcome;
use crate::registry::Registry;
use crate::task_costs::TaskCosts;

static PROCESS_REGISTRY: OnceLock<Registry> = OnceLock::new();

/// Installs the registry worker processes run tasks from (once; later calls
/// are ignored). Call it before `process_pool::start_fork_server()`.
pub fn install_process_registry(registry: Registry) {
    let _ = PROCESS_REGISTRY.set(registry);
}

/// The installed registry, if any.
pub fn process_registry() -> Option<&'static Registry> {
    PROCESS_REGISTRY.get()
}

/// The worker processes' initializer: ignore SIGINT, as Celery's prefork
/// children do. Ctrl-C in a terminal sends SIGINT to the whole process
/// group; it is the worker's to handle (the first is a warm shutdown, in
/// which the running tasks finish), so it must not kill the tasks.
///
/// The process pool's fork server already leaves SIGINT ignored in its
/// workers; this says the worker's own rule where it is relied on, so that
/// a change in the pool's choice cannot make Ctrl-C kill running tasks.
pub fn ignore_interrupts() {
    // SAFETY: installs a plain disposition (SIG_IGN: no handler code runs).
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}

/// A task's failure as it crosses the pipe: (type name, message).
pub type WireFailure = (String, String);

/// Runs task `name` on JSON `args` in a worker process: the JSON result, or
/// the failure's type name and message (`TaskPanicked` for a panic).
pub fn dispatch((name, args): (String, String)) -> Result<String, WireFailure> {
    let Some(registry) = PROCESS_REGISTRY.get() else {
        return Err((
            "NotRegistered".to_string(),
            "no task registry in this worker process: call install_process_registry before start_fork_server".to_string(),
        ));
    };
    let args: Value = crate::json::parse_python(args.as_bytes()).map_err(|e| {
        (
            "TypeError".to_string(),
            format!("arguments are not JSON: {e}"),
        )
    })?;
    match registry.run(&name, args) {
        Ok(v) => Ok(v.to_string()),
        Err(TaskError::Panicked(m)) => Err(("TaskPanicked".to_string(), m)),
        Err(e) => Err((e.name().to_string(), error_message(&e))),
    }
}

/// What [`dispatch_limited`] takes: task name, JSON args, and the hard and
/// soft time limits in seconds ([`crate::limits`]).
pub type LimitedCall = (String, String, Option<f64>, Option<f64>);

/// [`dispatch`] under the task's time limits, in the worker process that
/// runs it: the hard one kills this process at the limit (SIGALRM), the
/// soft one is the cooperative [`crate::soft_time_limit_exceeded`].
pub fn dispatch_limited((name, args, hard, soft): LimitedCall) -> Result<String, WireFailure> {
    let _alarm = hard.map(limits::Alarm::arm);
    limits::with_soft_limit(soft, || dispatch((name, args)))
        .unwrap_or_else(|why| Err((limits::SOFT_NAME.to_string(), why)))
}

fn error_message(e: &TaskError) -> String {
    match e {
        TaskError::Failed(d) => d.to_string(),
        other => other.to_string(),
    }
}

/// A task the process pool could not start: it never ran (the reason says why).
pub(crate) struct NotStarted(pub String);

/// The worker's process pool, replaced by a new one when it breaks.
///
/// A pool is broken when it cannot start a task at all (its fork server is
/// gone, say): the task never ran, so the worker must not store a failure
/// and ack it. A task whose pool process died while running it did run, and
/// is a `WorkerLostError` as in Celery.
pub(crate) struct Procs {
    size: usize,
    /// The costs of the tasks run, for the `stats` reply (see `task_costs`).
    costs: Arc<TaskCosts>,
    pool: Mutex<Arc<ProcessPoolExecutor>>,
    /// Why the pool broke for good: a new pool could not run a task either.
    broken: Mutex<Option<String>>,
    /// The running tasks, for `revoke(terminate=True)`.
    terminable: Arc<Terminable>,
}

impl Procs {
    /// A pool of `size` worker processes.
    pub(crate) fn start(
        size: usize,
        costs: Arc<TaskCosts>,
        terminable: Arc<Terminable>,
    ) -> Result<Procs, String> {
        Ok(Procs {
            size,
            costs,
            pool: Mutex::new(Arc::new(Self::build(size)?)),
            broken: Mutex::new(None),
            terminable,
        })
    }

    fn build(size: usize) -> Result<ProcessPoolExecutor, String> {
        ProcessPoolExecutor::builder()
            .max_workers(size.max(1))
            .initializer(ignore_interrupts)
            // CPU times and peak RSS for `stats` (two getrusage calls, a
            // few µs: nothing beside a task's Redis round trips).
            .report_usage(true)
            .build()
            .map_err(|e| e.to_string())
    }

    /// Runs task `name` on `args` in a worker process, under `limits`, and
    /// waits for it: its outcome and the pool's report of it (for the
    /// result record, [`crate::task_figures`]). If the pool cannot start
    /// it, tries once to replace the pool (for the next tasks) and returns
    /// [`NotStarted`].
    pub(crate) fn run(
        &self,
        id: &str,
        name: &str,
        args: &Value,
        limits: &Limits,
    ) -> Result<(Outcome, Option<TaskReport>), NotStarted> {
        let pool = lock(&self.pool).clone();
        let mut report = None;
        let failure = Outcome::failure;
        let call = (name.to_string(), args.to_string(), limits.hard, limits.soft);
        let started = pool
            .submit(dispatch_limited, call)
            .map_err(|e| e.to_string())
            .inspect(|future| {
                // `revoke(terminate=True)` finds it here while it runs.
                let (p, f) = (Arc::clone(&pool), future.clone());
                let _entry = self.terminable.enter(
                    id,
                    Box::new(move || p.interrupt(&f) != future::Interrupt::AlreadyDone),
                );
                // The report is read before `into_result` takes the future.
                future.wait(None);
                report = future.report();
                if let Some(report) = &report {
                    self.costs.add(report);
                }
            })
            .and_then(|future| match future.into_result() {
                // Broken before the task reached a worker process.
                Err(FutureError::Task(TaskError::BrokenExecutor(why))) => Err(why),
                other => Ok(other),
            });
        let outcome = match started {
            Ok(Ok(Ok(json))) => Ok(match crate::json::parse_python(json.as_bytes()) {
                Ok(v) => Outcome::Success(v),
                Err(e) => failure("TypeError", format!("the result is not JSON: {e}")),
            }),
            Ok(Ok(Err((exc_type, message)))) => Ok(failure(&exc_type, message)),
            // Its process ended at the hard time limit's SIGALRM.
            Ok(Err(e)) if limits.hard.is_some() && killed_by_alarm(&e) => {
                Ok(limits::hard_exceeded(limits.hard.unwrap_or_default()))
            }
            // `revoke(terminate=True)`: REVOKED `terminated`, as Celery.
            Ok(Err(e)) if terminated_by_request(&e) => Ok(Outcome::Terminated),
            // The worker process died (killed, aborted) or its pipe broke
            // while it held the task.
            Ok(Err(e)) => Ok(failure("WorkerLostError", e.to_string())),
            Err(why) => {
                self.replace(&pool, &why);
                Err(NotStarted(why))
            }
        };
        outcome.map(|outcome| (outcome, report))
    }

    /// Replaces `broken` by a new pool that runs a probe task, unless
    /// another runner did already; records the pool as broken for good if
    /// the new one cannot run it either.
    fn replace(&self, broken: &Arc<ProcessPoolExecutor>, why: &str) {
        let mut pool = lock(&self.pool);
        if !Arc::ptr_eq(&pool, broken) || lock(&self.broken).is_some() {
            return; // replaced already, or known to be beyond repair
        }
        broken.shutdown(false, true);
        let fresh = Self::build(self.size).and_then(|p| {
            match p.submit(probe, ()).map(|f| f.into_result()) {
                Ok(Ok(_)) => Ok(p),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        });
        match fresh {
            Ok(p) => *pool = Arc::new(p),
            Err(e) => {
                let also = if e.contains(why) {
                    "a new pool could not start a task either".to_string()
                } else {
                    format!("a new pool could not start a task either: {e}")
                };
                *lock(&self.broken) = Some(format!("{why}; {also}"));
            }
        }
    }

    /// Why the pool is broken for good, if it is.
    pub(crate) fn broken(&self) -> Option<String> {
        lock(&self.broken).clone()
    }

    /// Waits for the running tasks, then stops the worker processes.
    pub(crate) fn shutdown(&self) {
        lock(&self.pool).shutdown(true, false);
    }
}

/// Whether `revoke(terminate=True)` ended the task (its process was
/// interrupted).
fn terminated_by_request(e: &FutureError) -> bool {
    match e {
        FutureError::Task(TaskError::Executor(d)) => {
            d.downcast_ref::<TerminatedByRequest>().is_some()
        }
        _ => false,
    }
}

/// Whether the pool says the task's process was killed by SIGALRM.
fn killed_by_alarm(e: &FutureError) -> bool {
    let FutureError::Task(TaskError::Executor(d)) = e else {
        return false;
    };
    d.downcast_ref::<WorkerDied>()
        .is_some_and(|died| died.cause == ExitCause::Signaled(libc::SIGALRM))
}

/// The task a new pool runs to show it can run tasks.
fn probe(_: ()) -> u32 {
    std::process::id()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
