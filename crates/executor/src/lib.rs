//! # `executor`: one `Executor` trait for every executor
//!
//! Python's `concurrent.futures` is one package: the abstract `Executor`
//! and its two implementations, `ThreadPoolExecutor` and
//! `ProcessPoolExecutor`, interchangeable so that moving a program from
//! threads to processes is a one-line change. This crate is that package:
//! the [`Executor`] trait, its implementations for our two pools and for
//! an [`InlineExecutor`] that runs each task in the caller's thread (the
//! sequential baseline), and the three types re-exported side by side.
//!
//! ## How it works
//!
//! * A task is a plain `fn(A) -> R` and one argument, where `A` and `R`
//!   are [`Payload`]s (`Serialize + DeserializeOwned + Send + 'static`):
//!   the intersection of what a thread pool (moves values to a thread), a
//!   process pool (sends them down a pipe) and a Celery executor (sends
//!   them to a broker, running tasks by name) can take.
//! * Every executor hands out the same [`future::Future`], so `wait`,
//!   `as_completed` and done-callbacks work over futures from several
//!   executors at once.
//! * `map` has Python 3.14's meaning everywhere: every item submitted at
//!   the call, results in input order, one `Result` per item, and a dropped
//!   result iterator cancels what has not started.
//! * A refusal is one [`ExecutorError`]: a [`ErrorKind`] to match on, and
//!   the executor's own error and message inside.
//! * The pools keep their richer inherent APIs (closures and `scope` on
//!   threads; chunked `map`, task timeouts and `terminate_workers` on
//!   processes). Because Rust picks an inherent method over a trait method
//!   of the same name, call the trait's on a concrete pool as
//!   `Executor::submit(&pool, f, x)`; generic code needs nothing special.
//!
//! The design, and a side-by-side with Python's `Executor`, is in
//! `docs/executor.md`.
//!
//! ## Example
//!
//! The same generic function on all three executors:
//!
//! ```
//! use std::time::Duration;
//! use executor::{Executor, InlineExecutor, ProcessPoolExecutor, ThreadPoolExecutor};
//! use future::{as_completed, FutureError, TaskError};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
//!     s.parse()
//! }
//!
//! /// Sums squares with `submit` + `as_completed` and with `map`, whatever
//! /// the executor.
//! fn sum_of_squares(executor: &impl Executor, n: u64) -> (u64, u64) {
//!     let futures: Vec<_> = (1..=n).map(|x| executor.submit(square, x).unwrap()).collect();
//!     let submitted = as_completed(&futures, Some(Duration::from_secs(60)))
//!         .map(|done| done.unwrap().result().unwrap())
//!         .sum();
//!     let mapped = executor.map(square, 1..=n).unwrap().map(Result::unwrap).sum();
//!     (submitted, mapped)
//! }
//!
//! // First thing, while the program is single-threaded (the process pool
//! // forks its workers from this helper process).
//! process_pool::start_fork_server();
//!
//! let inline = InlineExecutor::new();
//! let threads = ThreadPoolExecutor::new(2);
//! let processes = ProcessPoolExecutor::new(2).unwrap();
//! assert_eq!(sum_of_squares(&inline, 10), (385, 385));
//! assert_eq!(sum_of_squares(&threads, 10), (385, 385));
//! assert_eq!(sum_of_squares(&processes, 10), (385, 385));
//!
//! // A task's error keeps its type name and message, on any executor.
//! let bad = Executor::submit_fallible(&processes, parse, "x".to_string()).unwrap();
//! match bad.result() {
//!     Err(FutureError::Task(TaskError::Failed(e))) => assert_eq!(e.type_name(), "ParseIntError"),
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // After shutdown, every executor refuses work the same way.
//! Executor::shutdown(&threads, true, false);
//! let refused = Executor::submit(&threads, square, 3).unwrap_err();
//! assert_eq!(refused.kind(), executor::ErrorKind::Shutdown);
//! assert_eq!(refused.to_string(), "thread pool: cannot schedule new futures after shutdown");
//! ```

#![warn(missing_docs)]

mod error;
mod executor;
mod inline;
mod map;
mod pools;

pub use crate::error::{ErrorKind, ExecutorError};
pub use crate::executor::{Executor, Payload};
pub use crate::inline::InlineExecutor;
pub use future::Interrupt;
pub use process_pool::ProcessPoolExecutor;
pub use thread_pool::ThreadPoolExecutor;
