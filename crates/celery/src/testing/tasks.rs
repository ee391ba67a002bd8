//! Tasks for tests only: they write files and park threads, so only the
//! test worker (`celery-test-worker`, built for this crate's tests) and the
//! tests' in-process workers serve them, never the shipped `celery-worker`
//! (see [`crate::tasks`]).

use crate::registry::Registry;
use crate::tasks::RustTaskError;

/// `rust.touch`: creates the file `path` (proof that a task ran).
pub fn touch(path: String) -> Result<(), RustTaskError> {
    std::fs::write(&path, std::process::id().to_string())
        .map_err(|e| RustTaskError(format!("{path}: {e}")))
}

/// `rust.block_first_run`: the first run (no file at `path`) creates the
/// file, writes its process id to `<path>.pid` (atomically, by rename) and
/// blocks forever, the way a task stuck in a dying worker would; a later run
/// (a redelivery) returns its worker's pid.
pub fn block_first_run(path: String) -> u32 {
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .is_ok()
    {
        let tmp = format!("{path}.pid.tmp");
        if std::fs::write(&tmp, std::process::id().to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, format!("{path}.pid"));
        }
        loop {
            std::thread::park();
        }
    }
    std::process::id()
}

/// `rust.wait_for`: writes its process id to `<path>.started` (atomically,
/// by rename), then waits until the file `path` exists and returns its
/// process id: a task a test holds running until it opens the gate.
pub fn wait_for(path: String) -> u32 {
    let tmp = format!("{path}.started.tmp");
    if std::fs::write(&tmp, std::process::id().to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, format!("{path}.started"));
    }
    while !std::path::Path::new(&path).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::process::id()
}

/// `rust.count_then_wait`: counts its run (`INCR key` on the Redis at
/// `url`: a redelivered run counts twice), then waits until the file
/// `gate` exists; returns the count it saw. A side effect a test reads to
/// tell "ran once" from "ran twice".
pub fn count_then_wait((url, key, gate): (String, String, String)) -> Result<i64, RustTaskError> {
    let n = incr(&url, &key)?;
    while !std::path::Path::new(&gate).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(n)
}

/// `tasks.count_run`, as the Python test app's task of that name: counts
/// its run (`INCR key` at `url`), works for `seconds`, says who ran it
/// (`"rust"`; the Python one says `"python"`). For a queue that a Python
/// worker and ours share.
pub fn count_run((url, key, seconds): (String, String, f64)) -> Result<String, RustTaskError> {
    incr(&url, &key)?;
    // NaN (which no range contains) and negatives work for no time.
    let seconds = if seconds > 0.0 {
        seconds.min(3600.0)
    } else {
        0.0
    };
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    Ok("rust".to_string())
}

/// `INCR key` on the Redis at `url`, for tasks that count their runs.
pub fn incr(url: &str, key: &str) -> Result<i64, RustTaskError> {
    let fail = |e: crate::CeleryError| RustTaskError(format!("INCR {key} at {url}: {e}"));
    let url = crate::RedisUrl::parse(url).map_err(fail)?;
    let mut c = crate::resp::Connection::open(&url).map_err(fail)?;
    match c.command(&[b"INCR", key.as_bytes()]).map_err(fail)? {
        crate::resp::Reply::Integer(n) => Ok(n),
        other => Err(RustTaskError(format!("INCR {key}: {other:?}"))),
    }
}

/// The shipped tasks ([`crate::tasks::builtin`]) and the test tasks above.
pub fn registry() -> Registry {
    let mut r = crate::tasks::builtin();
    r.register("rust.block_first_run", block_first_run)
        .register("rust.wait_for", wait_for);
    r.register_fallible("rust.touch", touch);
    r.register_fallible("rust.count_then_wait", count_then_wait);
    r.register_fallible("tasks.count_run", count_run);
    r
}
