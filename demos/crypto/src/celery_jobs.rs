//! The crypto jobs as Celery tasks, for `--executor celery`: the book's
//! Table 17-1 continued past one machine.
//!
//! `crypto-celery-worker` serves these tasks (plus the `rust.*` demo tasks)
//! from a Redis queue; `crypto-futures --executor celery --broker URL
//! --workers N` starts N such workers on this machine, each running one job
//! at a time, and submits the jobs through a `celery::CeleryExecutor`.
//! Workers on other machines, pointed at the same Redis, join in
//! (docs/cluster.md).
//!
//! A Python client can run a job too:
//! `app.send_task("crypto.aes_job", args=({"index": 0, "size": 1024, "seed": 7},)).get()`
//! returns `{"Ok": {"index": 0, "size": 1024, "digest": ...}}`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use celery::Registry;

use crate::jobs::{run_job, run_job_on_data};
use crate::sha_jobs::run_sha_job;

/// The tasks a crypto Celery worker runs.
pub fn registry() -> Registry {
    let mut r = celery::tasks::builtin();
    r.register("crypto.aes_job", run_job)
        .register("crypto.aes_job_on_data", run_job_on_data)
        .register("crypto.sha_job", run_sha_job);
    r
}

static BROKER: Mutex<Option<String>> = Mutex::new(None);

/// Sets the broker `--executor celery` uses (the command line's `--broker`).
pub fn set_broker(url: &str) {
    *BROKER.lock().unwrap_or_else(|p| p.into_inner()) = Some(url.to_string());
}

/// The broker set by [`set_broker`], else `$CRYPTO_CELERY_BROKER`.
pub fn broker() -> Option<String> {
    let set = BROKER.lock().unwrap_or_else(|p| p.into_inner()).clone();
    set.or_else(|| std::env::var("CRYPTO_CELERY_BROKER").ok())
}

/// The worker binary: `$CRYPTO_CELERY_WORKER`, else `crypto-celery-worker`
/// beside this program (or one directory up, for test binaries in `deps/`).
pub fn worker_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CRYPTO_CELERY_WORKER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().ok_or("no directory")?;
    [
        dir.join("crypto-celery-worker"),
        dir.join("../crypto-celery-worker"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| {
        "crypto-celery-worker not found beside this program: \
             cargo build --release -p crypto --bin crypto-celery-worker"
            .to_string()
    })
}

/// Local worker processes, killed and reaped on drop.
pub struct LocalWorkers(Vec<Child>);

impl LocalWorkers {
    /// Starts `n` workers, one job at a time each, on `broker`'s default queue.
    pub fn start(n: usize, broker: &str) -> Result<LocalWorkers, String> {
        let bin = worker_binary()?;
        let mut workers = LocalWorkers(Vec::new());
        for _ in 0..n {
            let child = Command::new(&bin)
                .args(["--broker", broker, "-c", "1", "--pool", "threads"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{}: {e}", bin.display()))?;
            workers.0.push(child);
        }
        Ok(workers)
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}
