//! The cost of the tasks a worker ran in its worker processes, for its
//! `stats` remote-control reply (beyond Celery).
//!
//! With `--pool processes` every task runs on our process pool, whose
//! futures carry a [`TaskReport`] (`Future::report`): the run time and CPU
//! times measured in the worker process around the task, the process's
//! peak RSS, and how the process ended when it died under the task. The
//! worker sums them here and answers them under `stats()["task_costs"]`.
//! A Python client passes an unknown `stats` key through as it is.
//!
//! Not stored in the result meta: Python's `AsyncResult` reads the keys it
//! knows and would ignore one more, but no client would read it either.
//! The threads pool runs tasks in the worker's own process, where a task's
//! CPU time and memory cannot be told from the rest: it adds nothing.

use std::sync::Mutex;
use std::time::Duration;

use future::TaskReport;
use serde_json::{json, Value};

/// Sums over the tasks the worker processes ran.
#[derive(Default)]
pub(crate) struct TaskCosts {
    sums: Mutex<Sums>,
}

#[derive(Default)]
struct Sums {
    tasks: u64,
    run_time: Duration,
    user_cpu: Duration,
    system_cpu: Duration,
    peak_rss_bytes: u64,
    worker_lost: u64,
}

impl TaskCosts {
    /// Adds one task's report.
    pub(crate) fn add(&self, report: &TaskReport) {
        let mut s = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        s.tasks += 1;
        s.run_time += report.run_time.unwrap_or_default();
        s.user_cpu += report.user_cpu.unwrap_or_default();
        s.system_cpu += report.system_cpu.unwrap_or_default();
        s.peak_rss_bytes = s.peak_rss_bytes.max(report.peak_rss_bytes.unwrap_or(0));
        s.worker_lost += u64::from(report.worker_end.is_some());
    }

    /// The `stats()["task_costs"]` value: times in seconds, as Celery's
    /// own `rusage` stats give them.
    pub(crate) fn to_json(&self) -> Value {
        let s = self.sums.lock().unwrap_or_else(|p| p.into_inner());
        json!({
            "tasks": s.tasks,
            "run_time": s.run_time.as_secs_f64(),
            "user_cpu": s.user_cpu.as_secs_f64(),
            "system_cpu": s.system_cpu.as_secs_f64(),
            "peak_rss_bytes": s.peak_rss_bytes,
            "worker_lost": s.worker_lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_times_keeps_the_highest_peak_and_counts_lost_workers() {
        let costs = TaskCosts::default();
        let mut a = TaskReport::new();
        a.run_time = Some(Duration::from_millis(1500));
        a.user_cpu = Some(Duration::from_millis(1000));
        a.peak_rss_bytes = Some(10);
        let mut b = TaskReport::new();
        b.run_time = Some(Duration::from_millis(500));
        b.peak_rss_bytes = Some(7);
        b.worker_end = Some(future::WorkerEnd::Signaled(9));
        costs.add(&a);
        costs.add(&b);
        assert_eq!(
            costs.to_json(),
            json!({"tasks": 2, "run_time": 2.0, "user_cpu": 1.0, "system_cpu": 0.0,
                   "peak_rss_bytes": 10, "worker_lost": 1})
        );
    }
}
