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
//! A worker's life is two small enums in `worker`: its `Phase` (what the
//! pool decided) and its `Exit` (what the pool has seen of the process
//! ending). `Worker::enter` is the one transition function; its rules and
//! the invariants between the fields are written on `Worker`.
//!
//! ```text
//!             spawn (fork server)
//!                    |
//!                    v
//!   +----------> ACCEPTING --- task pipe closed (EndReason::Shutdown,
//!   |  result     |   |         MaxTasks, MaxMemory) ---> RETIRING
//!   +-------------+   |                                      |
//!                     | killed by us (Timeout, Protocol,     | exits
//!                     | Broken, Terminated, Interrupted),    |
//!                     | or a write found it dead             |
//!                     v                                      v
//!                  DYING            any phase: Exit::Running -> PipeEnded
//!                     |             (result pipe EOF) -> Exited (the fork
//!                     |             server's status, then what is left in
//!                     |             the result pipe: `death::drain_after_exit`)
//!                     v                                      |
//!                  REAPED (Exit::Exited, in any phase) <-----+
//!                  fail the task it ran (WorkerDied names the signal or
//!                  exit code), re-queue the tasks it had not started,
//!                  count the reason, drop its fds; a new worker is forked
//!                  on demand when work is queued.
//! ```
//!
//! The parts: `worker` (one worker's state and life), `pipeline` (how many
//! tasks a worker may hold), `handoff` (lending idle workers to `submit`),
//! `interrupt` (stopping one task), `death` (killing, reaping, replacing,
//! breaking). The shared state is in `crate::shared`.

mod death;
mod handoff;
mod interrupt;
mod pipeline;
mod worker;

use death::{EOF_GRACE, STATUS_GRACE};
use worker::{EndReason, Exit, Phase, Worker};

pub(crate) use crate::shared::{Config, PoolState, Shared, WorkerDeath};
pub(crate) use handoff::{hand_off, HandedTask, LentPipe, HANDOFF_MAX_FRAME};

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
// Relaxed on the statistics counters: see the `stats` module (independent
// diagnostic counters that publish no other memory).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec;
use crate::cost::Cost;
use crate::error::CodecStage;
use crate::fd_passing;
use crate::fork_server;
use crate::frame::{self, FrameBuf, FrameError};
use crate::stats::Counters;
use crate::sys;
use crate::task::{codec_error, Task};

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

/// The dispatcher thread's state: it alone owns the workers.
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
            self.start_marked_heads();
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
                if w.exit.reads_results() {
                    add(w.result_r.as_raw_fd(), libc::POLLIN, Source::Result(i));
                }
                if let Some(fd) = w.task_pipe() {
                    if w.sent < w.inflight.len() {
                        add(fd, libc::POLLOUT, Source::Task(i));
                    }
                }
                if let Some(fd) = w.exit.status_fd() {
                    add(fd, libc::POLLIN, Source::Status(i));
                }
            }
            let timeout = self.poll_timeout();
            // SAFETY: `pollfds` is a valid, initialised array of its length.
            let n =
                unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
            // Before touching any worker: take the lent pipes back.
            self.reclaim_lent_pipes();
            self.apply_force();
            self.take_interrupts();
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
            if let Some(msg) = q.life.broken().map(str::to_string) {
                let tasks: Vec<Task> = q.tasks.drain(..).collect();
                q.dispatcher_waiting = true;
                drop(q);
                self.fail_all(tasks, &msg);
                return self.workers.is_empty();
            }
            if matches!(pick, Pick::Full) || q.tasks.is_empty() {
                q.dispatcher_waiting = !matches!(pick, Pick::Full);
                let finishing = q.life.is_shutting_down() && q.tasks.is_empty();
                if q.tasks.is_empty() && !finishing && self.shared.handoff_allowed {
                    self.lend_idle_pipes(&mut q);
                }
                drop(q);
                if finishing {
                    self.retire_idle(EndReason::Shutdown);
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
                        if !task.sink.set_running(self.workers[i].pid) {
                            Counters::bump(&self.shared.counters.tasks_cancelled);
                            continue;
                        }
                        task.running = true;
                    }
                    self.shared.counters.tasks_running.fetch_add(1, Relaxed);
                    let w = &mut self.workers[i];
                    if !task.fds.is_empty() && !w.inflight.is_empty() {
                        // A task with descriptors goes to an idle worker
                        // only (see `fd_passing`): it waits for one.
                        let mut q = self.shared.lock();
                        q.tasks.push_front(task);
                        q.dispatcher_waiting = false;
                        return false;
                    }
                    w.assigned += 1;
                    task.position = w.assigned;
                    w.inflight.push_back(task);
                }
                Pick::Full => unreachable!("handled above"),
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
            if w.inflight.len() < w.depth(config) && best.is_none_or(|(_, n)| w.inflight.len() < n)
            {
                best = Some((i, w.inflight.len()));
            }
        }
        let may_spawn = self.spawn_backoff.is_none_or(|t| Instant::now() >= t);
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
                    self.spawn_failed(e);
                } else {
                    self.spawn_backoff = Some(Instant::now() + Duration::from_millis(100));
                }
                return;
            }
        };
        let _ = sys::set_nonblocking(&spawned.task);
        let _ = sys::set_nonblocking(&spawned.result);
        let _ = sys::set_nonblocking(&spawned.fds);
        self.spawn_backoff = None;
        Counters::bump(&self.shared.counters.workers_started);
        self.workers.push(Worker::new(
            spawned.pid,
            spawned.task,
            spawned.result,
            spawned.status,
            spawned.fds,
        ));
    }

    /// Writes as much pending task data to worker `i` as its pipe takes.
    fn write(&mut self, i: usize) {
        let w = &mut self.workers[i];
        let Some(fd) = w.task_pipe() else {
            return;
        };
        while w.sent < w.inflight.len() {
            if !w.fds_sent && w.offset == 0 && !w.inflight[w.sent].fds.is_empty() {
                // SharedBytes: the descriptors go before the frame's first byte.
                let task = &w.inflight[w.sent];
                if let Err(e) = fd_passing::send(w.fds.as_raw_fd(), task.id, &task.fds, true) {
                    let task = w.inflight.remove(w.sent).expect("checked above");
                    let counters = &self.shared.counters;
                    counters.tasks_running.fetch_sub(1, Relaxed);
                    let message = format!(
                        "could not pass the argument's SharedBytes descriptors to worker {}: {e}",
                        w.pid
                    );
                    task.sink
                        .complete(Err(codec_error(CodecStage::EncodeArgs, message)), counters);
                    continue;
                }
                w.fds_sent = true;
            }
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(16);
            for (k, task) in w.inflight.iter().skip(w.sent).take(64).enumerate() {
                if k > 0 && !task.fds.is_empty() {
                    break; // its descriptors go first, on the next round
                }
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
                            w.fds_sent = false;
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
                    w.enter(Phase::Dying { reason: None });
                    break;
                }
            }
        }
        // Frames stay until their result arrives, so that tasks a dead
        // worker never started can be re-queued intact.
    }

    /// Reads whatever worker `i` sent and handles complete frames.
    fn read(&mut self, i: usize) {
        let max = self.shared.config.max_frame;
        for _ in 0..16 {
            let w = &mut self.workers[i];
            if !w.exit.reads_results() {
                return;
            }
            let want = w.input.want(max);
            match sys::read_into(w.result_r.as_raw_fd(), w.input.vec_mut(), want) {
                Ok(0) => return w.exit.pipe_ended(),
                Ok(n) => {
                    self.handle_frames(i);
                    if n < want {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return w.exit.pipe_ended(),
            }
        }
    }

    fn handle_frames(&mut self, i: usize) {
        let max = self.shared.config.max_frame;
        loop {
            let w = &mut self.workers[i];
            if w.discards_frames() {
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
                    w.enter(Phase::Dying {
                        reason: Some(EndReason::Broken),
                    });
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

    /// A `RESULT` frame from worker `i`: its outcome completes the worker's
    /// head task.
    fn handle_result(&mut self, i: usize, f: &frame::Frame) -> Result<(), FrameError> {
        // The decoded outcome borrows the worker's input buffer: lend the
        // buffer out while the worker's other fields change.
        let input = std::mem::take(&mut self.workers[i].input);
        let done = self.complete_head(i, input.body(f));
        self.workers[i].input = input;
        done
    }

    /// Decodes a result (in the codec), takes the descriptors sent with it,
    /// and completes the head task of worker `i` with it.
    fn complete_head(&mut self, i: usize, body: &[u8]) -> Result<(), FrameError> {
        let result = codec::decode_result(body)?;
        let w = &mut self.workers[i];
        if w.sent == 0 || w.inflight.front().map(|t| t.id) != Some(result.id) {
            return Err(FrameError::BadBody(
                "a result for a task the worker was not running",
            ));
        }
        let received = receive_result_fds(w, &result)?;
        let task = w.pop_head();
        let counters = &self.shared.counters;
        counters.tasks_running.fetch_sub(1, Relaxed);
        self.account_cost(i, &task, &result.cost);
        let counters = &self.shared.counters;
        let Task { frame, sink, .. } = task;
        // The result decodes with its descriptors installed; unused ones
        // close at the end of the scope.
        fd_passing::with_incoming(received.fds, received.truncated, || {
            sink.complete(result.outcome, counters)
        });
        self.shared.recycle_buffer(frame);
        self.retire_at_limit(i);
        Ok(())
    }

    /// Records what a finished task cost: its report, the pool's counters,
    /// and whether its worker passed `max_memory_per_child`.
    fn account_cost(&mut self, i: usize, task: &Task, cost: &Cost) {
        let w = &mut self.workers[i];
        let counters = &self.shared.counters;
        task.sink
            .set_report(cost.report(w.pid, task.position, task.enqueued_ns));
        counters.add_cost(cost, cost.start_ns.saturating_sub(task.enqueued_ns));
        if let Some(limit) = self.shared.config.max_memory_per_child {
            w.over_memory |= cost.usage.is_some_and(|u| u.peak_rss > limit);
        }
    }

    /// Worker `i` reached `max_tasks_per_child` or `max_memory_per_child`
    /// and holds nothing: close its task pipe (it exits).
    fn retire_at_limit(&mut self, i: usize) {
        let w = &mut self.workers[i];
        if w.inflight.is_empty() && !w.accepting(&self.shared.config) {
            let reason = if w.over_memory {
                EndReason::MaxMemory
            } else {
                EndReason::MaxTasks
            };
            w.enter(Phase::Retiring { reason }); // a no-op unless accepting
        }
    }

    fn poll_timeout(&self) -> libc::c_int {
        let mut deadline: Option<Instant> = self.spawn_backoff;
        if let Some(kill_at) = self.next_escalation() {
            deadline = Some(deadline.map_or(kill_at, |x| x.min(kill_at)));
        }
        for w in &self.workers {
            if let Exit::PipeEnded { at, kill_sent, .. } = w.exit {
                let d = if kill_sent {
                    at + EOF_GRACE + STATUS_GRACE
                } else {
                    at + EOF_GRACE
                };
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
        }
        if let Some(timeout) = self.shared.config.task_timeout {
            for w in &self.workers {
                if let (None, Some(s)) = (w.ended_by(), w.head_started) {
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

/// The descriptors a result's `SharedBytes` travel with: sent on the
/// descriptor socket before the frame (see `fd_passing`), so they are
/// there now.
fn receive_result_fds(
    w: &Worker,
    result: &codec::ResultBody<'_>,
) -> Result<fd_passing::Received, FrameError> {
    if !result.has_fds {
        return Ok(fd_passing::Received {
            fds: Vec::new(),
            truncated: false,
        });
    }
    fd_passing::recv(w.fds.as_raw_fd(), result.id)
        .map_err(|_| FrameError::BadBody("a result announced descriptors that did not arrive"))
}
