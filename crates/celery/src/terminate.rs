//! `revoke(terminate=True)` on our worker: the running tasks that can be
//! stopped, by task id.
//!
//! Celery's prefork worker answers `revoke(task_id, terminate=True,
//! signal=...)` by signalling the pool process that runs the task and
//! storing REVOKED with the reason `terminated`. Ours runs a task in a
//! worker process of `process_pool::ProcessPoolExecutor` and stops it with
//! that pool's [`interrupt`](process_pool::ProcessPoolExecutor::interrupt):
//! SIGTERM to the process, SIGKILL after the pool's grace period (5 s), the
//! process replaced. `Procs::run` enters each task here while it runs; the
//! pidbox thread ([`crate::control::Remote`]) looks the id up. On the
//! threads pool nothing is entered (a thread cannot be killed), and the
//! revoke says so.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Stops one running task; returns whether it was still running.
type Stop = Box<dyn Fn() -> bool + Send>;

/// The running tasks that can be terminated, by task id.
#[derive(Default)]
pub(crate) struct Terminable {
    running: Mutex<HashMap<String, Stop>>,
}

/// Removes a task's entry when its run ends, however it ends.
pub(crate) struct Entry<'a> {
    table: &'a Terminable,
    id: String,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
    }
}

impl Terminable {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Stop>> {
        // One insert, remove or lookup at a time: a poisoned map is still
        // consistent.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters task `id`, stopped by `stop`, until the entry is dropped.
    pub(crate) fn enter(&self, id: &str, stop: Stop) -> Entry<'_> {
        self.lock().insert(id.to_string(), stop);
        Entry {
            table: self,
            id: id.to_string(),
        }
    }

    /// Starts stopping task `id`; false if it is not running here.
    pub(crate) fn terminate(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|stop| stop())
    }
}

/// The future of a task that [`CeleryExecutor::interrupt`](crate::CeleryExecutor::interrupt)
/// asked to stop fails with this: the revoke with `terminate=True` and its
/// signal was broadcast, and the worker stored what it did (Celery's
/// `TaskRevokedError('terminated')` when it stopped a running task,
/// `('revoked')` when the task had not started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminatedByRequest {
    /// The task's id.
    pub task_id: String,
    /// The signal the revoke named (`"SIGTERM"`; our worker escalates to
    /// SIGKILL after its pool's grace period, Celery's prefork sends only
    /// this one).
    pub signal: &'static str,
    /// What the worker stored, e.g. `TaskRevokedError: terminated`.
    pub stored: String,
}

impl std::fmt::Display for TerminatedByRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "terminated by request: revoke(terminate=True, signal={}) of task {}; the worker \
             stored {}",
            self.signal, self.task_id, self.stored
        )
    }
}

impl std::error::Error for TerminatedByRequest {}
