//! Where connections run: one task per connection on our thread pool
//! (`thread_pool::ThreadPoolExecutor`).
//!
//! The pool may grow to as many workers as the connection limit, so every
//! admitted connection gets a thread at once and a delayed response never
//! holds back another one. Workers start on demand and leave after a while
//! idle, so a burst of a thousand connections does not pin a thousand
//! threads for the server's lifetime. This file is the one place that knows
//! which executor runs the connections.

use std::io;
use std::time::Duration;

use thread_pool::ThreadPoolExecutor;

/// How long an idle connection worker lingers before its thread exits.
const WORKER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs connection tasks.
#[derive(Debug)]
pub struct Runner {
    pool: ThreadPoolExecutor,
}

impl Runner {
    /// A runner for up to `max_workers` connections at once.
    pub fn new(max_workers: usize) -> io::Result<Self> {
        let pool = ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .thread_name_prefix("flag-conn")
            .idle_timeout(WORKER_IDLE_TIMEOUT)
            .build()
            .map_err(io::Error::other)?;
        Ok(Runner { pool })
    }

    /// Runs `job` on a worker. The task's future is dropped: a connection
    /// reports nothing back, and a panic stays inside its task.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.pool.submit(job).map(drop).map_err(io::Error::other)
    }

    /// Waits for the running connections to end and joins the workers.
    pub fn shutdown(self) {
        self.pool.shutdown(true, false);
    }
}
