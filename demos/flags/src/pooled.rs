//! `download_many` written once for any executor: the thread-pool and
//! process-pool twins (`flags-threadpool` / `flags-procpool`, and
//! `flags2-threadpool` / `flags2-procpool`) each build their pool and hand it
//! here, so the two programs of a pair differ only in the executor they
//! start, as Python's do (`ThreadPoolExecutor` -> `ProcessPoolExecutor`).
//!
//! A download is a plain `fn` with a serde argument (what the
//! [`Executor`] trait takes), so the same task runs on a worker thread or in
//! a worker process. It makes its HTTP client on first use, one per process
//! (the threads of a thread pool share it; each worker process has its own).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use executor::Executor;
use future::{as_completed, Future, FutureError};
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientConfig};
use crate::download::{classify, task_message, DownloadError, Downloader};
use crate::flags1::{Context, Error};
use crate::flags2::Job;
use crate::interrupt;
use crate::report::{Counter, Status};

/// One download, as it travels to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// The flags' base URL.
    pub base_url: String,
    /// The download directory.
    pub dest: PathBuf,
    /// The country code.
    pub cc: String,
    /// `-v`: print one line per code.
    pub verbose: bool,
    /// The worker's client's timeout (`--timeout`); `None`: the client's
    /// default limits, as the first generation's programs use.
    pub timeout: Option<Duration>,
}

/// The client of this process, made by the first download that runs here.
fn client(timeout: Option<Duration>) -> Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            Client::new(&timeout.map_or_else(ClientConfig::default, ClientConfig::with_timeout))
        })
        .clone()
}

/// The first generation's `download_one` (get, show, save), in a worker;
/// the error travels back as its message.
fn flags1_download_one(task: Task) -> Result<String, String> {
    let context = Context {
        client: client(task.timeout),
        base_url: task.base_url,
        dest: task.dest,
    };
    context.download_one(&task.cc).map_err(|e| e.to_string())
}

/// The flags2 `download_one`, in a worker: 404 is `NotFound`, other failures
/// fail the task with the download's error.
fn flags2_download_one(task: Task) -> Result<Status, DownloadError> {
    let downloader = Downloader {
        client: client(task.timeout),
        base_url: task.base_url,
        dest: task.dest,
        verbose: task.verbose,
    };
    downloader.download_one(&task.cc)
}

/// The book's `flags_threadpool.py` `download_many`: `executor.map` over the
/// sorted codes; the first failure ends the run (its `len(list(res))`).
/// Shuts the executor down (waiting) before it returns.
pub fn map_downloads(
    executor: &impl Executor,
    cc_list: &[String],
    context: &Context,
) -> Result<usize, Error> {
    let mut sorted = cc_list.to_vec();
    sorted.sort();
    let tasks = sorted.into_iter().map(|cc| Task {
        base_url: context.base_url.clone(),
        dest: context.dest.clone(),
        cc,
        verbose: false,
        timeout: None,
    });
    let mut count = 0;
    for outcome in executor.map(flags1_download_one, tasks)? {
        outcome??;
        count += 1;
    }
    executor.shutdown(true, false);
    Ok(count)
}

/// The book's `flags2_threadpool.py` `download_many`: `submit` every
/// download, keep a map from each future to its country code, and count the
/// outcomes with `as_completed`. Ctrl-C cancels every download that has not
/// started. Shuts the executor down (waiting, cancelling what is left)
/// before it returns.
pub fn submit_downloads(executor: &impl Executor, job: Job<'_>) -> Counter {
    let mut counter = Counter::default();
    let dl = &job.downloader;
    // Future -> country code: the book's `to_do_map`, so that an error can be
    // reported with its code.
    let mut to_do_map: HashMap<Future<Status>, String> = HashMap::new();
    for cc in job.codes {
        let task = Task {
            base_url: dl.base_url.clone(),
            dest: dl.dest.clone(),
            cc: cc.clone(),
            verbose: dl.verbose,
            timeout: Some(job.timeout),
        };
        match executor.submit_fallible(flags2_download_one, task) {
            Ok(future) => {
                to_do_map.insert(future, cc.clone());
            }
            Err(e) => {
                counter.add(classify(cc, Err::<Status, _>(e), dl.verbose));
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
        counter.add(classify(cc, outcome, dl.verbose));
        job.progress.inc();
    }
    executor.shutdown(true, true);
    counter
}
