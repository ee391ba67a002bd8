//! `flags-procpool`: the same as `flags-threadpool` on our process pool (the
//! book's `attic/futures/countries/flags_processpool.py`; the 1e measured
//! 1.8 s against 1.4 s for threads, blaming the pool's four workers).
//!
//! ```text
//! $ flags-procpool -s DELAY
//! BD BR CD CN DE EG ET FR ID IN IR JP MX NG PH PK RU TR US VN
//! 20 flags downloaded in 5.03s
//! ```
//!
//! Each download runs in a worker process: the task is a plain `fn` whose
//! argument (base URL, destination, code) and result cross a pipe with
//! serde. With as many workers as cores, I/O-bound downloads wait in line:
//! processes are the tool for CPU-bound work, threads for I/O.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use flags::client::{Client, ClientConfig};
use flags::flags1::{self, Context, Error};
use process_pool::ProcessPoolExecutor;

/// What a worker needs for one flag: (base URL, destination, code).
type Task = (String, PathBuf, String);

/// Runs in a worker process: one client per worker, made on first use.
fn download_one(task: Task) -> Result<String, String> {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    let (base_url, dest, cc) = task;
    let context = Context {
        client: CLIENT
            .get_or_init(|| Client::new(&ClientConfig::default()))
            .clone(),
        base_url,
        dest,
    };
    context.download_one(&cc).map_err(|e| e.to_string())
}

fn download_many(cc_list: &[String], context: Arc<Context>) -> Result<usize, Error> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let executor = ProcessPoolExecutor::new(workers.min(cc_list.len()).max(1))?;
    let mut sorted = cc_list.to_vec();
    sorted.sort();
    let tasks = sorted
        .into_iter()
        .map(|cc| (context.base_url.clone(), context.dest.clone(), cc));
    let mut count = 0;
    for outcome in executor.map(download_one, tasks, 1)? {
        outcome??; // the first failure ends the run, as in the book
        count += 1;
    }
    executor.shutdown(true, false);
    Ok(count)
}

fn main() -> ExitCode {
    // First, while the program is single-threaded: the helper that forks
    // the workers.
    process_pool::start_fork_server();
    flags1::main("flags-procpool", download_many)
}
