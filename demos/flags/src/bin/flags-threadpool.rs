//! `flags-threadpool`: the book's `flags_threadpool.py` (Example 17-3 /
//! 20-3): the same downloads on a thread pool with `map`. The codes print in
//! completion order; `map` still yields the results in input order.
//!
//! ```text
//! $ flags-threadpool -s DELAY
//! DE FR BD CN EG RU IN TR VN ID JP BR NG MX PK ET PH CD US IR
//! 20 flags downloaded in 0.51s
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use flags::flags1::{self, Context, Error};
use flags::pooled;
use future::trace::Recorder;
use thread_pool::ThreadPoolExecutor;

/// The 1e's `MAX_WORKERS`.
const MAX_WORKERS: usize = 20;

fn download_many(
    cc_list: &[String],
    context: Arc<Context>,
    trace: Option<Recorder>,
) -> Result<usize, Error> {
    let workers = MAX_WORKERS.min(cc_list.len()).max(1);
    let mut builder = ThreadPoolExecutor::builder()
        .max_workers(workers)
        .thread_name_prefix("flags");
    if let Some(recorder) = trace {
        builder = builder.trace(recorder);
    }
    let executor = builder.build()?;
    pooled::map_downloads(&executor, cc_list, &context)
}

fn main() -> ExitCode {
    flags1::main("flags-threadpool", download_many)
}
