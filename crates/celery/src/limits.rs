//! Celery's time limits: a message's `timelimit` header, `[hard, soft]` in
//! seconds (a Python client's `time_limit=` and `soft_time_limit=`).
//!
//! Celery's prefork pool kills the process of a task that outruns its hard
//! limit and stores `TimeLimitExceeded`; at the soft limit it raises
//! `SoftTimeLimitExceeded` inside the task, which the task may catch to
//! clean up. Both classes come from `billiard.exceptions`. Our worker:
//!
//! * **Hard, in worker processes** (`--pool processes`): the task's
//!   process arms a timer (`setitimer(ITIMER_REAL)`) when the task starts,
//!   with SIGALRM at its default action, so the process dies at the limit
//!   wherever the task is. The pool replaces the process, and the worker
//!   reads "killed by SIGALRM" as `TimeLimitExceeded`.
//! * **Hard, on the runner threads** (`--pool threads`): a thread cannot be
//!   killed, so a task with a hard limit is refused before it runs, with a
//!   FAILURE (`NotImplementedError`) that says to use `--pool processes`.
//! * **Soft** (both pools): Rust cannot raise inside a running function, so
//!   the signal is cooperative: the task calls [`soft_time_limit_exceeded`]
//!   where it can stop. A task that asked and got `true` has handled it
//!   (its own return value or error is stored); a task that ran past its
//!   soft limit without asking did not handle it, as a Python task that
//!   does not catch the exception, and `SoftTimeLimitExceeded` is stored.

use std::cell::Cell;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::message::TaskMessage;
use crate::meta::Outcome;
use crate::registry::excerpt;

/// Where Celery's time-limit exceptions live (a Python client imports them
/// from there, so `except TimeLimitExceeded` catches ours).
const MODULE: &str = "billiard.exceptions";
/// The exception a task that outran its hard limit fails with.
pub const HARD_NAME: &str = "TimeLimitExceeded";
/// The exception a task that ran past its soft limit unawares fails with.
pub const SOFT_NAME: &str = "SoftTimeLimitExceeded";

/// The longest limit armed: 100 years (a longer one never fires anyway).
const MAX_LIMIT: f64 = 100.0 * 365.0 * 86_400.0;

/// A message's time limits, in seconds (`None`: no limit).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// Hard limit: the task is killed.
    pub hard: Option<f64>,
    /// Soft limit: the task is told.
    pub soft: Option<f64>,
    /// A `timelimit` header that could not be read: the task is refused.
    pub error: Option<String>,
}

impl Limits {
    /// Whether [`TaskMessage::to_json`] writes these limits as they are: a
    /// NaN would go out as `null`, no limit at all. The error names the
    /// limit and says what to give.
    pub fn check_writable(&self) -> Result<(), String> {
        for (name, limit) in [("time_limit", self.hard), ("soft_time_limit", self.soft)] {
            if limit.is_some_and(f64::is_nan) {
                return Err(format!(
                    "the message's {name} is NaN, which would be sent as no limit: give a \
                     number of seconds, or None for no limit"
                ));
            }
        }
        Ok(())
    }

    /// Reads `timelimit: [hard, soft]`; `null` or 0 is no limit, as in
    /// Celery (`time_limit or task.time_limit`).
    pub fn from_headers(headers: &Value) -> Limits {
        let mut limits = Limits::default();
        let pair = match headers.get("timelimit") {
            None | Some(Value::Null) => return limits,
            Some(Value::Array(pair)) if pair.len() == 2 => pair,
            Some(other) => {
                limits.error = Some(format!(
                    "its timelimit header {} is not [hard, soft]",
                    excerpt(other)
                ));
                return limits;
            }
        };
        let mut read = |name: &str, v: &Value| -> Option<f64> {
            match v {
                Value::Null => None,
                v => match v.as_f64() {
                    Some(0.0) => None,
                    Some(s) if s > 0.0 && s.is_finite() => Some(s.min(MAX_LIMIT)),
                    _ => {
                        limits.error = Some(format!(
                            "its {name} {} is not a positive number of seconds",
                            excerpt(v)
                        ));
                        None
                    }
                },
            }
        };
        let (hard, soft) = (
            read("time_limit", &pair[0]),
            read("soft_time_limit", &pair[1]),
        );
        limits.hard = hard;
        limits.soft = soft;
        limits
    }
}

/// The FAILURE stored instead of running a task whose limits this worker
/// cannot honour: an unreadable header, or a hard limit on threads.
pub fn refusal(msg: &TaskMessage, on_threads: bool) -> Option<Outcome> {
    let limits = &msg.limits;
    let (exc_type, why) = match (&limits.error, limits.hard) {
        (Some(e), _) => ("ValueError", e.clone()),
        (None, Some(hard)) if on_threads => (
            "NotImplementedError",
            format!(
                "it has a hard time limit (time_limit={hard}), and this worker runs tasks \
                 on threads, which cannot be killed: start it with --pool processes, or \
                 send a soft_time_limit only"
            ),
        ),
        _ => return None,
    };
    Some(Outcome::Failure {
        exc_type: exc_type.to_string(),
        exc_module: Some("builtins".to_string()),
        message: format!(
            "task {} ({}) did not run: {why}",
            excerpt(&msg.task),
            excerpt(&msg.id)
        ),
        traceback: None,
    })
}

/// The failure of a task killed at its hard limit of `limit` seconds.
pub fn hard_exceeded(limit: f64) -> Outcome {
    Outcome::Failure {
        exc_type: HARD_NAME.to_string(),
        exc_module: Some(MODULE.to_string()),
        message: format!("the task ran longer than its time_limit of {limit} s and was killed"),
        traceback: None,
    }
}

/// The failure of a task that ran past its soft limit without asking
/// [`soft_time_limit_exceeded`]; `message` says which limit.
pub fn soft_exceeded(message: String) -> Outcome {
    Outcome::Failure {
        exc_type: SOFT_NAME.to_string(),
        exc_module: Some(MODULE.to_string()),
        message,
        traceback: None,
    }
}

fn soft_exceeded_message(limit: f64) -> String {
    format!(
        "the task ran past its soft_time_limit of {limit} s without checking \
         celery::soft_time_limit_exceeded()"
    )
}

/// The module a failure named `exc_type` is stored under, for the
/// time-limit exceptions (which cross the process pool's pipe by name).
pub fn module_of(exc_type: &str) -> Option<String> {
    [HARD_NAME, SOFT_NAME]
        .contains(&exc_type)
        .then(|| MODULE.to_string())
}

/// The soft limit of the task running on this thread: (deadline, asked
/// after it passed).
struct Soft {
    deadline: Instant,
    seen: bool,
}

thread_local! {
    static SOFT: Cell<Option<Soft>> = const { Cell::new(None) };
}

/// True once the running task's soft time limit (`soft_time_limit=`) has
/// passed: a Celery task written in Rust calls it where it can stop, and
/// returns (a value or an error) when it is true. A task that runs past its
/// soft limit without calling it fails with `SoftTimeLimitExceeded`, as a
/// Python task that does not catch the exception. False when the task has
/// no soft limit, or outside a task.
pub fn soft_time_limit_exceeded() -> bool {
    SOFT.with(|cell| {
        let Some(mut soft) = cell.take() else {
            return false;
        };
        let passed = Instant::now() >= soft.deadline;
        soft.seen |= passed;
        cell.set(Some(soft));
        passed
    })
}

/// Runs `task` on this thread with its soft limit of `soft` seconds; the
/// task's own outcome, or `SoftTimeLimitExceeded` if it ran past the limit
/// without asking.
pub(crate) fn with_soft_limit<T>(soft: Option<f64>, task: impl FnOnce() -> T) -> Result<T, String> {
    let Some(limit) = soft else {
        return Ok(task());
    };
    let now = Instant::now();
    let deadline = Duration::try_from_secs_f64(limit)
        .ok()
        .and_then(|d| now.checked_add(d));
    let Some(deadline) = deadline else {
        return Ok(task()); // further than any clock reaches
    };
    SOFT.with(|cell| {
        cell.set(Some(Soft {
            deadline,
            seen: false,
        }))
    });
    let out = task();
    let soft = SOFT.with(Cell::take);
    match soft {
        Some(s) if !s.seen && Instant::now() >= s.deadline => Err(soft_exceeded_message(limit)),
        _ => Ok(out),
    }
}

/// The hard limit of the task running in this worker process: SIGALRM at
/// its default action (the process ends) when it passes. Disarmed on drop.
pub(crate) struct Alarm(());

impl Alarm {
    /// Arms the timer for `limit` seconds.
    pub(crate) fn arm(limit: f64) -> Alarm {
        let limit = limit.min(MAX_LIMIT);
        let secs = limit.trunc();
        let timer = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: secs as libc::time_t,
                // At least 1 µs: an all-zero value would disarm the timer.
                tv_usec: (((limit - secs) * 1e6) as libc::suseconds_t).max(1),
            },
        };
        // SAFETY: `set` is initialised by sigemptyset before use; signal(2)
        // installs the default action (no handler code runs), whatever the
        // process inherited; setitimer(2) only reads `timer`.
        unsafe {
            libc::signal(libc::SIGALRM, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGALRM);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut());
        }
        Alarm(())
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        // SAFETY: an all-zero itimerval disarms the timer; setitimer(2)
        // only reads it.
        unsafe {
            let off: libc::itimerval = std::mem::zeroed();
            libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_header_python_sends() {
        let l = Limits::from_headers(&json!({"timelimit": [1, 0.5]}));
        assert_eq!((l.hard, l.soft, l.error), (Some(1.0), Some(0.5), None));
        let l = Limits::from_headers(&json!({"timelimit": [null, null]}));
        assert_eq!(l, Limits::default());
        let l = Limits::from_headers(&json!({"timelimit": [0, 0]}));
        assert_eq!(l, Limits::default());
        let l = Limits::from_headers(&json!({"timelimit": [1e300, null]}));
        assert_eq!(l.hard, Some(MAX_LIMIT));
        for bad in [json!([-1, null]), json!([null, "1"]), json!(5), json!([1])] {
            let l = Limits::from_headers(&json!({ "timelimit": bad }));
            assert!(l.error.is_some(), "{bad}");
        }
    }

    #[test]
    fn a_task_that_asks_handles_its_soft_limit_and_one_that_does_not_fails() {
        assert!(!soft_time_limit_exceeded(), "outside a task");
        let asked = with_soft_limit(Some(1e-6), || {
            while !soft_time_limit_exceeded() {
                std::thread::yield_now();
            }
            "stopped early"
        });
        assert_eq!(asked, Ok("stopped early"));
        let unaware = with_soft_limit(Some(1e-6), || {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(1) {}
            "ran on"
        });
        assert!(unaware.unwrap_err().contains("soft_time_limit"));
        let within = with_soft_limit(Some(3600.0), soft_time_limit_exceeded);
        assert_eq!(within, Ok(false));
        assert!(!soft_time_limit_exceeded(), "the limit ends with its task");
    }
}
