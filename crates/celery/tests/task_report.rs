//! A task's report on the client (`Future::report`, issue 19 part 2): our
//! worker adds its figures to the result record (`celery::task_figures`),
//! the client reads them; a Python worker's record has none, and its
//! futures' reports are `None`.

mod common;

use std::time::Duration;

use celery::CeleryExecutor;
use common::*;

/// The parent pid of `pid`, from `/proc/<pid>/stat` (the field after the
/// state, past the command name in parentheses).
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    let after_name = &stat[stat.rfind(')').expect("a stat line has (comm)") + 2..];
    after_name.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_task_run_by_our_thread_worker_reports_its_pid_times_and_one_attempt() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let worker = rust_worker(&url, &["-c", "1", "--pool", "threads"]);
    let ex = CeleryExecutor::connect(&url).unwrap();
    let f = ex.submit_named::<_, u64>("rust.sleep_ms", (20,)).unwrap();
    f.result_timeout(LONG).unwrap();
    let report = f.report().expect("a task run by our worker has a report");
    assert_eq!(report.worker_pid, Some(worker.pid() as u32), "{report:?}");
    assert_eq!(report.attempts, Some(1), "{report:?}");
    // It slept 20 ms: at least that, whatever the load.
    assert!(
        report.run_time >= Some(Duration::from_millis(20)),
        "{report:?}"
    );
    assert!(report.queued.is_some(), "{report:?}");
    assert!(report.user_cpu.is_some() && report.system_cpu.is_some());
    assert!(report.peak_rss_bytes.is_some_and(|b| b > 0), "{report:?}");
    let host = report.worker_host.as_deref().unwrap_or("");
    assert!(host.starts_with("celery@"), "{report:?}");
    assert_eq!(report.worker_end, None);
}

#[test]
fn a_task_run_in_our_workers_process_pool_reports_the_child_that_ran_it() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let worker = rust_worker(&url, &["-c", "1", "--pool", "processes"]);
    let ex = CeleryExecutor::connect(&url).unwrap();
    let f = ex.submit_named::<_, u64>("rust.sleep_ms", (20,)).unwrap();
    f.result_timeout(LONG).unwrap();
    let report = f.report().expect("a task run by our worker has a report");
    let pid = report
        .worker_pid
        .expect("the pid of the process that ran it");
    // The pool's process lives on after the task, forked by the pool's
    // fork server, itself our worker's child.
    assert_ne!(pid, worker.pid() as u32, "{report:?}");
    assert_eq!(parent_of(parent_of(pid)), worker.pid() as u32, "{report:?}");
    assert_eq!(report.attempts, Some(1), "{report:?}");
    assert!(
        report.run_time >= Some(Duration::from_millis(20)),
        "{report:?}"
    );
    assert!(report.user_cpu.is_some() && report.peak_rss_bytes.is_some());
}

#[test]
fn a_task_run_by_a_python_worker_has_no_report() {
    let redis = RedisServer::start();
    let (_py, _ex, f) = python_worker_and_a_sum(&redis.url(0));
    assert_eq!(f.report(), None, "a Python worker's record has no figures");
}
