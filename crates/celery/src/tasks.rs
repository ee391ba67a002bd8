//! The tasks the `celery-worker` binary serves: small ones for tests,
//! demos and benchmarks, under the `rust.` prefix.

use std::fmt;

use crate::registry::Registry;

/// The error `rust.fail` returns: Python sees an exception named `RustTaskError`.
#[derive(Debug)]
pub struct RustTaskError(pub String);

impl fmt::Display for RustTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RustTaskError {}

/// The error `rust.add` returns when the sum does not fit an `i64`: Python
/// sees its built-in `OverflowError` (a Python int would not overflow; a
/// wrapped sum would be a wrong answer).
#[derive(Debug)]
pub struct OverflowError(pub String);

impl fmt::Display for OverflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OverflowError {}

/// `rust.add(x, y)`: `add(2, 3) == 5`; a sum past `i64` is an `OverflowError`.
pub fn add((a, b): (i64, i64)) -> Result<i64, OverflowError> {
    a.checked_add(b)
        .ok_or_else(|| OverflowError(format!("{a} + {b} does not fit a 64-bit integer")))
}

/// `rust.fail`: returns an error with `message`.
pub fn fail(message: String) -> Result<(), RustTaskError> {
    Err(RustTaskError(message))
}

/// `rust.panic`: panics with `message`.
pub fn panic(message: String) {
    panic!("{message}")
}

/// `rust.sleep_ms`: sleeps, returns its argument.
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    ms
}

/// `rust.pid`: the worker's process id.
pub fn pid(_: ()) -> u32 {
    std::process::id()
}

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

/// `rust.echo`: returns its argument (any JSON).
pub fn echo(v: serde_json::Value) -> serde_json::Value {
    v
}

/// Every task above, by name.
pub fn builtin() -> Registry {
    let mut r = Registry::new();
    r.register("rust.panic", panic)
        .register("rust.sleep_ms", sleep_ms)
        .register("rust.pid", pid)
        .register("rust.block_first_run", block_first_run)
        .register("rust.wait_for", wait_for)
        .register("rust.echo", echo);
    r.register_fallible("rust.add", add)
        .register_fallible("rust.fail", fail)
        .register_fallible("rust.touch", touch);
    // Keyword arguments from a Python client map onto these names.
    r.params("rust.add", &["x", "y"])
        .params("rust.echo", &["value"])
        .params("rust.fail", &["message"])
        .params("rust.panic", &["message"])
        .params("rust.sleep_ms", &["ms"]);
    r
}
