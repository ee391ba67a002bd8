//! The result backend's record, `celery-task-meta-<id>`.
//!
//! `{"status", "result", "traceback", "children", "date_done", "task_id"}`:
//! a SUCCESS holds the return value; a FAILURE or REVOKED holds
//! `{"exc_type", "exc_message", "exc_module"}`, from which a Python client
//! rebuilds the exception (a class it cannot import is created on the fly
//! under that name, so a Rust panic arrives in Python as `TaskPanicked`).
//! A failure named as one of Python's built-in exceptions (`TypeError`,
//! `ValueError`, ...) is stored with `exc_module: "builtins"`, so that
//! `except TypeError` catches it; without a module Celery would create a
//! look-alike class that it does not.

use future::{DynError, TaskError, TaskReport};
use serde_json::{json, Value};

use crate::error::CeleryError;
use crate::task_figures;

/// The longest a result record is kept, in seconds: 100 years. Every
/// writer clamps to it (the worker, the CLI and the client's revocations):
/// Redis refuses an expiry past about 292 million years, and a refused
/// record would be lost.
pub(crate) const MAX_RESULT_TTL: u64 = 100 * 365 * 86_400;

/// The key (and the PUBLISH channel) of a task's result.
pub fn result_key(task_id: &str) -> String {
    format!("celery-task-meta-{task_id}")
}

/// What a worker stores for a task.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The task returned this value.
    Success(Value),
    /// The task raised, returned an error or panicked.
    Failure {
        /// Exception class name (`ValueError`, `TaskPanicked`).
        exc_type: String,
        /// Exception module, or `None` for a class Python should create.
        exc_module: Option<String>,
        /// The message.
        message: String,
        /// A traceback text, if there is one.
        traceback: Option<String>,
    },
    /// The task was revoked before it ran.
    Revoked,
    /// The task's `expires` passed before it ran: REVOKED with Celery's
    /// reason `expired` ([`crate::schedule`]).
    Expired,
    /// `revoke(terminate=True)` stopped it while it ran: REVOKED with
    /// Celery's reason `terminated` ([`crate::terminate`]).
    Terminated,
}

impl Outcome {
    /// The failure a Rust task's error or panic is stored as.
    pub fn from_task_error(e: &TaskError) -> Outcome {
        let (exc_type, message) = match e {
            TaskError::Failed(d) => (d.type_name().to_string(), d.to_string()),
            TaskError::Panicked(m) => ("TaskPanicked".to_string(), m.clone()),
            other => (other.name().to_string(), other.to_string()),
        };
        Outcome::failure(&exc_type, message)
    }

    /// A failure named `exc_type`, with the module Python finds it in
    /// ([`python_module`]).
    pub fn failure(exc_type: &str, message: String) -> Outcome {
        Outcome::Failure {
            exc_type: exc_type.to_string(),
            exc_module: python_module(exc_type).map(String::from),
            message,
            traceback: None,
        }
    }

    /// The status word Celery uses.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Success(_) => "SUCCESS",
            Outcome::Failure { .. } => "FAILURE",
            Outcome::Revoked | Outcome::Expired | Outcome::Terminated => "REVOKED",
        }
    }

    /// The JSON record, as a Python worker writes it.
    pub fn to_json(&self, task_id: &str) -> String {
        self.to_json_reported(task_id, None)
    }

    /// The JSON record, with our worker's figures for the task under
    /// [`task_figures::KEY`] when there are some (a Python client ignores
    /// the key; ours reads it into the future's report).
    pub fn to_json_reported(&self, task_id: &str, report: Option<&TaskReport>) -> String {
        let (result, traceback) = match self {
            Outcome::Success(v) => (v.clone(), Value::Null),
            Outcome::Failure {
                exc_type,
                exc_module,
                message,
                traceback,
            } => (
                json!({"exc_type": exc_type, "exc_message": [message], "exc_module": exc_module}),
                json!(traceback),
            ),
            Outcome::Revoked => (revoked("revoked"), Value::Null),
            Outcome::Expired => (revoked("expired"), Value::Null),
            Outcome::Terminated => (revoked("terminated"), Value::Null),
        };
        let mut record = json!({
            "status": self.status(),
            "result": result,
            "traceback": traceback,
            "children": [],
            "date_done": iso_now(),
            "task_id": task_id,
        });
        if let (Some(report), Some(fields)) = (report, record.as_object_mut()) {
            fields.insert(task_figures::KEY.into(), task_figures::to_json(report));
        }
        record.to_string()
    }
}

/// The STARTED record Celery's worker stores when `task_track_started` is
/// on: the process running the task and the worker's node name, no
/// `date_done` (the task is not done).
pub fn started_record(task_id: &str, pid: u32, hostname: &str) -> String {
    json!({
        "status": "STARTED",
        "result": {"pid": pid, "hostname": hostname},
        "traceback": null,
        "children": [],
        "date_done": null,
        "task_id": task_id,
    })
    .to_string()
}

/// The result of a REVOKED record: Celery's `TaskRevokedError(reason)`.
fn revoked(reason: &str) -> Value {
    json!({"exc_type": "TaskRevokedError", "exc_message": [reason],
           "exc_module": "celery.exceptions"})
}

/// Python's built-in exceptions a Rust task's error may be named as.
const BUILTINS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "EOFError",
    "Exception",
    "FileExistsError",
    "FileNotFoundError",
    "IndexError",
    "KeyError",
    "LookupError",
    "MemoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PermissionError",
    "RecursionError",
    "RuntimeError",
    "TimeoutError",
    "TypeError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "ValueError",
    "ZeroDivisionError",
];

/// Celery's exceptions this worker stores (`celery.exceptions`).
const CELERY_EXCEPTIONS: &[&str] = &["InvalidTaskError", "NotRegistered"];

/// Celery's exceptions that are billiard's classes (`celery.exceptions`
/// re-exports them; their `__module__`, which the Python worker stores, is
/// `billiard.exceptions`).
const BILLIARD_EXCEPTIONS: &[&str] = &[
    "SoftTimeLimitExceeded",
    "TimeLimitExceeded",
    "WorkerLostError",
];

/// The module Python imports exception `exc_type` from: `builtins` for a
/// built-in one, `celery.exceptions` or `billiard.exceptions` for Celery's
/// own this worker stores;
/// `None` for any other name (Python creates a class of that name).
pub fn python_module(exc_type: &str) -> Option<&'static str> {
    if BUILTINS.contains(&exc_type) {
        Some("builtins")
    } else if CELERY_EXCEPTIONS.contains(&exc_type) {
        Some("celery.exceptions")
    } else if BILLIARD_EXCEPTIONS.contains(&exc_type) {
        Some("billiard.exceptions")
    } else {
        None
    }
}

/// A stored record as the client reads it: `Ok(None)` for a state that is
/// not final (PENDING, STARTED, RETRY).
pub fn parse_final(raw: &[u8]) -> Result<Option<Result<Value, TaskError>>, CeleryError> {
    Ok(parse_final_reported(raw)?.map(|(outcome, _)| outcome))
}

/// [`parse_final`], with the task's report when our worker stored one in
/// the record ([`task_figures`]); a Python worker's record gives `None`.
pub fn parse_final_reported(raw: &[u8]) -> Result<Option<Reported>, CeleryError> {
    // As deep as the worker reads arguments (a task may return them).
    let v = crate::json::parse_python(raw).map_err(CeleryError::Json)?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    let result = v.get("result").cloned().unwrap_or(Value::Null);
    let outcome = match status {
        "SUCCESS" => Ok(result),
        "FAILURE" | "REVOKED" => Err(failure_error(&result, status)),
        _ => return Ok(None),
    };
    Ok(Some((outcome, task_figures::from_record(&v))))
}

/// A final record as the client reads it: the task's outcome, and its
/// report if the record carries one.
pub type Reported = (Result<Value, TaskError>, Option<TaskReport>);

fn failure_error(result: &Value, status: &str) -> TaskError {
    let exc_type =
        result
            .get("exc_type")
            .and_then(Value::as_str)
            .unwrap_or(if status == "REVOKED" {
                "TaskRevokedError"
            } else {
                "Exception"
            });
    let message = match result.get("exc_message") {
        Some(Value::Array(parts)) if parts.len() == 1 => match &parts[0] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    if exc_type == "TaskPanicked" {
        return TaskError::Panicked(message);
    }
    TaskError::Failed(DynError::from_parts(
        exc_type,
        format!("{exc_type}: {message}"),
    ))
}

/// Now as Python's `datetime.now(timezone.utc).isoformat()`.
pub fn iso_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    iso_utc(d.as_secs() as i64, d.subsec_micros())
}

/// `2026-12-02T17:20:01.123456+00:00` for a Unix time.
pub fn iso_utc(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_like_python() {
        assert_eq!(iso_utc(0, 0), "1970-01-01T00:00:00.000000+00:00");
        // datetime.fromtimestamp(1796231201.5, timezone.utc).isoformat()
        assert_eq!(
            iso_utc(1_796_231_201, 500_000),
            "2026-12-02T17:06:41.500000+00:00"
        );
        assert_eq!(iso_utc(951_782_400, 1), "2000-02-29T00:00:00.000001+00:00");
    }

    #[test]
    fn reads_python_workers_records() {
        let ok = br#"{"status": "SUCCESS", "result": 3, "traceback": null, "children": [], "date_done": "x", "task_id": "i"}"#;
        assert_eq!(parse_final(ok).unwrap().unwrap().unwrap(), json!(3));
        let fail = br#"{"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}, "traceback": "Traceback...", "children": [], "date_done": "x", "task_id": "i"}"#;
        let e = parse_final(fail).unwrap().unwrap().unwrap_err();
        assert_eq!(e.name(), "ValueError");
        assert_eq!(e.to_string(), "task failed: ValueError: boom");
        let pending = br#"{"status": "STARTED", "result": null}"#;
        assert!(parse_final(pending).unwrap().is_none());
    }

    #[test]
    fn python_builtin_names_are_stored_with_their_module() {
        let record = |name: &str| -> Value {
            let e = TaskError::Failed(DynError::from_parts(name, "x"));
            serde_json::from_str(&Outcome::from_task_error(&e).to_json("i")).unwrap()
        };
        assert_eq!(record("TypeError")["result"]["exc_module"], "builtins");
        assert_eq!(record("KeyError")["result"]["exc_module"], "builtins");
        assert_eq!(
            record("NotRegistered")["result"]["exc_module"],
            "celery.exceptions"
        );
        assert_eq!(record("ParseIntError")["result"]["exc_module"], Value::Null);
    }

    #[test]
    fn writes_records_that_read_back() {
        let rec = Outcome::Success(json!([1, "a"])).to_json("id1");
        let v: Value = serde_json::from_str(&rec).unwrap();
        assert_eq!(v["task_id"], "id1");
        assert_eq!(
            parse_final(rec.as_bytes()).unwrap().unwrap().unwrap(),
            json!([1, "a"])
        );
        let panic = Outcome::from_task_error(&TaskError::Panicked("oh no".into()));
        let e = parse_final(panic.to_json("i").as_bytes())
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, TaskError::Panicked(m) if m == "oh no"));
        let e = parse_final(Outcome::Revoked.to_json("i").as_bytes())
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.name(), "TaskRevokedError");
    }

    #[test]
    fn floats_read_back_exactly_as_python_wrote_them() {
        // Python's repr of this float, as a Python worker stores it. Found
        // by the celery_message fuzz target: serde_json's default
        // (best-effort) float parser read it one unit in the last place off.
        let rec = br#"{"status": "SUCCESS", "result": 3.777777777777778e+100}"#;
        let v = parse_final(rec).unwrap().unwrap().unwrap();
        assert_eq!(v.as_f64(), Some(3.777777777777778e100));
    }

    #[test]
    fn a_result_as_deep_as_the_worker_reads_arguments_reads_back() {
        // The worker runs tasks whose arguments nest up to json::MAX_DEPTH
        // levels (an echo returns them), so the client reads a record as
        // deep, not with serde_json's limit of 128.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let rec = format!(r#"{{"status": "SUCCESS", "result": {deep}}}"#);
        let v = parse_final(rec.as_bytes()).unwrap().unwrap().unwrap();
        assert_eq!(v.to_string(), deep);
    }
}
