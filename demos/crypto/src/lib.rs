//! # `crypto`: the book's CPU-bound lesson, rebuilt with AES on our executors
//!
//! Fluent Python's `arcfour_futures.py` spreads a dozen RC4 jobs over a
//! `ProcessPoolExecutor` and gets about 2x with four workers on four cores
//! (Table 17-1). This crate is its Rust twin: AES-128-CTR jobs that run
//! sequentially, on our thread pool or on our process pool, a program that
//! runs one batch (`crypto-futures`) and one that sweeps worker counts and
//! rebuilds the table (`crypto-sweep`); `sha-futures` does the same for the
//! book's `sha_futures.py`, on a hand-built SHA-256. What Rust changes: threads
//! scale too (there is no GIL), and the process pool's price is what crosses
//! the pipe.
//!
//! ## How it is built
//!
//! * [`ctr`]: AES-128 in counter mode, hand-built over the `aes` crate's block
//!   cipher: the 128-bit big-endian counter, 8 blocks per AES-NI call, the XOR.
//!   Random access into the stream, so jobs can work chunk by chunk.
//! * [`sha256`]: SHA-256 by hand (FIPS 180-4): constants, message schedule,
//!   compression and padding, with a streaming `update`/`finalize` API.
//! * [`jobs`]: a job = make data from a seed, encrypt, digest, decrypt, check;
//!   only a spec and a result (a few bytes each) cross to a process.
//! * [`sha_jobs`]: the twin of the book's `sha_futures.py`: a job makes its data
//!   from a seed and returns its SHA-256 as hex.
//! * [`executors`]: one batch on `seq`, `threads` or `procs`, results taken as
//!   completed (the book's `submit` + `as_completed` loop), for any kind of job.
//! * [`sweep`] and [`plot`]: Table 17-1 as a Markdown table, a CSV file and an
//!   SVG plot of the speedups.
//! * [`cli`]: the three command lines and the programs, as testable functions.
//!
//! ## Example
//!
//! ```
//! use crypto::executors::{run, ExecutorKind, RunConfig};
//! use crypto::jobs::job_specs;
//!
//! // The book's 12 job sizes around 8 KiB, on a pool of two threads.
//! let config = RunConfig {
//!     executor: ExecutorKind::Threads,
//!     workers: 2,
//!     specs: job_specs(12, 8 * 1024, 2015),
//!     ship_data: false,
//!     trace: None,
//! };
//! let mut printed = Vec::new();
//! let report = run(&config, |done| printed.push(crypto::jobs::format_kb(done.size))).unwrap();
//! assert_eq!(report.results.len(), 12);
//! assert!(printed.contains(&"12.0 KB".to_string())); // the largest job, 1.5x
//! assert_eq!(report.workers, 2);
//! ```

#![warn(missing_docs)]

pub mod celery_jobs;
pub mod cli;
pub mod ctr;
pub mod executors;
pub mod jobs;
pub mod plot;
pub mod sha256;
pub mod sha_jobs;
pub mod sweep;
