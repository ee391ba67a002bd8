//! `flags`: the sequential baseline (the book's `flags.py`, Example 17-2 /
//! 20-2). One flag after the other, each code printed as it arrives:
//!
//! ```text
//! $ flags -s DELAY
//! BD BR CD CN DE EG ET FR ID IN IR JP MX NG PH PK RU TR US VN
//! 20 flags downloaded in 10.07s
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use flags::flags1::{self, Context, Error};
use future::trace::Recorder;

fn download_many(
    cc_list: &[String],
    context: Arc<Context>,
    trace: Option<Recorder>,
) -> Result<usize, Error> {
    let mut sorted = cc_list.to_vec();
    sorted.sort();
    for cc in &sorted {
        flags1::traced(trace.as_ref(), || context.download_one(cc))?;
    }
    Ok(cc_list.len())
}

fn main() -> ExitCode {
    flags1::main("flags", download_many)
}
