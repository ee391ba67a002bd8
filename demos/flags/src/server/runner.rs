//! Where connections run: one task per connection on a pool of threads.
//!
//! The pool is as large as the connection limit, so every admitted
//! connection has a thread of its own at once and a delayed response never
//! holds back another one. This is the one place that knows which executor
//! runs the connections.

use std::io;

/// Runs connection tasks.
#[derive(Debug)]
pub struct Runner {
    // TEMPORARY: plain threads until our thread pool lands.
    _private: (),
}

impl Runner {
    /// A runner for up to `max_workers` connections at once.
    pub fn new(_max_workers: usize) -> io::Result<Self> {
        Ok(Runner { _private: () })
    }

    /// Runs `job` on a worker thread.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> io::Result<()> {
        std::thread::Builder::new()
            .name("flag-conn".into())
            .spawn(job)
            .map(drop)
    }

    /// Stops the workers once their tasks are over.
    pub fn shutdown(self) {}
}
