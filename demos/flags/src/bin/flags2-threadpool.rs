//! `flags2-threadpool`: the book's `flags2_threadpool.py` (Example 17-12 /
//! 20-14): `submit` every download, keep a map from each future to its
//! country code, and count the outcomes with `as_completed`.
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

use std::collections::HashMap;
use std::process::ExitCode;

use flags::download::{classify, task_message};
use flags::flags2::{self, Job, Program};
use flags::interrupt;
use flags::report::{Counter, Status};
use future::{as_completed, Future, FutureError};
use thread_pool::ThreadPoolExecutor;

const PROGRAM: Program = Program {
    name: "flags2-threadpool",
    default_concur: 30,
    max_concur: 1000,
};

fn download_many(job: Job<'_>) -> Counter {
    let mut counter = Counter::default();
    let executor = match ThreadPoolExecutor::builder()
        .max_workers(job.concurrency)
        .thread_name_prefix("flags2")
        .build()
    {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("{}: cannot start the thread pool: {e}", PROGRAM.name);
            return counter;
        }
    };
    let verbose = job.downloader.verbose;
    // Future -> country code: the book's `to_do_map`, so that an error can be
    // reported with its code.
    let mut to_do_map: HashMap<Future<Status>, String> = HashMap::new();
    for cc in job.codes {
        let downloader = job.downloader.clone();
        let task_cc = cc.clone();
        match executor.submit_fallible(move || downloader.download_one(&task_cc)) {
            Ok(future) => {
                to_do_map.insert(future, cc.clone());
            }
            Err(e) => {
                counter.add(classify(cc, Err::<Status, _>(e), verbose));
                job.progress.inc();
            }
        }
    }
    // Ctrl-C cancels every download that has not started; as_completed then
    // hands the cancelled futures back at once.
    let all: Vec<Future<Status>> = to_do_map.keys().cloned().collect();
    interrupt::on_interrupt(move || {
        for future in &all {
            future.cancel();
        }
    });
    for done in as_completed(to_do_map.keys(), None) {
        let Ok(future) = done else { break }; // no timeout given: never happens
        let cc = &to_do_map[&future];
        let outcome = match future.result() {
            Err(FutureError::Cancelled) => continue, // interrupted: not tried
            Ok(status) => Ok(status),
            Err(e) => Err(task_message(&e)),
        };
        counter.add(classify(cc, outcome, verbose));
        job.progress.inc();
    }
    executor.shutdown(true, true);
    counter
}

fn main() -> ExitCode {
    flags2::main(PROGRAM, download_many)
}
