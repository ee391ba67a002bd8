//! `flags-threadpool-ac`: the book's `flags_threadpool_ac.py` (Example 17-4
//! and 17-5; 2e `flags_threadpool_futures.py`): `submit` and `as_completed`
//! over the first five codes with three workers, printing the futures:
//!
//! ```text
//! $ flags-threadpool-ac -s DELAY
//! Scheduled for BR: <Future state=running>
//! Scheduled for CN: <Future state=running>
//! Scheduled for ID: <Future state=running>
//! Scheduled for IN: <Future state=pending>
//! Scheduled for US: <Future state=pending>
//! CN <Future state=finished returned String> result: "CN"
//! BR ID <Future state=finished returned String> result: "BR"
//! <Future state=finished returned String> result: "ID"
//! IN <Future state=finished returned String> result: "IN"
//! US <Future state=finished returned String> result: "US"
//!
//! 5 flags downloaded in 1.01s
//! ```
//!
//! Three workers: the first three futures run at once, the last two wait.
//! The bare codes come from the workers' `show`, as in the book.

use std::process::ExitCode;
use std::sync::Arc;

use flags::flags1::{self, Context, Error};
use future::as_completed;
use future::trace::Recorder;
use thread_pool::ThreadPoolExecutor;

fn download_many(
    cc_list: &[String],
    context: Arc<Context>,
    trace: Option<Recorder>,
) -> Result<usize, Error> {
    let mut cc_list = cc_list[..5.min(cc_list.len())].to_vec(); // top five: CN IN US ID BR
    cc_list.sort();
    let mut builder = ThreadPoolExecutor::builder()
        .max_workers(3)
        .thread_name_prefix("flags-ac");
    if let Some(recorder) = trace {
        builder = builder.trace(recorder);
    }
    let executor = builder.build()?;
    let mut to_do = Vec::new();
    for cc in cc_list {
        let context = context.clone();
        let future = executor.submit_fallible({
            let cc = cc.clone();
            move || context.download_one(&cc)
        })?;
        println!("Scheduled for {cc}: {future:?}");
        to_do.push(future);
    }
    let mut results = Vec::new();
    for future in as_completed(&to_do, None) {
        let future = future?;
        let res = future.result()?;
        println!("{future:?} result: {res:?}");
        results.push(res);
    }
    executor.shutdown(true, false);
    Ok(results.len())
}

fn main() -> ExitCode {
    flags1::main("flags-threadpool-ac", download_many)
}
