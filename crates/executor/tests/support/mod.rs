//! What the "every executor" tests share (`hostile.rs`, `trace.rs`,
//! `executors.rs`): the one list of every executor, the fork server started
//! before `main`, and a Celery executor with its own redis-server and an
//! in-process Rust worker.
//!
//! A new executor is one more [`Kind`]: every test that builds executors
//! matches on `Kind` without a wildcard arm, so each stops compiling until
//! it says how to build (or why it skips) the new one.

// Each test file uses a part of this module; the rest is dead code there.
#![allow(dead_code)]

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use celery::testing::RedisServer;
use celery::{CeleryExecutor, Registry, Worker, WorkerConfig};
use future::trace::Recorder;

/// One executor under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Inline,
    ThreadPool,
    ProcessPool,
    Celery,
}

impl Kind {
    /// Every executor, in the order the suites run them.
    pub const EVERY: [Kind; 4] = [
        Kind::Inline,
        Kind::ThreadPool,
        Kind::ProcessPool,
        Kind::Celery,
    ];

    /// The name a failing check prints.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Inline => "inline",
            Kind::ThreadPool => "thread pool",
            Kind::ProcessPool => "process pool",
            Kind::Celery => "celery",
        }
    }
}

// SAFETY (ctor's contract): this runs before main, while the process is
// single-threaded; it records the test's pid, fills the Celery worker
// processes' registry (a `OnceLock`) and forks the process pool's fork
// server, touching no other state.
#[ctor::ctor]
unsafe fn start_fork_server_before_main() {
    PARENT.store(std::process::id() as usize, Ordering::SeqCst);
    // Each test file names its tasks (`celery_process_registry`): a Celery
    // worker on worker processes runs them there, so the fork server,
    // whose forks they are, must have them before it starts.
    celery::install_process_registry(crate::celery_process_registry());
    process_pool::start_fork_server();
}

/// The test process (a process pool's workers are forks of it).
static PARENT: AtomicUsize = AtomicUsize::new(0);

/// Whether this is the test process itself, not one of a process pool's
/// workers (a worker is a fork of the test binary).
pub fn in_test_process() -> bool {
    PARENT.load(Ordering::SeqCst) == std::process::id() as usize
}

/// The Celery executor with its own redis-server and an in-process Rust
/// worker that knows the test's tasks; all stopped on drop (executor first,
/// so its listener is gone before the server).
pub struct CeleryUnderTest {
    executor: ManuallyDrop<CeleryExecutor>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    _redis: RedisServer,
}

impl CeleryUnderTest {
    /// `registry` gives the test's tasks to the worker and the client
    /// alike; `recorder`, if any, records the client's schedule.
    pub fn start(registry: fn() -> Registry, recorder: Option<Recorder>) -> CeleryUnderTest {
        let redis = RedisServer::start();
        let url = redis.url(0);
        let mut config = WorkerConfig::new(&url);
        config.concurrency = 2;
        let worker = Worker::new(config, registry());
        let stop = worker.stop_flag();
        let worker = std::thread::spawn(move || worker.run().expect("the celery worker runs"));
        let mut builder = CeleryExecutor::builder(&url).registry(registry());
        if let Some(recorder) = recorder {
            builder = builder.trace(recorder);
        }
        let executor = builder
            .connect()
            .expect("connect to the test's redis-server");
        CeleryUnderTest {
            executor: ManuallyDrop::new(executor),
            stop,
            worker: Some(worker),
            _redis: redis,
        }
    }
}

impl Deref for CeleryUnderTest {
    type Target = CeleryExecutor;

    fn deref(&self) -> &CeleryExecutor {
        &self.executor
    }
}

impl Drop for CeleryUnderTest {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.executor) };
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}
