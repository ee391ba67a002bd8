//! `flags2-procpool`: `flags2-threadpool` on our process pool (the book has
//! no such script; its 1e text compares the two for I/O). Each download is a
//! plain `fn` run in a worker process; the future -> code map and the
//! counting are the same as with threads.
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

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use flags::client::{Client, ClientConfig};
use flags::download::{classify, task_message, DownloadError, Downloader};
use flags::flags2::{self, Job, Program};
use flags::interrupt;
use flags::report::{Counter, Status};
use future::{as_completed, Future, FutureError};
use process_pool::ProcessPoolExecutor;
use serde::{Deserialize, Serialize};

/// One download, as it travels to a worker process.
#[derive(Debug, Serialize, Deserialize)]
struct Task {
    base_url: String,
    dest: PathBuf,
    cc: String,
    verbose: bool,
    timeout: Duration,
}

/// Runs in a worker process: the book's `download_one`, with one client per
/// worker made on first use.
fn download_one(task: Task) -> Result<Status, DownloadError> {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    let downloader = Downloader {
        client: CLIENT
            .get_or_init(|| Client::new(&ClientConfig::with_timeout(task.timeout)))
            .clone(),
        base_url: task.base_url,
        dest: task.dest,
        verbose: task.verbose,
    };
    downloader.download_one(&task.cc)
}

fn download_many(job: Job<'_>, program: Program) -> Counter {
    let mut counter = Counter::default();
    let executor = match ProcessPoolExecutor::new(job.concurrency) {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("{}: cannot start the process pool: {e}", program.name);
            return counter;
        }
    };
    let dl = &job.downloader;
    let mut to_do_map: HashMap<Future<Status>, String> = HashMap::new();
    for cc in job.codes {
        let task = Task {
            base_url: dl.base_url.clone(),
            dest: dl.dest.clone(),
            cc: cc.clone(),
            verbose: dl.verbose,
            timeout: job.timeout,
        };
        match executor.submit_fallible(download_one, task) {
            Ok(future) => {
                to_do_map.insert(future, cc.clone());
            }
            Err(e) => {
                counter.add(classify(cc, Err::<Status, _>(e), dl.verbose));
                job.progress.inc();
            }
        }
    }
    let all: Vec<Future<Status>> = to_do_map.keys().cloned().collect();
    interrupt::on_interrupt(move || {
        for future in &all {
            future.cancel();
        }
    });
    for done in as_completed(to_do_map.keys(), None) {
        let Ok(future) = done else { break };
        let cc = &to_do_map[&future];
        let outcome = match future.result() {
            Err(FutureError::Cancelled) => continue,
            Ok(status) => Ok(status),
            Err(e) => Err(task_message(&e)),
        };
        counter.add(classify(cc, outcome, dl.verbose));
        job.progress.inc();
    }
    executor.shutdown(true, true);
    counter
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
