//! `flags2-threadpool`: the book's `flags2_threadpool.py` (Example 17-12 /
//! 20-14): `submit` every download, keep a map from each future to its
//! country code, and count the outcomes with `as_completed`. That
//! `download_many` is written once, in `flags::pooled`, for this program
//! and its twin `flags2-procpool`: only the pool differs.
//!
//! ```text
//! $ flags2-threadpool -s DELAY a b c
//! DELAY site: http://127.0.0.1:40571/flags
//! Searching for 78 flags: from AA to CZ
//! 30 concurrent connections will be used.
//! --------------------
//! 43 flags downloaded.
//! 35 not found.
//! Elapsed time: 1.52s
//! ```
//!
//! The pool's size *is* the concurrency limit (`-m`, default 30, at most
//! 1000): with fewer workers than codes, the downloads go in waves of 30.

use std::process::ExitCode;

use flags::flags2::{self, Job, Program};
use flags::pooled;
use flags::report::Counter;
use thread_pool::ThreadPoolExecutor;

const PROGRAM: Program = Program {
    name: "flags2-threadpool",
    default_concur: 30,
    max_concur: 1000,
};

fn download_many(job: Job<'_>) -> Counter {
    let mut builder = ThreadPoolExecutor::builder()
        .max_workers(job.concurrency)
        .thread_name_prefix("flags2");
    if let Some(recorder) = job.trace.clone() {
        builder = builder.trace(recorder);
    }
    let executor = match builder.build() {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("{}: cannot start the thread pool: {e}", PROGRAM.name);
            return Counter::default();
        }
    };
    pooled::submit_downloads(&executor, job)
}

fn main() -> ExitCode {
    flags2::main(PROGRAM, download_many)
}
