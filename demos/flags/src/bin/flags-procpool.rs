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
//! Each download runs in a worker process: `download_many` is the one in
//! `flags::pooled`, shared with `flags-threadpool`, whose task is a plain
//! `fn` whose argument (base URL, destination, code) and result cross a
//! pipe with serde. With as many workers as cores, I/O-bound downloads wait in line:
//! processes are the tool for CPU-bound work, threads for I/O.

use std::process::ExitCode;
use std::sync::Arc;

use flags::flags1::{self, Context, Error};
use flags::pooled;
use future::trace::Recorder;
use process_pool::ProcessPoolExecutor;

fn download_many(
    cc_list: &[String],
    context: Arc<Context>,
    trace: Option<Recorder>,
) -> Result<usize, Error> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut builder = ProcessPoolExecutor::builder().max_workers(workers.min(cc_list.len()).max(1));
    if let Some(recorder) = trace {
        builder = builder.trace(recorder);
    }
    let executor = builder.build()?;
    pooled::map_downloads(&executor, cc_list, &context)
}

fn main() -> ExitCode {
    // First, while the program is single-threaded: the helper that forks
    // the workers.
    process_pool::start_fork_server();
    flags1::main("flags-procpool", download_many)
}
