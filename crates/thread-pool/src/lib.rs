//! # `thread-pool`: Python's `ThreadPoolExecutor`, on raw threads
//!
//! A pool of named worker threads that runs closures and hands back a
//! [`future::Future`] for each, with the semantics of CPython's
//! `concurrent.futures.ThreadPoolExecutor`: lazily started workers that are
//! reused when idle, `submit`, `shutdown(wait,
//! cancel_futures)`, an initializer whose failure breaks the pool, `map`
//! in input order with 3.14's rules (eager by default, a bounded window on
//! request). Beyond
//! Python: real chunks for `map`, a bounded
//! queue with back-pressure (`try_submit` hands the task back), an idle
//! timeout, scoped tasks that borrow from the stack, and [`Stats`].
//!
//! ## Who owns what
//!
//! ```text
//!  submitting threads          the pool: one Arc<Shared> (shared.rs)          worker threads
//!  ------------------          -------------------------------------          --------------
//!  ThreadPoolExecutor          gate: RwLock<Life> (life.rs)                   "{prefix}-{n}", at most
//!  (executor.rs)               Open -> ShuttingDown / Terminating / Broken    max_workers, started on
//!    |                                                                        demand (worker.rs)
//!    | submit(f):                                                                  |
//!    |  1. promise() -> (Promise, Future)                                          |
//!    |  2. gate held shared: push   ---->  queue (queue.rs): FIFO of RawJob  ----pop-+
//!    |     the job (f + Promise)           (raw.rs, job.rs), many producers,       |
//!    |                                     many consumers                          | run f under
//!    |  3. wake a sleeper or start  ---->  sleep (sleep.rs): idle counts,   <-park--+ catch_unwind,
//!    |     a worker                        beds + bell (the park protocol)         | complete the
//!    |                                     registry: JoinHandles, counters         | Promise, run its
//!    |                                     (stats.rs), joined by shutdown          | callbacks
//!    v                                                                             v
//!  Future<T>  <======  the future crate's slot: outcome, waiters, callbacks  <======  Promise<T>
//! ```
//!
//! The handle owns the `Arc<Shared>` (dropping it is `shutdown(wait = true)`);
//! every worker owns a clone of it until it exits; the queue owns each job
//! from push to pop, and the worker owns it from pop to the end of the
//! task. A running `map` also holds queued work of its own, outside the
//! queue (`map.rs`, `adaptive.rs`).
//!
//! ## How it works
//!
//! * **One queue.** Submitters push tasks into one lock-free FIFO (a
//!   preallocated crossbeam ring, with an unbounded overflow); workers pop
//!   from it (`queue.rs`). A small task is stored in its queue slot itself,
//!   with no allocation of its own (`raw.rs`).
//! * **Workers on demand.** A submit starts a worker only when no worker is
//!   idle and fewer than `max_workers` run; an idle one is always reused
//!   first (`shared.rs`). A worker counts itself idle *before* it publishes a
//!   result, so sequential submit-then-wait keeps a single thread.
//! * **Spin, then park.** A worker that finds the queue empty spins and
//!   yields for a few tens of microseconds (`backoff.rs`), then parks on a condition
//!   variable. Submitters skip the wake-up while any worker is searching;
//!   otherwise they post a wake-up token. A fence-and-recheck protocol
//!   guarantees no wake-up is lost (`sleep.rs`, argued in full there and in
//!   `docs/thread-pool.md`). No polling loops, no sleeps.
//! * **Paced looks.** While submitters stream tasks faster than they wait
//!   for them, a searching worker waits a little longer before looking at
//!   an empty queue again, so it stops pulling the queue's cache lines away
//!   from the submitter on every push (`pacing.rs`); a caller that waits
//!   for each result keeps the shortest wait.
//! * **Interrupting a running task is cooperative.** A thread cannot be
//!   killed safely, so a task submitted with
//!   [`submit_interruptible`](ThreadPoolExecutor::submit_interruptible)
//!   gets an [`InterruptToken`] that `interrupt(&future)` sets; the task
//!   checks it or sleeps on it (`interrupt.rs`).
//! * **Panics stay in their task.** A task runs under `catch_unwind`; a
//!   panic finishes its future with [`TaskError::Panicked`] and the worker
//!   goes on. A panic that escapes a task's bookkeeping (a panicking drop of
//!   a cancelled closure or of a result nobody holds, a panicking
//!   callback-panic hook) is caught too and reported on stderr; the worker
//!   keeps its thread and its place in the counts (`worker.rs`, with
//!   `future::contain`).
//! * **Callbacks are user code.** A worker running a future's
//!   done-callbacks counts as busy, so a callback may submit to the pool
//!   and wait for the result.
//! * **Shutdown** moves the pool's life cycle out of `Open`
//!   under a gate that every submit passes through, so no task can slip in
//!   after it (`life.rs`); workers drain the queue (or the queued
//!   futures are cancelled) and exit, and `shutdown(wait = true)` joins them.
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use future::{wait, ReturnWhen, TaskError, FutureError};
//! use thread_pool::ThreadPoolExecutor;
//!
//! let pool = ThreadPoolExecutor::builder()
//!     .max_workers(4)
//!     .thread_name_prefix("demo")
//!     .build()
//!     .unwrap();
//!
//! // submit: one future per task.
//! let square = pool.submit(|| 7 * 7).unwrap();
//! assert_eq!(square.result().unwrap(), 49);
//!
//! // A task that fails, and one that panics, each fail only their own future.
//! let parsed = pool.submit_fallible(|| "x".parse::<u32>()).unwrap();
//! let panicked = pool.submit(|| -> u32 { panic!("boom") }).unwrap();
//! let done = wait([&parsed, &panicked], Some(Duration::from_secs(10)), ReturnWhen::AllCompleted);
//! assert_eq!(done.done.len(), 2);
//! assert!(matches!(parsed.result(), Err(FutureError::Task(TaskError::Failed(_)))));
//! assert!(matches!(panicked.result(), Err(FutureError::Task(TaskError::Panicked(m))) if m == "boom"));
//!
//! // map: every item submitted at the call (Python 3.14), results in input
//! // order; `map_with(.., MapOptions::new().window(n))` is the lazy mode.
//! let lengths: Vec<usize> = pool
//!     .map(|word: &str| word.len(), ["a", "bb", "ccc"])
//!     .unwrap()
//!     .map(Result::unwrap)
//!     .collect();
//! assert_eq!(lengths, [1, 2, 3]);
//!
//! // scope: tasks may borrow from the stack.
//! let data = vec![1, 2, 3, 4];
//! let sum: i32 = pool.scope(|s| {
//!     let halves = data.chunks(2).map(|c| s.submit(move || c.iter().sum::<i32>()).unwrap());
//!     halves.collect::<Vec<_>>().into_iter().map(|f| f.into_result().unwrap()).sum()
//! });
//! assert_eq!(sum, 10);
//!
//! pool.shutdown(true, false);
//! assert!(pool.submit(|| ()).is_err());
//! ```

#![warn(missing_docs)]

mod adaptive;
mod asymmetric;
mod backoff;
mod builder;
mod error;
mod executor;
mod interrupt;
mod items;
mod job;
mod life;
mod map;
mod pacing;
mod published;
mod queue;
mod raw;
mod scope;
mod shared;
mod sleep;
mod slots;
mod stats;
mod sync;
mod trace;
mod worker;

pub use builder::{default_max_workers, Builder};
pub use error::{BuildError, MapShutDown, SubmitError, TrySubmitError};
pub use executor::ThreadPoolExecutor;
pub use interrupt::{InterruptToken, Interrupted, NotInterruptible};
pub use map::{Map, MapOptions};
pub use scope::Scope;
pub use stats::Stats;

#[doc(no_inline)]
pub use future::{Future, FutureError, TaskError};
