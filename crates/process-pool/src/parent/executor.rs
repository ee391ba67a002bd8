//! `ProcessPoolExecutor`: the public handle, its builder, `submit`,
//! `shutdown`.
//!
//! `submit` does the per-task work on the caller's thread: it creates the
//! promise/future pair, encodes the argument straight into the task's frame
//! (one allocation, no copy later), and pushes the task onto the queue. The
//! dispatcher thread (see `dispatcher`) does everything that touches a
//! worker.

use std::panic::{catch_unwind, AssertUnwindSafe};
// Relaxed: task ids need only be unique, and the statistics counters are
// independent diagnostics (see the `stats` module).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use future::{panic_message, CallbackRunner, Future, Interrupt};
use nix::sys::signal::Signal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::child::fork_server;
use crate::error::{BuildError, CodecStage, SubmitError};
use crate::parent::dispatcher::{
    hand_off, Config, Dispatcher, PoolState, Shared, WorkerDeath, HANDOFF_MAX_FRAME,
};
use crate::parent::map::Map;
use crate::parent::stats::{Counters, Stats};
use crate::parent::task::{codec_error, Sink, Task, TypedSink};
use crate::parent::trace_sink::TracedSink;
use crate::sys;
use crate::wire::codec::{self, Trampoline};
use crate::wire::cost;
use crate::wire::fd_passing;
use crate::wire::frame::{self, DEFAULT_MAX_FRAME};

/// A pool of worker processes that run plain functions and hand back
/// [`Future`]s. See the crate docs for the design.
pub struct ProcessPoolExecutor {
    shared: Arc<Shared>,
    /// The dispatcher thread, until a waited shutdown joined it. The lock is
    /// held while joining, so every other waited shutdown waits for that.
    dispatcher: Mutex<Option<JoinHandle<()>>>,
    dispatcher_id: thread::ThreadId,
}

/// The default time between the SIGTERM and the SIGKILL of
/// [`ProcessPoolExecutor::interrupt`]; the argument for it is in the
/// module docs of `dispatcher::interrupt` and in `docs/process-pool.md`.
pub const DEFAULT_INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// Settings for a [`ProcessPoolExecutor`].
#[derive(Clone, Debug)]
pub struct Builder {
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config {
                max_workers: thread::available_parallelism().map_or(1, |n| n.get()),
                initializer: None,
                max_tasks_per_child: None,
                max_memory_per_child: None,
                report_usage: false,
                task_timeout: None,
                on_worker_death: WorkerDeath::Replace,
                tasks_per_worker: 2,
                adaptive_depth: true,
                max_frame: DEFAULT_MAX_FRAME,
                pipe_size: 1 << 20,
                trace: None,
                interrupt_grace: DEFAULT_INTERRUPT_GRACE,
            },
        }
    }
}

impl Builder {
    /// Worker processes at most (default: the number of cores, like Python's
    /// `os.process_cpu_count()`). Workers are forked on demand.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.config.max_workers = n;
        self
    }

    /// A function each worker runs once before its first task. If it panics,
    /// the pool is broken (Python: `BrokenProcessPool`).
    pub fn initializer(mut self, f: fn()) -> Self {
        self.config.initializer = Some(f);
        self
    }

    /// Retire a worker (and fork a fresh one) after it ran `n` tasks.
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.config.max_tasks_per_child = Some(n);
        self
    }

    /// Measure each task's user and system CPU time and its worker's peak
    /// RSS, for `Future::report` and `stats()` (default: off). It costs two
    /// `getrusage` calls per task in the worker (about 4 µs on a loaded VM,
    /// as much as a tiny task's whole trip through the pool); the worker
    /// pid, the position, the queue wait and the run time are always
    /// reported (two vDSO clock reads). `max_memory_per_child` turns it on.
    pub fn report_usage(mut self, on: bool) -> Self {
        self.config.report_usage = on;
        self
    }

    /// Retire a worker (and fork a fresh one) once its peak resident set
    /// size passed `bytes` after a task: billiard's and loky's
    /// `max_memory_per_child`. The task that passed the limit keeps its
    /// result (the worker is measured after the task, and exits only when
    /// the tasks already in its pipe are done); the next tasks run on a
    /// fresh worker. The peak is the worker's `ru_maxrss`, as billiard
    /// reads it.
    pub fn max_memory_per_child(mut self, bytes: u64) -> Self {
        self.config.max_memory_per_child = Some(bytes);
        self
    }

    /// Kill a worker whose task runs longer than `d`; the task's future
    /// fails with `TaskTimedOut` and a new worker is forked.
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.config.task_timeout = Some(d);
        self
    }

    /// What a worker's unexpected death does to the pool (default: replace it).
    pub fn on_worker_death(mut self, policy: WorkerDeath) -> Self {
        self.config.on_worker_death = policy;
        self
    }

    /// How many tasks a busy worker may hold at once: exactly `n`.
    ///
    /// By default a worker holds 2 (the one it runs and the next), and
    /// workers whose tasks are short get more on their own: as many as they
    /// run in about 2 ms, at most 32, which is what makes floods of tiny
    /// tasks fast. Setting this turns that off: use 1 for long tasks of very
    /// different lengths, so that each goes to whichever worker frees first.
    /// Tasks handed to a worker can no longer be cancelled.
    pub fn tasks_per_worker(mut self, n: usize) -> Self {
        self.config.tasks_per_worker = n;
        self.config.adaptive_depth = false;
        self
    }

    /// How long [`interrupt`](ProcessPoolExecutor::interrupt) lets a worker
    /// live after SIGTERM before it sends SIGKILL (default
    /// [`DEFAULT_INTERRUPT_GRACE`], 5 s). Only a task that caught SIGTERM
    /// uses it; zero sends SIGKILL at once; a duration too large for the
    /// clock (`Duration::MAX`) never escalates.
    pub fn interrupt_grace(mut self, grace: Duration) -> Self {
        self.config.interrupt_grace = grace;
        self
    }

    /// The largest frame (argument or result) in bytes (default 1 GiB).
    pub fn max_frame_bytes(mut self, n: usize) -> Self {
        self.config.max_frame = n.min(u32::MAX as usize);
        self
    }

    /// The pipe buffer size asked of the kernel for each worker pipe
    /// (default 1 MiB; 0 leaves the kernel's default).
    pub fn pipe_size(mut self, n: usize) -> Self {
        self.config.pipe_size = n;
        self
    }

    /// Records every task's transitions (submitted; handed to which worker
    /// process; finished or failed) in `recorder`, for a picture of the
    /// schedule (`future::trace`). A `map` chunk is one task. Default:
    /// nothing recorded.
    pub fn trace(mut self, recorder: future::trace::Recorder) -> Self {
        self.config.trace = Some(recorder);
        self
    }

    /// Starts the pool (and the fork server, if it is not running yet).
    pub fn build(self) -> Result<ProcessPoolExecutor, BuildError> {
        let config = self.config;
        if config.max_workers == 0 {
            return Err(BuildError::ZeroWorkers);
        }
        if config.max_tasks_per_child == Some(0) {
            return Err(BuildError::ZeroMaxTasksPerChild);
        }
        if config.max_memory_per_child == Some(0) {
            return Err(BuildError::ZeroMaxMemoryPerChild);
        }
        if config.tasks_per_worker == 0 {
            return Err(BuildError::ZeroTasksPerWorker);
        }
        fork_server::server()?;
        let doorbell = sys::eventfd().map_err(|e| BuildError::Io(format!("eventfd: {e}")))?;
        let config_allows_handoff = config.task_timeout.is_none() && sys::sigpipe_ignored();
        let shared = Arc::new(Shared {
            state: Mutex::new(PoolState {
                dispatcher_waiting: true,
                ..PoolState::default()
            }),
            doorbell,
            config,
            counters: Counters::default(),
            next_id: AtomicU64::new(1),
            spare: Mutex::new(Vec::new()),
            handoff_allowed: config_allows_handoff,
            callbacks: Arc::new(CallbackRunner::new("process-pool-callbacks")),
        });
        let dispatcher = Dispatcher::new(Arc::clone(&shared));
        let handle = thread::Builder::new()
            .name("process-pool".into())
            .spawn(move || dispatcher.run())
            .map_err(|e| BuildError::Io(format!("dispatcher thread: {e}")))?;
        Ok(ProcessPoolExecutor {
            shared,
            dispatcher_id: handle.thread().id(),
            dispatcher: Mutex::new(Some(handle)),
        })
    }
}

impl ProcessPoolExecutor {
    /// A pool of at most `max_workers` processes, other settings default.
    pub fn new(max_workers: usize) -> Result<Self, BuildError> {
        Self::builder().max_workers(max_workers).build()
    }

    /// A builder for the other settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The most worker processes this pool runs at once.
    pub fn max_workers(&self) -> usize {
        self.shared.config.max_workers
    }

    /// Runs `f(arg)` in a worker process.
    ///
    /// `f` must be a plain function (not a closure): workers are forks of
    /// this program, so its address is valid there. `arg` and the result
    /// cross the pipe encoded with serde. Errors in encoding `arg` fail the
    /// returned future (Python's `PicklingError`), not this call.
    pub fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_raw(codec::run_plain::<A, R>, f as usize, &arg)
    }

    /// Runs a fallible `f(arg)` in a worker process; `Err(e)` fails the
    /// future with `TaskError::Failed`, keeping `e`'s type name and message
    /// (the error value itself stays in the worker).
    pub fn submit_fallible<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.submit_raw(codec::run_fallible::<A, R, E>, f as usize, &arg)
    }

    /// Applies `f` to every item in worker processes, `chunksize` items per
    /// task, yielding results in input order. Python 3.14's
    /// `Executor.map(fn, items, chunksize=)`: every chunk is submitted
    /// before this returns, so a later `shutdown` (waited or not, without
    /// `cancel_futures`) runs all of them and the iterator yields every
    /// result. The input is consumed here: for a long or endless input use
    /// [`map_windowed`](Self::map_windowed). Add
    /// [`Map::timeout`](crate::Map::timeout) for Python's `timeout`. What a
    /// dropped iterator cancels: see [`Map`](crate::Map)'s module docs.
    pub fn map<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
    ) -> Result<Map<'_, A, R, I::IntoIter>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        if chunksize == 0 {
            return Err(SubmitError::ZeroChunksize);
        }
        self.check_open()?;
        Map::new(self, f, items.into_iter(), chunksize, None)
    }

    /// [`map`](Self::map) with the chunk size picked for the caller:
    /// [`auto_chunksize`](crate::auto_chunksize)`(items, max_workers)`,
    /// about 4 chunks per worker, between 1 and 65,536 items. Cheap items
    /// travel many to a task; slow ones (as few as `4 * max_workers`) one
    /// to a task, so they all run at once. Python 3.14's rules as `map`:
    /// the input is counted and every chunk submitted before this returns.
    /// The policy and its argument: `docs/process-pool.md`, "`map_auto`".
    pub fn map_auto<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<Map<'_, A, R, std::vec::IntoIter<A>>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.check_open()?;
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = crate::auto_chunksize(items.len(), self.max_workers());
        Map::new(self, f, items.into_iter(), chunksize, None)
    }

    /// [`map`](Self::map) with a bounded window, Python 3.14's
    /// `buffersize`: at most `window` chunks (0 counts as 1) are submitted
    /// and not yet taken by the iterator, so memory stays bounded however
    /// long `items` is (an endless iterator works). The first `window`
    /// chunks are submitted here, the next one each time a chunk has been
    /// waited for. Chunks not submitted when the pool is shut down never
    /// run: the iterator yields the submitted ones, then one
    /// [`MapShutDown`](crate::MapShutDown) error, then ends.
    pub fn map_windowed<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
        chunksize: usize,
        window: usize,
    ) -> Result<Map<'_, A, R, I::IntoIter>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        if chunksize == 0 {
            return Err(SubmitError::ZeroChunksize);
        }
        self.check_open()?;
        Map::new(self, f, items.into_iter(), chunksize, Some(window))
    }

    /// Submits a `map` chunk.
    pub(crate) fn submit_chunk<A, R>(
        &self,
        f: fn(A) -> R,
        chunk: &Vec<A>,
    ) -> Result<Future<Vec<R>>, SubmitError>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_raw(codec::run_chunk::<A, R>, f as usize, chunk)
    }

    fn check_open(&self) -> Result<(), SubmitError> {
        self.shared.lock().life.check_open()
    }

    /// Builds the task frame and queues it.
    fn submit_raw<A, R>(
        &self,
        trampoline: Trampoline,
        f: usize,
        arg: &A,
    ) -> Result<Future<R>, SubmitError>
    where
        A: Serialize + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let id = self.shared.next_id.fetch_add(1, Relaxed); // Relaxed: only uniqueness matters
        let enqueued_ns = cost::monotonic_nanos(); // the queue wait starts here
        let config = &self.shared.config;
        let measure = if config.report_usage || config.max_memory_per_child.is_some() {
            cost::MEASURE_BIT
        } else {
            0
        };
        let mut frame = self.shared.recycled_buffer();
        let start = frame::begin_frame(&mut frame, frame::TASK);
        frame.extend_from_slice(&(id | measure).to_le_bytes());
        frame.extend_from_slice(&(trampoline as usize as u64).to_le_bytes());
        frame.extend_from_slice(&(f as u64).to_le_bytes());
        // SharedBytes in the argument attach their descriptors (`fd_passing`).
        let (encoded, fds) = fd_passing::collect(|| {
            catch_unwind(AssertUnwindSafe(|| codec::encode(arg, &mut frame)))
        });
        if !fds.is_empty() {
            let at = start + frame::HEADER_LEN;
            frame[at..at + 8].copy_from_slice(&(id | measure | fd_passing::FDS_BIT).to_le_bytes());
        }
        let encoded = match encoded {
            Ok(Ok(())) => frame::finish_frame(&mut frame, start, self.shared.config.max_frame)
                .map_err(|e| format!("the encoded argument is too big: {e}")),
            Ok(Err(msg)) => Err(msg),
            Err(p) => Err(format!("panicked while encoding: {}", panic_message(&*p))),
        };
        let (promise, future) = future::promise::<R>();
        let trace = self.shared.config.trace.as_ref().map(|r| r.submitted());
        let mut q = self.shared.lock();
        q.life.check_open()?;
        match encoded {
            Ok(()) => {
                let mut task = Task {
                    id,
                    frame,
                    sink: traced(
                        Box::new(TypedSink {
                            promise,
                            callbacks: Arc::clone(&self.shared.callbacks),
                        }),
                        trace,
                    ),
                    running: false,
                    interrupt: false,
                    fds,
                    enqueued_ns,
                    position: 0,
                };
                if q.tasks.is_empty()
                    && task.frame.len() <= HANDOFF_MAX_FRAME
                    && task.fds.is_empty()
                {
                    task = match hand_off(&self.shared.counters, &mut q, task) {
                        Ok(()) => return Ok(future),
                        Err(task) => task,
                    };
                }
                q.tasks.push_back(task);
                let ring = std::mem::take(&mut q.dispatcher_waiting);
                drop(q);
                if ring {
                    self.shared.ring();
                }
            }
            Err(msg) => {
                drop(q);
                Counters::bump(&self.shared.counters.tasks_failed);
                let _ = promise.set_error(codec_error(CodecStage::EncodeArgs, msg));
                if let Some(trace) = trace {
                    trace.ended(false);
                }
            }
        }
        Ok(future)
    }

    /// Stops the pool: no new tasks are accepted. With `cancel_futures`,
    /// tasks still waiting in the queue are cancelled; tasks already handed
    /// to a worker finish. With `wait`, returns when every task finished and
    /// every worker process has exited and been reaped, and the done-callbacks
    /// of every completed task have run; every waited call does, not only
    /// the first. Python's `Executor.shutdown(wait, cancel_futures=...)`.
    /// Calling it again is harmless, and a done-callback may call it on its
    /// own pool (it does not wait for itself).
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<Task> = {
            let mut q = self.shared.lock();
            q.life.shut_down();
            if cancel_futures {
                // Tasks re-queued after their worker died are already
                // running and cannot be cancelled; they stay.
                let (running, pending): (Vec<Task>, Vec<Task>) =
                    q.tasks.drain(..).partition(|t| t.running);
                q.tasks.extend(running);
                pending
            } else {
                Vec::new()
            }
        };
        for task in cancelled {
            task.sink.cancel();
            Counters::bump(&self.shared.counters.tasks_cancelled);
        }
        self.shared.ring();
        if !wait || thread::current().id() == self.dispatcher_id {
            // (The dispatcher thread runs no callbacks, but a result's
            // Deserialize impl is user code: joining itself would deadlock.)
            return;
        }
        // Held while joining: a concurrent waited shutdown blocks here
        // until the dispatcher is gone, then finds `None`, so that every
        // waited call returns only after the workers are reaped.
        let mut dispatcher = self.dispatcher.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = dispatcher.take() {
            let _ = handle.join();
        }
        drop(dispatcher);
        // No completion can come after the dispatcher ended: let the
        // callback threads finish what they hold, and join them (all but
        // this one, when a callback shuts its own pool down).
        self.shared.callbacks.close_and_join();
    }

    /// Stops the pool at once (Python 3.14's `terminate_workers`): shuts it
    /// down with `cancel_futures`, then sends SIGTERM to every worker
    /// process. Tasks the workers held (running, or waiting in their pipes)
    /// fail with [`WorkerTerminated`](crate::WorkerTerminated); queued tasks
    /// are cancelled; nothing is replaced, and later submits return
    /// [`SubmitError::Shutdown`]. Returns without waiting (drop the pool or
    /// call `shutdown(true, ..)` to wait until every worker is reaped). A
    /// no-op beyond the shutdown if no worker was ever started; harmless on
    /// a broken pool. Workers start with SIGTERM at its default and
    /// unblocked even when the pool's process ignores or blocks it, but a
    /// worker whose task ignores SIGTERM (it installed a handler) keeps
    /// running; [`kill_workers`](Self::kill_workers) cannot be ignored.
    pub fn terminate_workers(&self) {
        self.force_shutdown(Signal::SIGTERM);
    }

    /// Like [`terminate_workers`](Self::terminate_workers), with SIGKILL
    /// (Python 3.14's `kill_workers`).
    pub fn kill_workers(&self) {
        self.force_shutdown(Signal::SIGKILL);
    }

    fn force_shutdown(&self, signal: Signal) {
        // One transition (Terminating is also shut down), so the dispatcher
        // never sees the request on a pool that is still open (it could
        // fork new workers).
        self.shared.lock().life.terminate(signal);
        self.shutdown(false, true);
    }

    /// The recorder of this pool's schedule, if it was built with one
    /// ([`Builder::trace`]).
    pub fn recorder(&self) -> Option<&future::trace::Recorder> {
        self.shared.config.trace.as_ref()
    }

    /// Stops one task, wherever it is (beyond Python, whose `cancel()` only
    /// stops a task that has not started and whose `terminate_workers()`
    /// stops the whole pool):
    ///
    /// * not started: cancelled, as [`Future::cancel`] does
    ///   ([`Interrupt::Cancelled`]);
    /// * finished: nothing ([`Interrupt::AlreadyDone`]);
    /// * running (or waiting in a worker's pipe): its worker gets SIGTERM,
    ///   then SIGKILL if it still lives after
    ///   [`Builder::interrupt_grace`]; the worker is replaced, the tasks
    ///   queued behind it run on other workers, and the future fails with
    ///   [`TerminatedByRequest`](crate::TerminatedByRequest), which names
    ///   the signal that took effect ([`Interrupt::Requested`], returned at
    ///   once: the steps run on the pool's thread). A result that arrives
    ///   before the signal lands is kept.
    ///
    /// A future this pool did not create is never found: nothing happens
    /// to it beyond the `cancel()` of the first case. The escalation and
    /// the grace period: `docs/process-pool.md`, "Interrupting a task".
    pub fn interrupt<R>(&self, future: &Future<R>) -> Interrupt {
        if future.cancel() {
            return Interrupt::Cancelled;
        }
        if future.done() {
            return Interrupt::AlreadyDone;
        }
        self.shared.lock().interrupts.push(future.id());
        self.shared.ring();
        Interrupt::Requested
    }

    /// A snapshot of the pool's counters.
    pub fn stats(&self) -> Stats {
        let queued = self.shared.lock().tasks.len() as u64;
        self.shared.counters.snapshot(queued)
    }
}

impl Drop for ProcessPoolExecutor {
    /// `shutdown(wait = true, cancel_futures = false)`, as Python's `with` block.
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl std::fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.shared.config.max_workers)
            .field("stats", &self.stats())
            .finish()
    }
}

/// `sink`, wrapped to record its task's transitions when the pool traces.
fn traced(sink: Box<dyn Sink>, trace: Option<future::trace::TaskTrace>) -> Box<dyn Sink> {
    match trace {
        None => sink,
        Some(trace) => Box::new(TracedSink {
            inner: sink,
            trace: std::sync::Mutex::new(Some(trace)),
        }),
    }
}
