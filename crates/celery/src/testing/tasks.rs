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

/// The shipped tasks ([`crate::tasks::builtin`]) and the test tasks above.
pub fn registry() -> Registry {
    let mut r = crate::tasks::builtin();
    r.register("rust.block_first_run", block_first_run)
        .register("rust.wait_for", wait_for);
    r.register_fallible("rust.touch", touch);
    r
}
