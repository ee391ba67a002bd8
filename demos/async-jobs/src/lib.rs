//! # `async-jobs`: an async loop that awaits CPU-bound jobs on our pools
//!
//! The Rust twin of the spirit of the book's `flags2_asyncio_executor.py`
//! (2nd edition): async code that hands work it must not do on the event
//! loop to an executor and awaits it. Here the work is CPU-bound (rendering
//! and checksumming flags, [`jobs`]), the executor is our process pool (or
//! thread pool), and the event loop is a single-threaded tokio runtime that
//! keeps printing progress while the jobs run ([`supervisor`]).
//!
//! What it shows:
//! * a `future::Future` from either pool is awaited directly (`future.await`):
//!   Python's `asyncio.wrap_future` / `loop.run_in_executor`;
//! * `future::as_completed_stream` yields them in completion order, as
//!   `asyncio.as_completed` does, next to a timer in one `select!`;
//! * the event loop thread never blocks: it sleeps until a job is done or a
//!   progress line is due.
//!
//! ```text
//! $ cargo run --release --bin async-jobs -- -v BR JP --fail JP
//! Rendering 2 flags on 2 worker processes: from BR to JP
//! [  0.00s] 0/2 done, 0 running, 2 queued
//! JP error: the renderer refused JP (asked to with --fail)
//! ...
//! ```

pub mod cli;
pub mod jobs;
pub mod supervisor;
