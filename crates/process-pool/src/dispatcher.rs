//! The dispatcher: one thread per pool, one `poll()` over every pipe.
//!
//! # Why one poll loop
//!
//! A pool must never deadlock on big payloads: while it writes a 32 MiB task
//! into a worker's pipe (64 KiB-1 MiB of buffer), that worker may be busy
//! writing a 32 MiB result back, and each side waits for the other to read.
//! Python avoids it with a feeder thread per queue and a manager thread; a
//! reader thread per worker would work too. We use one thread that owns all
//! pipe ends, makes every one non-blocking, and `poll()`s them all, together
//! with an eventfd *doorbell* that `submit` rings. That thread never blocks
//! anywhere but in `poll`, so it always drains results while writing tasks:
//! no deadlock is possible, with no locks between reader and writer threads,
//! no per-worker threads to start and join, and one place where every event
//! (a result, a writable pipe, a worker's exit status, a deadline) is
//! handled in order.
//!
//! # Per worker
//!
//! ```text
//!             spawn (fork server)
//!                    |
//!                    v
//!   +----------> ACCEPTING --- task pipe closed (shutdown,
//!   |  result     |   |         max_tasks_per_child) ---> RETIRING
//!   +-------------+   |                                      |
//!                     | killed by us (timeout, bad frame)    | exits
//!                     | or died by itself                    |
//!                     v                                      v
//!                  DYING: wait for EOF on the result pipe AND the exit
//!                  status from the fork server's status pipe
//!                     |
//!                     v
//!                  REAPED: fail the task it ran (WorkerDied names the
//!                  signal or exit code), re-queue the tasks it had not
//!                  started, count the reason, drop its fds; a new worker
//!                  is forked on demand when work is queued.
//! ```
//!
//! # Pipelining and cancellation
//!
//! A worker is given up to `tasks_per_worker` tasks at once (default 2), so
//! it finds the next task already in its pipe when it finishes one; only
//! when every worker is busy. Unless `tasks_per_worker` was set explicitly,
//! workers whose tasks are short get more: as
//! many as they finish in about [`PIPELINE_BUDGET`] (2 ms) by the running
//! average of their recent task times, at most [`MAX_DEPTH`] (32). Tiny
//! tasks then travel many to a `read` and a `poll`, which is what makes
//! 10,000 one-line tasks fast, while a task handed to a worker stays
//! uncancellable for at most ~2 ms longer than it would without pipelining. A task is marked running (and so stops being
//! cancellable) only when it is handed to a worker: everything else waits in
//! the pool's queue, cancellable. Results come back in the order tasks were
//! sent, so the task at the head of a worker's list is the one it is
//! running: it starts when its frame is fully written and the previous result
//! has arrived, which is when its timeout clock starts.
//!
//! # Direct hand-off (one hop less on an idle pool)
//!
//! Waking the dispatcher costs a thread wake-up, and on an idle pool it is
//! pure overhead: the task could go straight to an idle worker. So when the
//! dispatcher goes to sleep with nothing queued, it *lends* the task pipe of
//! each idle worker to submitters: a `Lane { pid, fd }` in the queue state.
//! `submit` of a small frame (at most `PIPE_BUF` bytes, so the write into
//! the idle worker's empty pipe is all-or-nothing) pops a lane, writes the
//! frame itself, and records a `Handed` task, all under the queue lock. The
//! dispatcher wakes up when the result arrives, and the first thing it does
//! after every `poll` is to take the lanes back and adopt the handed tasks
//! (under the same lock), before it touches any worker. So a lent descriptor
//! is never closed while lent, a result never arrives for a task the
//! dispatcher does not know (the hand-off record is pushed under the lock
//! before the submitter releases it), and a worker never gets a second task
//! through a lane. Lanes are not lent when a task timeout is configured
//! (the sleeping dispatcher would not know a new deadline), nor when the
//! program restored SIGPIPE's default action (a write on the caller's
//! thread to a worker that just died must fail with EPIPE, not kill the
//! program; the dispatcher's own thread blocks SIGPIPE).
//!
//! # Doorbell protocol (no lost wake-ups)
//!
//! The queue's mutex guards a flag `dispatcher_waiting`. Before sleeping the
//! dispatcher takes tasks while it has room, and sets the flag (under the
//! lock) only if it stopped because the queue was empty. `submit` pushes
//! under the same lock and rings the eventfd only if it finds the flag set,
//! clearing it. So a task pushed into an empty queue always rings, and a
//! flood of submits while the workers are full rings no bell at all: the
//! dispatcher looks at the queue again after every result.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd};
// Relaxed on the statistics counters: see the `stats` module (independent
// diagnostic counters that publish no other memory).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use future::{DynError, TaskError};

use crate::codec;
use crate::error::{CodecStage, ExitCause, ProtocolError, SpawnFailed, TaskTimedOut, WorkerDied};
use crate::fork_server::{self, decode_status};
use crate::frame::{self, BodyReader, FrameBuf, FrameError};
use crate::stats::Counters;
use crate::sys;
use crate::task::{codec_error, Task};

/// What to do when a worker dies unexpectedly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WorkerDeath {
    /// Fail only the task it was running, re-queue the ones it had not
    /// started, and fork a replacement (the default).
    #[default]
    Replace,
    /// Python's behaviour: the pool is broken; every pending future fails
    /// with `TaskError::BrokenExecutor` and `submit` refuses new work.
    BreakPool,
}

/// A pool's settings (see `Builder`).
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub max_workers: usize,
    pub initializer: Option<fn()>,
    pub max_tasks_per_child: Option<u64>,
    pub task_timeout: Option<Duration>,
    pub on_worker_death: WorkerDeath,
    pub tasks_per_worker: usize,
    /// Whether short tasks may deepen the pipeline (unless the user set
    /// `tasks_per_worker` explicitly).
    pub adaptive_depth: bool,
    pub max_frame: usize,
    pub pipe_size: usize,
}

/// The state shared by the pool's handle, `submit` callers and the dispatcher.
pub(crate) struct Shared {
    pub queue: Mutex<Queue>,
    pub doorbell: OwnedFd,
    pub config: Config,
    pub counters: Counters,
    pub next_id: AtomicU64,
    /// Big frame buffers kept for reuse (see `recycle_buffer`).
    pub spare: Mutex<Vec<Vec<u8>>>,
    /// Whether idle workers may be lent to `submit` (no task timeout, and
    /// SIGPIPE ignored: `submit` writes on the caller's thread, where a
    /// dead worker's pipe must give EPIPE, not a fatal signal).
    pub lanes_allowed: bool,
}

/// Tasks not yet handed to a worker, and the pool's life flags.
#[derive(Default)]
pub(crate) struct Queue {
    pub tasks: VecDeque<Task>,
    pub shutdown: bool,
    pub broken: Option<String>,
    pub dispatcher_waiting: bool,
    /// Idle workers lent to `submit` while the dispatcher sleeps (see
    /// "Direct hand-off" in the module docs).
    pub lanes: Vec<Lane>,
    /// Tasks `submit` wrote straight into a lent worker's pipe.
    pub handed: Vec<Handed>,
}

/// An idle worker's task pipe, lent to `submit` for one task.
pub(crate) struct Lane {
    pub pid: i32,
    pub fd: std::os::fd::RawFd,
}

/// A task written by `submit` through a [`Lane`].
pub(crate) struct Handed {
    pub pid: i32,
    pub task: Task,
    pub at: Instant,
}

/// Frames up to this size may take a lane: `PIPE_BUF`, so the non-blocking
/// write into the (empty) pipe of an idle worker is all-or-nothing.
pub(crate) const LANE_MAX_FRAME: usize = libc::PIPE_BUF;

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock would be our bug; the queue is
        // still consistent (every operation on it is a single push/pop).
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ring(&self) {
        sys::ring(&self.doorbell);
    }

    /// An empty buffer for a task frame: a recycled big one if there is
    /// one (already-mapped memory: no page faults when a 16 MiB argument is
    /// encoded into it), else a small new one.
    pub fn recycled_buffer(&self) -> Vec<u8> {
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        spare.pop().unwrap_or_else(|| Vec::with_capacity(64))
    }

    /// Keeps the buffer of a finished task frame for reuse, if it is big
    /// (small ones are cheap to allocate) and the spare list has room.
    pub fn recycle_buffer(&self, mut buf: Vec<u8>) {
        if buf.capacity() < RECYCLE_MIN || buf.capacity() > RECYCLE_MAX {
            return;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < RECYCLE_COUNT {
            buf.clear();
            spare.push(buf);
        }
    }
}

/// Frame buffers between these capacities are recycled, at most
/// `RECYCLE_COUNT` of them per pool: the memory a pool keeps is bounded.
const RECYCLE_MIN: usize = 1 << 20;
const RECYCLE_MAX: usize = 64 << 20;
const RECYCLE_COUNT: usize = 2;

/// Why the pool ended a worker itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Timeout,
    Protocol,
    MaxTasks,
    Shutdown,
    Broken,
}

/// The dispatcher's view of one worker process.
struct Worker {
    pid: i32,
    /// Pool -> worker; `None` once closed (the worker then exits).
    task_w: Option<OwnedFd>,
    result_r: OwnedFd,
    /// Fork server -> pool; `None` once the exit status was read.
    status_r: Option<OwnedFd>,
    input: FrameBuf,
    /// Tasks given to this worker, in the order sent. The head is running.
    inflight: VecDeque<Task>,
    /// How many of `inflight` are completely written.
    sent: usize,
    /// Bytes of `inflight[sent]` already written.
    offset: usize,
    /// Tasks ever given to it (for `max_tasks_per_child`).
    assigned: u64,
    /// When the head task started (fully written and first in line).
    head_started: Option<Instant>,
    /// Running average of this worker's task times in ns (0: none yet).
    avg_task_nanos: u64,
    ready: bool,
    eof: bool,
    /// When end-of-file was seen (see `check_silent_workers`).
    eof_at: Option<Instant>,
    /// A SIGKILL was requested because the worker closed its pipe but lived on.
    eof_kill_sent: bool,
    write_failed: bool,
    /// Ignore further frames (after a protocol error).
    discard: bool,
    cause: Option<ExitCause>,
    fate: Option<Fate>,
}

/// A worker may hold as many short tasks as it runs in this time.
pub(crate) const PIPELINE_BUDGET: Duration = Duration::from_millis(2);
/// The most tasks a worker may hold, however short.
pub(crate) const MAX_DEPTH: usize = 32;

impl Worker {
    /// How many tasks this worker may hold at once (see "Pipelining").
    fn depth(&self, config: &Config) -> usize {
        if config.adaptive_depth {
            pipeline_depth(self.avg_task_nanos, config.tasks_per_worker)
        } else {
            config.tasks_per_worker
        }
    }

    fn accepting(&self, config: &Config) -> bool {
        self.task_w.is_some()
            && self.fate.is_none()
            && !self.write_failed
            && config
                .max_tasks_per_child
                .map_or(true, |max| self.assigned < max)
    }
}

/// The pipeline depth for a worker whose tasks take `avg_nanos` on average
/// (0: unknown): as many as fit in `PIPELINE_BUDGET`, between `base` and
/// `MAX_DEPTH` (a `base` above the cap wins).
fn pipeline_depth(avg_nanos: u64, base: usize) -> usize {
    match avg_nanos {
        0 => base,
        avg => {
            ((PIPELINE_BUDGET.as_nanos() as u64 / avg) as usize).clamp(base, MAX_DEPTH.max(base))
        }
    }
}

/// Folds one task's time into a running average in ns (weight 1/8; 0
/// means no sample yet).
fn fold_task_time(avg: &mut u64, took: Duration) {
    let took = (took.as_nanos() as u64).max(1);
    *avg = match *avg {
        0 => took,
        a => a - a / 8 + took / 8,
    };
}

/// How long a worker may stay alive after closing its result pipe.
const EOF_GRACE: Duration = Duration::from_secs(1);
/// How long to wait for the fork server's exit status after that.
const STATUS_GRACE: Duration = Duration::from_secs(5);

/// Where the next queued task goes.
enum Pick {
    Worker(usize),
    Spawn,
    Full,
}

/// Which descriptor a `pollfd` entry stands for.
#[derive(Clone, Copy)]
enum Source {
    Doorbell,
    Result(usize),
    Task(usize),
    Status(usize),
}

pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    workers: Vec<Worker>,
    /// No spawn attempts before this instant (after a failed spawn).
    spawn_backoff: Option<Instant>,
}

impl Dispatcher {
    pub fn new(shared: Arc<Shared>) -> Self {
        Dispatcher {
            shared,
            workers: Vec::new(),
            spawn_backoff: None,
        }
    }

    /// The loop; returns when the pool is shut down (or broken) and every
    /// worker has been reaped.
    pub fn run(mut self) {
        // Writing to the pipe of a worker that just died raises SIGPIPE,
        // whose default action kills the whole process. Rust programs
        // ignore it by default, but a program may restore it; blocked in
        // this thread, it stays pending and harmless, and write returns EPIPE.
        let mut pipe = nix::sys::signal::SigSet::empty();
        pipe.add(nix::sys::signal::Signal::SIGPIPE);
        let _ = pipe.thread_block();
        let mut pollfds: Vec<libc::pollfd> = Vec::new();
        let mut sources: Vec<Source> = Vec::new();
        loop {
            if self.intake() {
                break;
            }
            for i in 0..self.workers.len() {
                self.write(i);
            }
            self.publish();

            pollfds.clear();
            sources.clear();
            let mut add = |fd: i32, events: i16, s: Source| {
                pollfds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                sources.push(s);
            };
            add(
                self.shared.doorbell.as_raw_fd(),
                libc::POLLIN,
                Source::Doorbell,
            );
            for (i, w) in self.workers.iter().enumerate() {
                if !w.eof {
                    add(w.result_r.as_raw_fd(), libc::POLLIN, Source::Result(i));
                }
                if let Some(fd) = &w.task_w {
                    if w.sent < w.inflight.len() && !w.write_failed {
                        add(fd.as_raw_fd(), libc::POLLOUT, Source::Task(i));
                    }
                }
                if let Some(fd) = &w.status_r {
                    add(fd.as_raw_fd(), libc::POLLIN, Source::Status(i));
                }
            }
            let timeout = self.poll_timeout();
            // SAFETY: `pollfds` is a valid, initialised array of its length.
            let n =
                unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
            // Before touching any worker: take the lent pipes back.
            self.reclaim_lanes();
            if n > 0 {
                for (p, s) in pollfds.iter().zip(&sources) {
                    if p.revents == 0 {
                        continue;
                    }
                    match *s {
                        Source::Doorbell => sys::drain_doorbell(&self.shared.doorbell),
                        Source::Result(i) => self.read(i),
                        Source::Task(i) => self.write(i),
                        Source::Status(i) => self.read_status(i),
                    }
                }
            }
            self.check_deadlines();
            self.reap();
        }
        self.publish();
    }

    /// Moves queued tasks to workers (forking workers as needed). Returns
    /// true when the dispatcher is done.
    fn intake(&mut self) -> bool {
        loop {
            let pick = self.pick();
            let mut q = self.shared.lock();
            if let Some(msg) = q.broken.clone() {
                let tasks: Vec<Task> = q.tasks.drain(..).collect();
                q.dispatcher_waiting = true;
                drop(q);
                self.fail_all(tasks, &msg);
                return self.workers.is_empty();
            }
            if matches!(pick, Pick::Full) || q.tasks.is_empty() {
                q.dispatcher_waiting = !matches!(pick, Pick::Full);
                let finishing = q.shutdown && q.tasks.is_empty();
                if q.tasks.is_empty() && !finishing && self.shared.lanes_allowed {
                    self.lend_lanes(&mut q);
                }
                drop(q);
                if finishing {
                    self.retire_idle(Fate::Shutdown);
                    return self.workers.is_empty();
                }
                return false;
            }
            match pick {
                Pick::Spawn => {
                    drop(q);
                    self.spawn();
                }
                Pick::Worker(i) => {
                    let Some(mut task) = q.tasks.pop_front() else {
                        continue;
                    };
                    drop(q);
                    if !task.running {
                        if !task.sink.set_running() {
                            Counters::bump(&self.shared.counters.tasks_cancelled);
                            continue;
                        }
                        task.running = true;
                    }
                    self.shared.counters.tasks_running.fetch_add(1, Relaxed);
                    let w = &mut self.workers[i];
                    w.inflight.push_back(task);
                    w.assigned += 1;
                }
                Pick::Full => unreachable!("handled above"),
            }
        }
    }

    /// Lends the pipes of idle workers to `submit` (called with the queue
    /// locked, just before the dispatcher sleeps).
    fn lend_lanes(&self, q: &mut Queue) {
        let config = &self.shared.config;
        for w in &self.workers {
            if w.accepting(config) && w.inflight.is_empty() {
                if let Some(fd) = &w.task_w {
                    q.lanes.push(Lane {
                        pid: w.pid,
                        fd: fd.as_raw_fd(),
                    });
                }
            }
        }
    }

    /// Takes lent pipes back and adopts the tasks written through them.
    fn reclaim_lanes(&mut self) {
        let handed = {
            let mut q = self.shared.lock();
            q.lanes.clear();
            std::mem::take(&mut q.handed)
        };
        for h in handed {
            match self.workers.iter_mut().find(|w| w.pid == h.pid) {
                Some(w) => {
                    // The worker was idle, so this task is its head and is
                    // completely written.
                    w.inflight.push_back(h.task);
                    w.sent += 1;
                    w.assigned += 1;
                    if w.sent == 1 {
                        w.head_started = Some(h.at);
                    }
                }
                // Impossible (a lent worker is never removed), but never
                // lose a task: its future fails instead of hanging.
                None => {
                    self.shared.counters.tasks_running.fetch_sub(1, Relaxed);
                    let err = SpawnFailed {
                        message: "internal error: a task was handed to an unknown worker".into(),
                    };
                    h.task.sink.complete(
                        Err(TaskError::Executor(DynError::new(err))),
                        &self.shared.counters,
                    );
                }
            }
        }
    }

    fn pick(&self) -> Pick {
        let config = &self.shared.config;
        let mut accepting = 0;
        let mut best: Option<(usize, usize)> = None;
        for (i, w) in self.workers.iter().enumerate() {
            if !w.accepting(config) {
                continue;
            }
            accepting += 1;
            if w.inflight.is_empty() {
                return Pick::Worker(i);
            }
            if w.inflight.len() < w.depth(config)
                && best.map_or(true, |(_, n)| w.inflight.len() < n)
            {
                best = Some((i, w.inflight.len()));
            }
        }
        let may_spawn = self.spawn_backoff.map_or(true, |t| Instant::now() >= t);
        if accepting < config.max_workers && may_spawn {
            return Pick::Spawn;
        }
        match best {
            Some((i, _)) => Pick::Worker(i),
            None => Pick::Full,
        }
    }

    /// Asks the fork server for one more worker.
    fn spawn(&mut self) {
        let config = &self.shared.config;
        let spawned =
            fork_server::server().and_then(|s| s.spawn(config.initializer, config.pipe_size));
        let spawned = match spawned {
            Ok(s) => s,
            Err(e) => {
                if self.workers.is_empty() {
                    // Nothing can run the queued tasks: fail them (Python
                    // gh-119592: "A replacement worker process could not be started").
                    let msg = SpawnFailed {
                        message: e.to_string(),
                    }
                    .to_string();
                    self.break_pool(msg);
                } else {
                    self.spawn_backoff = Some(Instant::now() + Duration::from_millis(100));
                }
                return;
            }
        };
        let _ = sys::set_nonblocking(&spawned.task);
        let _ = sys::set_nonblocking(&spawned.result);
        self.spawn_backoff = None;
        Counters::bump(&self.shared.counters.workers_started);
        self.workers.push(Worker {
            pid: spawned.pid,
            task_w: Some(spawned.task),
            result_r: spawned.result,
            status_r: Some(spawned.status),
            input: FrameBuf::default(),
            inflight: VecDeque::new(),
            sent: 0,
            offset: 0,
            assigned: 0,
            head_started: None,
            avg_task_nanos: 0,
            ready: false,
            eof: false,
            eof_at: None,
            eof_kill_sent: false,
            write_failed: false,
            discard: false,
            cause: None,
            fate: None,
        });
    }

    /// Writes as much pending task data to worker `i` as its pipe takes.
    fn write(&mut self, i: usize) {
        let w = &mut self.workers[i];
        let Some(fd) = w.task_w.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        while w.sent < w.inflight.len() && !w.write_failed {
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(16);
            for (k, task) in w.inflight.iter().skip(w.sent).take(64).enumerate() {
                let skip = if k == 0 { w.offset } else { 0 };
                slices.push(IoSlice::new(&task.frame[skip..]));
            }
            match sys::writev(fd, &slices) {
                Ok(mut n) => {
                    drop(slices);
                    while n > 0 {
                        let left = w.inflight[w.sent].frame.len() - w.offset;
                        if n >= left {
                            n -= left;
                            w.sent += 1;
                            w.offset = 0;
                            if w.sent == 1 {
                                w.head_started = Some(Instant::now());
                            }
                        } else {
                            w.offset += n;
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // EPIPE: the worker is gone; EOF and its status follow.
                    w.write_failed = true;
                }
            }
        }
        // Free what was written of tasks that cannot be needed again? No:
        // frames stay until their result arrives, so that tasks a dead
        // worker never started can be re-queued intact.
    }

    /// Reads whatever worker `i` sent and handles complete frames.
    fn read(&mut self, i: usize) {
        let max = self.shared.config.max_frame;
        for _ in 0..16 {
            let w = &mut self.workers[i];
            if w.eof {
                return;
            }
            let want = w.input.want(max);
            match sys::read_into(w.result_r.as_raw_fd(), w.input.vec_mut(), want) {
                Ok(0) => {
                    w.eof = true;
                    w.eof_at = Some(Instant::now());
                    return;
                }
                Ok(n) => {
                    self.handle_frames(i);
                    if n < want {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    w.eof = true;
                    w.eof_at = Some(Instant::now());
                    return;
                }
            }
        }
    }

    fn handle_frames(&mut self, i: usize) {
        let max = self.shared.config.max_frame;
        loop {
            let w = &mut self.workers[i];
            if w.discard {
                w.input = FrameBuf::default();
                return;
            }
            let f = match w.input.next_frame(max) {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => return self.protocol_fault(i, e),
            };
            let result = match f.kind {
                frame::READY => {
                    w.ready = true;
                    Ok(())
                }
                frame::INIT_FAILED => {
                    let msg = String::from_utf8_lossy(w.input.body(&f)).into_owned();
                    let pid = w.pid;
                    w.input.consume(&f);
                    w.fate = Some(Fate::Broken);
                    self.break_pool(format!(
                        "the initializer panicked in worker process {pid}: {msg}"
                    ));
                    return;
                }
                frame::RESULT => self.handle_result(i, &f),
                _ => Err(FrameError::UnknownKind(f.kind)),
            };
            if let Err(e) = result {
                return self.protocol_fault(i, e);
            }
            self.workers[i].input.consume(&f);
        }
    }

    /// Completes the head task of worker `i` with the outcome in `f`.
    fn handle_result(&mut self, i: usize, f: &frame::Frame) -> Result<(), FrameError> {
        let counters = &self.shared.counters;
        let w = &mut self.workers[i];
        let mut body = BodyReader::new(w.input.body(f));
        let id = body.u64()?;
        let tag = body.u8()?;
        if w.sent == 0 || w.inflight.front().map(|t| t.id) != Some(id) {
            return Err(FrameError::BadBody(
                "a result for a task the worker was not running",
            ));
        }
        let outcome: Result<&[u8], TaskError> = match tag {
            codec::OK => Ok(body.rest()),
            codec::FAILED => {
                let type_name = body.string()?;
                let message = body.string()?;
                Err(TaskError::Failed(DynError::from_parts(type_name, message)))
            }
            codec::PANICKED => Err(TaskError::Panicked(body.string()?)),
            codec::DECODE_ARGS => Err(codec_error(CodecStage::DecodeArgs, body.string()?)),
            codec::ENCODE_RESULT => Err(codec_error(CodecStage::EncodeResult, body.string()?)),
            _ => return Err(FrameError::BadBody("unknown outcome tag")),
        };
        let task = w.inflight.pop_front().expect("checked above");
        w.sent -= 1;
        let now = Instant::now();
        if let Some(started) = w.head_started {
            fold_task_time(&mut w.avg_task_nanos, now - started);
        }
        w.head_started = (w.sent > 0).then_some(now);
        counters.tasks_running.fetch_sub(1, Relaxed);
        let Task { frame, sink, .. } = task;
        sink.complete(outcome, counters);
        self.shared.recycle_buffer(frame);
        if w.inflight.is_empty()
            && !w.accepting(&self.shared.config)
            && w.fate.is_none()
            && w.task_w.is_some()
        {
            // max_tasks_per_child reached: close its task pipe; it exits.
            w.task_w = None;
            w.fate = Some(Fate::MaxTasks);
        }
        Ok(())
    }

    /// Worker `i` sent garbage: kill it, fail its running task with an
    /// error naming it, re-queue the rest.
    fn protocol_fault(&mut self, i: usize, error: FrameError) {
        let w = &mut self.workers[i];
        let pid = w.pid;
        w.discard = true;
        w.input = FrameBuf::default();
        let err = ProtocolError {
            pid,
            error,
            cause: None,
        };
        self.end_worker(i, Fate::Protocol, TaskError::Executor(DynError::new(err)));
    }

    /// Kills worker `i` on purpose: its head task fails with `error`, the
    /// tasks it had not started go back to the queue.
    fn end_worker(&mut self, i: usize, fate: Fate, error: TaskError) {
        let w = &mut self.workers[i];
        w.fate = Some(fate);
        w.task_w = None;
        w.head_started = None;
        let pid = w.pid;
        let mut tasks: Vec<Task> = self
            .shared
            .counters
            .take_running(w.inflight.drain(..).collect());
        w.sent = 0;
        w.offset = 0;
        if let Ok(server) = fork_server::server() {
            let _ = server.kill(pid);
        }
        if !tasks.is_empty() {
            let head = tasks.remove(0);
            head.sink.complete(Err(error), &self.shared.counters);
        }
        self.requeue(tasks);
    }

    /// Puts tasks a worker never started back at the front of the queue.
    fn requeue(&mut self, tasks: Vec<Task>) {
        if tasks.is_empty() {
            return;
        }
        let mut q = self.shared.lock();
        if let Some(msg) = q.broken.clone() {
            drop(q);
            return self.fail_all(tasks, &msg);
        }
        for t in tasks.into_iter().rev() {
            q.tasks.push_front(t);
        }
    }

    fn read_status(&mut self, i: usize) {
        let w = &mut self.workers[i];
        let Some(fd) = w.status_r.take() else { return };
        let mut word = Vec::with_capacity(8);
        let cause = match sys::read_into(fd.as_raw_fd(), &mut word, 8) {
            Ok(8) => decode_status(&word),
            // Anything else: the fork server died without reporting.
            _ => ExitCause::Unknown,
        };
        w.cause = Some(cause);
    }

    /// Kills workers whose running task outran the timeout.
    fn check_deadlines(&mut self) {
        self.check_silent_workers();
        let Some(timeout) = self.shared.config.task_timeout else {
            return;
        };
        let now = Instant::now();
        for i in 0..self.workers.len() {
            let w = &self.workers[i];
            if w.fate.is_none() && w.head_started.is_some_and(|s| now >= s + timeout) {
                let err = TaskTimedOut {
                    pid: w.pid,
                    timeout,
                };
                self.end_worker(i, Fate::Timeout, TaskError::Executor(DynError::new(err)));
            }
        }
    }

    /// A worker whose result pipe ended but whose exit status has not come:
    /// normally the status follows within microseconds. After
    /// `EOF_GRACE` the worker evidently closed its pipe and lives on (a task
    /// that closed every descriptor): it is useless, so it is killed. After
    /// `STATUS_GRACE` more, the fork server is not answering: the status is
    /// taken as unknown, so that nothing waits forever.
    fn check_silent_workers(&mut self) {
        let now = Instant::now();
        for i in 0..self.workers.len() {
            let w = &mut self.workers[i];
            let Some(eof_at) = w.eof_at.filter(|_| w.cause.is_none()) else {
                continue;
            };
            if now >= eof_at + EOF_GRACE + STATUS_GRACE {
                w.cause = Some(ExitCause::Unknown);
                w.status_r = None;
            } else if now >= eof_at + EOF_GRACE && !w.eof_kill_sent {
                w.eof_kill_sent = true;
                let pid = w.pid;
                if let Ok(server) = fork_server::server() {
                    let _ = server.kill(pid);
                }
            }
        }
    }

    fn poll_timeout(&self) -> libc::c_int {
        let mut deadline: Option<Instant> = self.spawn_backoff;
        for w in &self.workers {
            if let (Some(eof_at), None) = (w.eof_at, w.cause) {
                let d = if w.eof_kill_sent {
                    eof_at + EOF_GRACE + STATUS_GRACE
                } else {
                    eof_at + EOF_GRACE
                };
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
        }
        if let Some(timeout) = self.shared.config.task_timeout {
            for w in &self.workers {
                if let (None, Some(s)) = (w.fate, w.head_started) {
                    let d = s + timeout;
                    deadline = Some(deadline.map_or(d, |x| x.min(d)));
                }
            }
        }
        match deadline {
            None => -1,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis() + 1;
                ms.min(60_000) as libc::c_int
            }
        }
    }

    /// Removes workers that are gone (EOF on results and status known).
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            let w = &self.workers[i];
            if w.eof && w.cause.is_some() {
                let w = self.workers.swap_remove(i);
                self.bury(w);
            } else {
                i += 1;
            }
        }
    }

    /// Accounts for a worker that ended, and fails or re-queues its tasks.
    fn bury(&mut self, mut w: Worker) {
        let counters = &self.shared.counters;
        let cause = w.cause.unwrap_or(ExitCause::Unknown);
        let unexpected = match w.fate {
            Some(Fate::Timeout) => {
                Counters::bump(&counters.exit_timeout);
                false
            }
            Some(Fate::Protocol) => {
                Counters::bump(&counters.exit_protocol);
                false
            }
            Some(Fate::MaxTasks) if cause == ExitCause::Exited(0) => {
                Counters::bump(&counters.exit_max_tasks);
                false
            }
            Some(Fate::Shutdown) | Some(Fate::Broken) if cause == ExitCause::Exited(0) => false,
            Some(Fate::Broken) => false,
            _ => {
                match cause {
                    ExitCause::Signaled(_) => Counters::bump(&counters.exit_signal),
                    _ => Counters::bump(&counters.exit_code),
                }
                true
            }
        };
        let mut tasks: Vec<Task> = self
            .shared
            .counters
            .take_running(w.inflight.drain(..).collect());
        if !unexpected {
            // Tasks of a worker we ended were already failed or re-queued;
            // anything left (none expected) goes back to the queue.
            return self.requeue(tasks);
        }
        let config = &self.shared.config;
        let init_failed = config.initializer.is_some() && !w.ready;
        if init_failed || config.on_worker_death == WorkerDeath::BreakPool {
            let msg = if init_failed {
                format!(
                    "the initializer of worker process {} failed: the worker {cause}",
                    w.pid
                )
            } else {
                format!(
                    "a process in the process pool was terminated abruptly while the future was \
                     running or pending (worker process {} {cause})",
                    w.pid
                )
            };
            self.fail_all(tasks, &msg);
            return self.break_pool(msg);
        }
        if !tasks.is_empty() {
            let head = tasks.remove(0);
            let error = match w.input.leftover() {
                Some(truncated) if !w.discard => DynError::new(ProtocolError {
                    pid: w.pid,
                    error: truncated,
                    cause: Some(cause),
                }),
                _ => DynError::new(WorkerDied { pid: w.pid, cause }),
            };
            head.sink
                .complete(Err(TaskError::Executor(error)), counters);
        }
        self.requeue(tasks);
    }

    /// Python's `_terminate_broken`: every pending future fails with
    /// `BrokenExecutor(msg)`, every worker is killed, `submit` refuses.
    fn break_pool(&mut self, msg: String) {
        let queued: Vec<Task> = {
            let mut q = self.shared.lock();
            if q.broken.is_none() {
                q.broken = Some(msg.clone());
            }
            q.tasks.drain(..).collect()
        };
        self.fail_all(queued, &msg);
        for i in 0..self.workers.len() {
            let w = &mut self.workers[i];
            let tasks: Vec<Task> = self
                .shared
                .counters
                .take_running(w.inflight.drain(..).collect());
            w.sent = 0;
            w.offset = 0;
            w.head_started = None;
            w.task_w = None;
            if w.fate.is_none() {
                w.fate = Some(Fate::Broken);
            }
            let pid = w.pid;
            if let Ok(server) = fork_server::server() {
                let _ = server.kill(pid);
            }
            self.fail_all(tasks, &msg);
        }
    }

    fn fail_all(&self, tasks: Vec<Task>, msg: &str) {
        for t in tasks {
            t.sink.complete(
                Err(TaskError::BrokenExecutor(msg.to_string())),
                &self.shared.counters,
            );
        }
    }

    /// Closes the task pipe of every idle worker (it exits on end-of-file).
    fn retire_idle(&mut self, fate: Fate) {
        for w in &mut self.workers {
            if w.inflight.is_empty() && w.task_w.is_some() {
                w.task_w = None;
                if w.fate.is_none() {
                    w.fate = Some(fate);
                }
            }
        }
    }

    /// Publishes the counters that describe the present.
    fn publish(&self) {
        let c = &self.shared.counters;
        let config = &self.shared.config;
        c.workers_alive.store(self.workers.len() as u64, Relaxed);
        let idle = self
            .workers
            .iter()
            .filter(|w| w.accepting(config) && w.inflight.is_empty())
            .count();
        c.workers_idle.store(idle as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tasks_earn_a_deeper_pipeline_long_ones_keep_the_base() {
        let mut avg = 0;
        fold_task_time(&mut avg, Duration::from_micros(10));
        assert_eq!(avg, 10_000, "the first sample is taken as is");
        for _ in 0..50 {
            fold_task_time(&mut avg, Duration::from_micros(20));
        }
        assert!((19_000..=20_000).contains(&avg), "{avg}");
        // 2 ms / 20 us = 100, capped at MAX_DEPTH.
        let depth = pipeline_depth;
        assert_eq!(depth(avg, 2), MAX_DEPTH);
        assert_eq!(depth(500_000, 2), 4); // 0.5 ms tasks: 4
        assert_eq!(depth(300_000_000, 2), 2); // long tasks: the base
        assert_eq!(depth(0, 3), 3); // no sample yet: the base
        assert_eq!(depth(1, 64), 64); // a base above the cap wins
    }
}
