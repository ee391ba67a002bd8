//! The tasks the `celery-worker` binary serves: small, harmless ones for
//! demos, benchmarks and a Python client trying the worker out, under the
//! `rust.` prefix. Nothing here touches the file system or holds a thread
//! for ever: anyone who can push to the queue can call these. The tests'
//! own tasks (which do) are in [`crate::testing::tasks`], served only by
//! the test worker.

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
        .register("rust.echo", echo);
    r.register_fallible("rust.add", add)
        .register_fallible("rust.fail", fail);
    // Keyword arguments from a Python client map onto these names.
    r.params("rust.add", &["x", "y"])
        .params("rust.echo", &["value"])
        .params("rust.fail", &["message"])
        .params("rust.panic", &["message"])
        .params("rust.sleep_ms", &["ms"]);
    r
}
