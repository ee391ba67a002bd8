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
//! # The parts
//!
//! [`Dispatcher::run`] is the whole loop on one screen; the steps it names
//! live in:
//!
//! | module | what |
//! |---|---|
//! | `feed` | tasks in: the queue to the workers' task pipes, forking workers on demand |
//! | `poll_set` | the one `poll()` over every descriptor |
//! | `results` | results out: result pipes to futures (the codec decodes, `complete_head` completes) |
//! | `death` | killing, reaping, replacing, breaking |
//! | `worker` | one worker's state, its `Phase` and `Exit`, the transition function |
//! | `pipeline` | how many tasks a worker may hold |
//! | `handoff` | lending idle workers' pipes to `submit` |
//! | `interrupt` | stopping one task: SIGTERM, then SIGKILL |
//!
//! The state shared with the pool's handle is in `crate::parent::shared`.

mod death;
mod feed;
mod handoff;
mod interrupt;
mod pipeline;
mod poll_set;
mod results;
mod worker;

use death::{EOF_GRACE, STATUS_GRACE};
use poll_set::{PollSet, Source};
use worker::{Exit, Worker};

pub(crate) use crate::parent::shared::{Config, PoolState, Shared, WorkerDeath};
pub(crate) use handoff::{hand_off, HandedTask, LentPipe, HANDOFF_MAX_FRAME};

// Relaxed on the statistics counters: see the `stats` module (independent
// diagnostic counters that publish no other memory).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use crate::sys;

/// The dispatcher thread's state: it alone owns the workers.
pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    workers: Vec<Worker>,
    /// No spawn attempts before this instant (after a failed spawn).
    spawn_backoff: Option<Instant>,
    /// Results read this turn, completed just before the loop sleeps
    /// (see `results::Finished`).
    finished: Vec<results::Finished>,
}

impl Dispatcher {
    pub fn new(shared: Arc<Shared>) -> Self {
        Dispatcher {
            shared,
            workers: Vec::new(),
            spawn_backoff: None,
            finished: Vec::new(),
        }
    }

    /// The loop, as CPython's executor manager thread runs it: hand queued
    /// tasks to workers (replacing dead ones on demand), wait for any event,
    /// complete what came back, reap what ended. Returns when the pool is
    /// shut down (or broken) and every worker has been reaped.
    pub fn run(mut self) {
        block_sigpipe_on_this_thread();
        let mut poll = PollSet::default();
        loop {
            // Feed: queued tasks to workers, forking any needed; `true`
            // once the pool is finished and every worker reaped.
            if self.intake() {
                break;
            }
            self.write_all();
            // Wake the callers whose results came, now that the idle
            // workers' pipes are lent: their next tasks go straight in.
            self.complete_finished();
            // Wait for a result, room in a pipe, an exit status, the
            // doorbell, or the next deadline.
            poll.wait(&self, self.poll_timeout());
            self.take_requests();
            // Complete: results to futures, exit statuses to workers.
            for source in poll.ready() {
                match source {
                    Source::Doorbell => sys::drain_doorbell(&self.shared.doorbell),
                    Source::Result(i) => self.read(i),
                    Source::Task(i) => self.write(i),
                    Source::Status(i) => self.read_status(i),
                }
            }
            // Replace: kill what outran a deadline, reap what exited (new
            // workers are forked by the next `intake`, if work waits).
            self.check_deadlines();
            self.reap();
        }
        self.complete_finished();
        self.publish();
    }

    /// Writes what each worker's pipe takes, starts the interruptions of
    /// tasks that just became a head, and publishes the gauges, before the
    /// loop may sleep.
    fn write_all(&mut self) {
        for i in 0..self.workers.len() {
            self.write(i);
        }
        self.start_marked_heads();
        self.publish();
    }

    /// What the pool's handle asked for while the loop slept, taken before
    /// any worker is touched: the pipes lent to `submit` (and the tasks
    /// written through them), `terminate_workers` / `kill_workers`, and
    /// `interrupt(&future)`.
    fn take_requests(&mut self) {
        self.reclaim_lent_pipes();
        self.terminate_all();
        self.take_interrupts();
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

/// Writing to the pipe of a worker that just died raises SIGPIPE, whose
/// default action kills the whole process. Rust programs ignore it by
/// default, but a program may restore it; blocked in this thread, it stays
/// pending and harmless, and the write returns EPIPE.
fn block_sigpipe_on_this_thread() {
    let mut pipe = nix::sys::signal::SigSet::empty();
    pipe.add(nix::sys::signal::Signal::SIGPIPE);
    let _ = pipe.thread_block();
}
