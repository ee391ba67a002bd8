//! # `executor-map`: the book's "loiter" demo of `Executor.map`
//!
//! Fluent Python's `demo_executor_map.py` submits five tasks that sleep 0 to 4
//! seconds to a pool of three threads with `executor.map`, and prints
//! timestamped lines as tasks start and end and as results arrive. The lesson:
//! `map` hands results back **in input order**, so `result 1` waits for
//! `loiter(1)` even when other tasks have finished, while the tasks themselves
//! run and finish in whatever order the workers take them.
//!
//! ```text
//! [15:56:50] Script starting.
//! [15:56:50] loiter(0): doing nothing for 0s...
//! [15:56:50] loiter(0): done.
//! [15:56:50]      loiter(1): doing nothing for 1s...
//! ...
//! [15:56:50] result 0: 0
//! [15:56:51]      loiter(1): done.
//! [15:56:51] result 1: 10
//! ...
//! [15:56:55] result 4: 40
//! ```
//!
//! ## How it is built
//!
//! * [`display`]: `[HH:MM:SS] message` lines, printed whole or captured.
//! * [`loiter`]: the task, indented by its number.
//! * [`demos`]: [`map_demo`] (the book's) and [`submit_demo`] (the attic's
//!   `demo_executor_submit.py`: futures and their `done()` flags), on our
//!   `thread_pool::ThreadPoolExecutor`.
//! * [`cli`]: `--unit-ms` (default 1000, the book's second), `--workers`, `--tasks`.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use executor_map::{map_demo, DemoConfig, Display};
//!
//! let display = Display::capture();
//! let config = DemoConfig { unit: Duration::from_millis(5), ..DemoConfig::default() };
//! let results = map_demo(&config, &display).unwrap();
//! assert_eq!(results, [0, 10, 20, 30, 40]);
//! assert!(display.lines().last().unwrap().ends_with("] result 4: 40"));
//! ```

#![warn(missing_docs)]

pub mod cli;
pub mod demos;
pub mod display;
pub mod loiter;

pub use demos::{
    map_demo, map_demo_traced, submit_demo, submit_demo_traced, DemoConfig, DemoError,
};
pub use display::Display;
