//! Where and how a task ran, carried in its result record from our worker
//! to the client (issue 19 part 2: "`None` where an executor cannot know").
//!
//! A Python worker's result record says only what the task returned (see
//! [`crate::meta`]): no pid, no times. Our worker adds one key to the
//! record, [`KEY`] (`"rust_report"`), an object with what it measured:
//!
//! | name         | what                                                          |
//! |--------------|---------------------------------------------------------------|
//! | `hostname`   | the worker's node name (`celery@host`, its `-n`)              |
//! | `pid`        | the process that ran the task: the worker's (`--pool threads`) or its pool process's (`--pool processes`) |
//! | `waited`     | seconds from the message's arrival at the worker to the task's start |
//! | `runtime`    | seconds the task ran                                          |
//! | `user_cpu`   | seconds of user CPU time it took (`getrusage`: `RUSAGE_THREAD` on a runner thread, the pool process's own figures) |
//! | `system_cpu` | seconds of system CPU time, the same way                      |
//! | `peak_rss`   | bytes: the running process's peak resident set size so far    |
//! | `attempts`   | how many times the message was delivered ([`crate::lease`])   |
//!
//! Each name may be missing (a figure the worker could not read). Celery's
//! clients read a record by key, so a Python client ignores the extra key
//! (checked by `tests/interop_python.rs`). The client ([`from_record`])
//! turns the object into the future's [`TaskReport`]; a record without it
//! (a Python worker's) gives no report.

use std::time::{Duration, Instant};

use future::TaskReport;
use serde_json::{json, Map, Value};

/// The record's key that holds our worker's figures.
pub const KEY: &str = "rust_report";

/// The names inside [`KEY`]'s object (see the module docs).
pub mod names {
    /// The worker's node name.
    pub const HOSTNAME: &str = "hostname";
    /// The pid of the process that ran the task.
    pub const PID: &str = "pid";
    /// Seconds from arrival at the worker to the task's start.
    pub const WAITED: &str = "waited";
    /// Seconds the task ran.
    pub const RUNTIME: &str = "runtime";
    /// Seconds of user CPU time.
    pub const USER_CPU: &str = "user_cpu";
    /// Seconds of system CPU time.
    pub const SYSTEM_CPU: &str = "system_cpu";
    /// Peak resident set size, in bytes.
    pub const PEAK_RSS: &str = "peak_rss";
    /// Deliveries of the message, this one included.
    pub const ATTEMPTS: &str = "attempts";
}

/// When and how a message reached the worker: the start of its `waited`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivery {
    /// When the fetch returned it.
    pub arrived: Instant,
    /// The fetch script's count of its deliveries, if it could read the
    /// message's id (and the reply was not lost: see the fetch).
    pub attempts: Option<u64>,
}

/// The object stored under [`KEY`], with the report's known figures.
pub fn to_json(report: &TaskReport) -> Value {
    let mut out = Map::new();
    let mut put = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(name.to_string(), v);
        }
    };
    let secs = |d: Option<Duration>| d.map(|d| json!(d.as_secs_f64()));
    put(
        names::HOSTNAME,
        report.worker_host.as_ref().map(|h| json!(h)),
    );
    put(names::PID, report.worker_pid.map(|p| json!(p)));
    put(names::WAITED, secs(report.queued));
    put(names::RUNTIME, secs(report.run_time));
    put(names::USER_CPU, secs(report.user_cpu));
    put(names::SYSTEM_CPU, secs(report.system_cpu));
    put(names::PEAK_RSS, report.peak_rss_bytes.map(|b| json!(b)));
    put(names::ATTEMPTS, report.attempts.map(|n| json!(n)));
    Value::Object(out)
}

/// The report in a stored record, or `None` if the record has no [`KEY`]
/// object (a Python worker's). A figure of the wrong type or out of range
/// is left out: the record comes from the network.
pub fn from_record(record: &Value) -> Option<TaskReport> {
    let figures = record.get(KEY)?.as_object()?;
    let get = |name: &str| figures.get(name);
    let secs = |name: &str| {
        get(name)
            .and_then(Value::as_f64)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    };
    let mut report = TaskReport::new();
    report.worker_host = get(names::HOSTNAME)
        .and_then(Value::as_str)
        .map(String::from);
    report.worker_pid = get(names::PID)
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok());
    report.queued = secs(names::WAITED);
    report.run_time = secs(names::RUNTIME);
    report.user_cpu = secs(names::USER_CPU);
    report.system_cpu = secs(names::SYSTEM_CPU);
    report.peak_rss_bytes = get(names::PEAK_RSS).and_then(Value::as_u64);
    report.attempts = get(names::ATTEMPTS).and_then(Value::as_u64);
    Some(report)
}

/// The report of a task our worker ran on a runner thread: this process,
/// the thread's CPU time since `cpu_before` (read at `start`), the run
/// time from `start` to now.
pub(crate) fn on_thread(
    host: &str,
    delivery: &Delivery,
    start: Instant,
    cpu_before: Option<(Duration, Duration)>,
) -> TaskReport {
    let run_time = start.elapsed();
    let mut report = TaskReport::new();
    report.worker_host = Some(host.to_string());
    report.attempts = delivery.attempts;
    report.worker_pid = Some(std::process::id());
    report.queued = Some(start.saturating_duration_since(delivery.arrived));
    report.run_time = Some(run_time);
    if let (Some(before), Some(after)) = (cpu_before, thread_cpu()) {
        report.user_cpu = Some(after.0.saturating_sub(before.0));
        report.system_cpu = Some(after.1.saturating_sub(before.1));
    }
    report.peak_rss_bytes = peak_rss();
    report
}

/// The report of a task our worker handed to its process pool at
/// `handed`: the pool's report of it (pool process pid, its run time, CPU
/// times and peak RSS, how that process ended if it died under the task),
/// its wait counted from its arrival at the worker.
pub(crate) fn in_process(
    host: &str,
    delivery: &Delivery,
    handed: Instant,
    pool: Option<TaskReport>,
) -> TaskReport {
    let before_pool = handed.saturating_duration_since(delivery.arrived);
    let mut report = pool.unwrap_or_default();
    // The pool's wait runs from `handed`; a task that never started in a
    // pool process (its worker died first) has none.
    report.queued = report.queued.map(|q| q + before_pool);
    report.worker_host = Some(host.to_string());
    report.attempts = delivery.attempts;
    report
}

/// A runner thread's CPU times so far (`getrusage(RUSAGE_THREAD)`): user,
/// system. `None` if the call failed.
pub(crate) fn thread_cpu() -> Option<(Duration, Duration)> {
    let usage = rusage(libc::RUSAGE_THREAD)?;
    Some((timeval(usage.ru_utime), timeval(usage.ru_stime)))
}

/// This process's peak resident set size so far, in bytes.
pub(crate) fn peak_rss() -> Option<u64> {
    let usage = rusage(libc::RUSAGE_SELF)?;
    // Linux gives ru_maxrss in KiB.
    u64::try_from(usage.ru_maxrss)
        .ok()
        .map(|kib| kib.saturating_mul(1024))
}

fn rusage(who: libc::c_int) -> Option<libc::rusage> {
    // SAFETY: `rusage` is plain old data: all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` for the call's length.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    (rc == 0).then_some(usage)
}

fn timeval(t: libc::timeval) -> Duration {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let micros = u32::try_from(t.tv_usec).unwrap_or(0).min(999_999);
    Duration::new(secs, micros * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_the_record() {
        let mut r = TaskReport::new();
        r.worker_host = Some("celery@h".into());
        r.worker_pid = Some(42);
        r.queued = Some(Duration::from_millis(3));
        r.run_time = Some(Duration::from_millis(250));
        r.peak_rss_bytes = Some(1 << 20);
        r.attempts = Some(2);
        let record = json!({"status": "SUCCESS", KEY: to_json(&r)});
        assert_eq!(from_record(&record), Some(r));
    }

    #[test]
    fn a_record_without_figures_or_with_bad_ones() {
        assert_eq!(from_record(&json!({"status": "SUCCESS"})), None);
        let bad = json!({KEY: {"pid": -1, "runtime": -3.0, "waited": 1e300, "attempts": "x"}});
        assert_eq!(from_record(&bad), Some(TaskReport::new()));
    }
}
