//! A Celery executor: Python's Celery task protocol (version 2) over a real
//! Redis, so that Rust code can submit tasks to Python or Rust workers and
//! Python code can submit tasks to Rust workers, with results in Celery's
//! Redis result backend.
//!
//! * [`CeleryExecutor`] is the client: `submit`/`submit_named` push a task
//!   message on a queue and return the same [`future::Future`] our thread
//!   and process pools return, completed by one listener thread per
//!   executor when the worker PUBLISHes the result.
//! * It implements [`executor::Executor`], so generic code written for our
//!   pools runs on Celery workers unchanged (tasks must be registered).
//! * [`Worker`] (and the `celery-worker` binary) consumes queues and runs
//!   the tasks of a [`Registry`] on its own runner threads or in worker processes, acking late.
//!
//! Everything speaks RESP over `std::net::TcpStream` ([`resp`]): no async
//! runtime, no Redis client crate. `docs/cluster.md` says why, and how to
//! run workers on several machines.
//!
//! ```no_run
//! use celery::{CeleryExecutor, Registry};
//!
//! fn add((a, b): (i64, i64)) -> i64 { a + b }
//!
//! let mut tasks = Registry::new();
//! tasks.register("rust.add", add);
//! let ex = CeleryExecutor::builder("redis://127.0.0.1:6379/0").registry(tasks).connect()?;
//! let sum = ex.submit(add, (2, 3))?;                       // a Rust worker runs it
//! let py = ex.submit_named::<_, i64>("tasks.add", (2, 3))?; // a Python worker runs it
//! assert_eq!(sum.result()? + py.result()?, 10);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod base64;
pub mod bench;
pub mod canvas;
pub mod chord;
mod cli;
pub mod connection_pool;
pub mod control;
mod error;
mod executor;
mod executor_trait;
pub mod id;
pub mod json;
pub mod lease;
pub mod limits;
pub mod message;
pub mod meta;
mod procs;
mod registry;
pub mod resp;
pub mod schedule;
mod stop;
mod task_costs;
pub mod task_figures;
pub mod tasks;
mod terminate;
pub mod testing;
mod url;
mod worker;

pub use cli::worker_main;
pub use error::CeleryError;
pub use executor::{Builder, CeleryExecutor};
pub use limits::soft_time_limit_exceeded;
pub use message::TaskMessage;
pub use procs::{
    dispatch, ignore_interrupts, install_process_registry, process_registry, WireFailure,
};
pub use registry::{decode_args, Handler, Registry, TypeError};
pub use stop::StopHandle;
pub use terminate::TerminatedByRequest;
pub use url::RedisUrl;
pub use worker::{
    restore_unacked, ColdShutdown, PoolKind, Worker, WorkerConfig, WorkerStats, MAX_CONCURRENCY,
};
