//! `flags2-procpool`: `flags2-threadpool` on our process pool (the book has
//! no such script; its 1e text compares the two for I/O). Each download is a
//! plain `fn` run in a worker process; `download_many` (the future -> code
//! map and the counting) is the one in `flags::pooled`, shared with threads.
//!
//! ```text
//! $ flags2-procpool -s DELAY a b c
//! DELAY site: http://127.0.0.1:40571/flags
//! Searching for 78 flags: from AA to CZ
//! 2 concurrent connections will be used.
//! --------------------
//! 43 flags downloaded.
//! 35 not found.
//! Elapsed time: 19.56s
//! ```
//!
//! The default concurrency is the number of cores (Python's default pool
//! size), so against a slow server this is much slower than threads: raise
//! `-m` (at most 64 processes) to see the gap close.

use std::process::ExitCode;

use flags::flags2::{self, Job, Program};
use flags::pooled;
use flags::report::Counter;
use process_pool::ProcessPoolExecutor;

fn download_many(job: Job<'_>, program: Program) -> Counter {
    let mut builder = ProcessPoolExecutor::builder().max_workers(job.concurrency);
    if let Some(recorder) = job.trace.clone() {
        builder = builder.trace(recorder);
    }
    let executor = match builder.build() {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("{}: cannot start the process pool: {e}", program.name);
            return Counter::default();
        }
    };
    pooled::submit_downloads(&executor, job)
}

fn main() -> ExitCode {
    // First, while the program is single-threaded: the helper that forks
    // the workers.
    process_pool::start_fork_server();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let program = Program {
        name: "flags2-procpool",
        default_concur: cores,
        max_concur: 64,
    };
    flags2::main(program, |job| download_many(job, program))
}
