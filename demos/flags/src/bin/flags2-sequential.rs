//! `flags2-sequential`: the book's `flags2_sequential.py` (Example 17-9 /
//! 20-11): one request at a time, a progress bar, error handling, the flags2
//! command line.
//!
//! ```text
//! $ flags2-sequential -s DELAY b
//! DELAY site: http://127.0.0.1:40571/flags
//! Searching for 26 flags: from BA to BZ
//! 1 concurrent connection will be used.
//! --------------------
//! 17 flags downloaded.
//! 9 not found.
//! Elapsed time: 13.07s
//! ```

use std::process::ExitCode;

use flags::download::classify;
use flags::flags1;
use flags::flags2::{self, Job, Program};
use flags::interrupt;
use flags::report::Counter;

const PROGRAM: Program = Program {
    name: "flags2-sequential",
    default_concur: 1,
    max_concur: 1,
};

fn download_many(job: Job<'_>) -> Counter {
    let mut counter = Counter::default();
    for cc in job.codes {
        if interrupt::interrupted() {
            break; // the book's `except KeyboardInterrupt: break`
        }
        let outcome = flags1::traced(job.trace.as_ref(), || job.downloader.download_one(cc));
        counter.add(classify(cc, outcome, job.downloader.verbose));
        job.progress.inc();
    }
    counter
}

fn main() -> ExitCode {
    flags2::main(PROGRAM, download_many)
}
