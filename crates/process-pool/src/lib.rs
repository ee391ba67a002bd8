//! # `process-pool`: CPython's `ProcessPoolExecutor` on fork() and pipes
//!
//! A pool of worker *processes* that run plain functions and hand back
//! [`future::Future`]s: CPU-bound work uses every core, and a task that
//! crashes its process (a segfault, `abort`, `exit`, the OOM killer's
//! SIGKILL) costs only that task: the pool fails its future with an error
//! naming the signal or exit code, forks a replacement and goes on. (Python
//! marks the whole pool broken instead; [`WorkerDeath::BreakPool`] offers
//! that for parity.)
//!
//! ## Who owns what
//!
//! ```text
//!  the program's process                                 | processes
//!                                                        |
//!  caller's thread    the pool's state (one Mutex)       |
//!  submit(f, x) ----> PoolState { life, tasks, .. }      |
//!   encodes the         | rings the doorbell (eventfd)   |
//!   TASK frame          v                                |
//!                     dispatcher thread: one poll() over | fork server (forked
//!                     every pipe end, all non-blocking --+-> while single-
//!                       |    SPAWN / KILL on a socket    |   threaded)
//!                       |                                |     | fork
//!                       |--- task pipe: TASK frames -----+-> worker 1..N:
//!                       |<-- result pipe: RESULT frames -+-- decode, run f(x),
//!                       |<-> descriptor socket (SharedBytes)  encode
//!                       |<-- status pipe: exit status ---+-- fork server
//!                       v                                |   (it reaps them)
//!  Future <-- completed by the dispatcher; done-callbacks run on the
//!             pool's callback thread, never on the dispatcher
//! ```
//!
//! One shortcut: on an idle pool, `submit` writes a small task straight
//! into an idle worker's task pipe, lent by the sleeping dispatcher
//! (`parent::dispatcher::handoff`). The code is grouped by side: `parent`
//! (the handle, the shared state, the dispatcher), `wire` (what crosses:
//! frames, values, costs, descriptors), `child` (the fork server and the
//! worker's loop).
//!
//! ## How it works
//!
//! * **Fork server** ([`start_fork_server`], module `child::fork_server`): a
//!   single-threaded helper process, forked while the program is still
//!   single-threaded, forks every worker on request. No worker is ever
//!   forked from a multi-threaded process, so none inherits a lock that
//!   another thread held. It reaps every worker and reports its exit status.
//! * **Tasks are `fn` pointers** (module `wire::codec`): workers run the same
//!   program image, so a function's address is valid in them. A task
//!   travels as that address, the address of a trampoline monomorphised for
//!   its types, and its argument encoded with serde + postcard.
//! * **Frames** (module `wire::frame`): length-prefixed messages on a pair of
//!   pipes per worker; a malformed frame is an error naming the worker.
//! * **One poll loop** (module `parent::dispatcher`): one thread per pool
//!   owns all pipe ends, non-blocking, and `poll()`s them with an eventfd
//!   doorbell, so big arguments and big results flowing at once can never
//!   deadlock.
//! * **Fast paths**: a small task on an idle pool is written straight into
//!   an idle worker's pipe by `submit` (module `parent::dispatcher::handoff`);
//!   workers with short tasks hold several at once
//!   (`parent::dispatcher::pipeline`);
//!   big results are streamed into the pipe by workers, with no extra copy.
//! * **Zero-copy payloads** ([`SharedBytes`], modules `wire::shared_bytes`,
//!   `wire::fd_passing`): an immutable buffer in a sealed memfd crosses as
//!   a file descriptor over a per-worker socket beside the pipes, and is
//!   mapped, not copied.
//! * **Dead workers**: end-of-file on a worker's pipe plus its exit status
//!   from the fork server fail the task it ran with [`WorkerDied`]; tasks it
//!   had not started are re-queued; a new worker is forked on demand.
//! * **Stopping at once**: `terminate_workers` / `kill_workers` (Python
//!   3.14) shut the pool down and have the fork server signal every worker;
//!   the tasks they held fail with [`WorkerTerminated`].
//! * **Stopping one task** (beyond Python): `interrupt(&future)` cancels it
//!   if it has not started; if it runs, its worker gets SIGTERM, then
//!   SIGKILL after [`Builder::interrupt_grace`], and is replaced; the task
//!   fails with [`TerminatedByRequest`] (module
//!   `parent::dispatcher::interrupt`).
//! * **The cause and cost of a task** (module `wire::cost`): every future carries
//!   a `TaskReport` (`future.report()`): the worker's pid, the task's
//!   position on it, its queue wait and run time, measured in the worker,
//!   and with `Builder::report_usage` its CPU times and the worker's peak
//!   RSS; a task whose worker died says how. `Builder::max_memory_per_child`
//!   retires a worker whose peak passed a limit after a task.
//!
//! The full design, with the fork-safety argument, is in
//! `docs/process-pool.md`.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use process_pool::{ProcessPoolExecutor, WorkerDied};
//! use future::TaskError;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn crash(_: ()) -> u64 {
//!     std::process::abort()
//! }
//!
//! fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
//!     s.parse()
//! }
//!
//! // First thing, while the program is single-threaded.
//! process_pool::start_fork_server();
//!
//! let pool = ProcessPoolExecutor::new(2).unwrap();
//! let fut = pool.submit(square, 7).unwrap();
//! assert_eq!(fut.result_timeout(Duration::from_secs(30)).unwrap(), 49);
//!
//! // A task's own error keeps its type name and message.
//! let bad = pool.submit_fallible(parse, "x".to_string()).unwrap();
//! let err = bad.exception_timeout(Duration::from_secs(30)).unwrap().unwrap();
//! assert_eq!(err.name(), "ParseIntError");
//!
//! // A crash fails only its own task; the pool forks a new worker.
//! let boom = pool.submit(crash, ()).unwrap();
//! match boom.exception_timeout(Duration::from_secs(30)).unwrap() {
//!     Some(TaskError::Executor(e)) => {
//!         let died = e.downcast_ref::<WorkerDied>().unwrap();
//!         assert_eq!(died.cause.signal_name(), Some("SIGABRT"));
//!     }
//!     other => panic!("unexpected outcome {other:?}"),
//! }
//!
//! // map: ordered, chunked; every chunk is submitted at the call (Python
//! // 3.14); map_windowed(f, items, chunksize, window) is the lazy mode.
//! // map_auto picks the chunk size from the number of items and workers.
//! let squares: Vec<u64> = pool
//!     .map_auto(square, 0..1000u64)
//!     .unwrap()
//!     .map(|r| r.unwrap())
//!     .collect();
//! assert_eq!(squares[999], 999 * 999);
//!
//! pool.shutdown(true, false); // also what dropping the pool does
//! ```

#![warn(missing_docs)]

mod child;
mod error;
#[doc(hidden)]
pub mod fuzz_api;
mod parent;
mod sys;
mod wire;

pub use child::fork_server::{
    fork_server_info, start_fork_server, start_fork_server_late, try_start_fork_server,
    ForkServerInfo,
};
pub use error::{
    BuildError, CodecError, CodecStage, ExitCause, ForkServerError, MapShutDown, ProtocolError,
    SpawnFailed, SubmitError, TaskTimedOut, TerminatedByRequest, WorkerDied, WorkerTerminated,
};
pub use parent::auto_chunk::{auto_chunksize, AUTO_CHUNKS_PER_WORKER, AUTO_MAX_CHUNK};
pub use parent::executor::{Builder, ProcessPoolExecutor, DEFAULT_INTERRUPT_GRACE};
pub use parent::map::Map;
pub use parent::shared::WorkerDeath;
pub use parent::stats::{Stats, WorkerExits};
pub use sys::thread_count;
pub use wire::frame::{FrameError, DEFAULT_MAX_FRAME};
pub use wire::shared_bytes::SharedBytes;
