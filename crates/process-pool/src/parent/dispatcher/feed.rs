//! Tasks in: from the pool's queue to the workers' task pipes.
//!
//! `intake` takes queued tasks while some worker has room (`pick`: an idle
//! worker first, else a new one while fewer than `max_workers` accept, else
//! the least loaded one under its pipeline depth), forking workers on
//! demand (`spawn`: this is also how a dead worker is replaced). `write`
//! then writes as much of the assigned frames as each pipe takes, never
//! blocking; what is left waits for `POLLOUT`. A task that carries
//! `SharedBytes` has its descriptors sent first (`send_next_fds`).

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
// Relaxed on the statistics counters: see the `stats` module.
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::worker::{EndReason, Phase, Worker};
use super::Dispatcher;
use crate::child::fork_server;
use crate::error::CodecStage;
use crate::parent::stats::Counters;
use crate::parent::task::{codec_error, Task};
use crate::sys;
use crate::wire::fd_passing;

/// Where the next queued task goes.
enum Pick {
    Worker(usize),
    Spawn,
    Full,
}

impl Dispatcher {
    /// Moves queued tasks to workers (forking workers as needed). Returns
    /// true when the dispatcher is done.
    pub(super) fn intake(&mut self) -> bool {
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
                    let has_fds = q.tasks.front().is_some_and(|t| !t.fds.is_empty());
                    if has_fds && !self.workers[i].inflight.is_empty() {
                        // A task with descriptors goes to an idle worker
                        // only (see `fd_passing`): it waits for one in the
                        // queue, not yet running, so still cancellable.
                        q.dispatcher_waiting = false;
                        return false;
                    }
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
    pub(super) fn write(&mut self, i: usize) {
        // A task whose descriptors cannot be sent fails in `send_next_fds`:
        // the results read before it come first (`complete_finished`).
        let unsent = &self.workers[i].inflight;
        if unsent
            .iter()
            .skip(self.workers[i].sent)
            .any(|t| !t.fds.is_empty())
        {
            self.complete_finished();
        }
        let w = &mut self.workers[i];
        let Some(fd) = w.task_pipe() else {
            return;
        };
        while w.sent < w.inflight.len() {
            if !send_next_fds(w, &self.shared.counters) {
                continue; // that task failed; the next one is tried
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
}

/// Sends the descriptors of worker `w`'s next unwritten task, if it carries
/// `SharedBytes` and they were not sent yet: they go before the frame's
/// first byte (see `fd_passing`). If they cannot be sent, that task fails
/// (its future says why) and is taken off: returns false.
fn send_next_fds(w: &mut Worker, counters: &Counters) -> bool {
    if w.fds_sent || w.offset != 0 || w.inflight[w.sent].fds.is_empty() {
        return true;
    }
    let task = &w.inflight[w.sent];
    match fd_passing::send(w.fds.as_raw_fd(), task.id, &task.fds, true) {
        Ok(()) => {
            w.fds_sent = true;
            true
        }
        Err(e) => {
            let Some(task) = w.inflight.remove(w.sent) else {
                return false;
            };
            counters.tasks_running.fetch_sub(1, Relaxed);
            let message = format!(
                "could not pass the argument's SharedBytes descriptors to worker {}: {e}",
                w.pid
            );
            task.sink
                .complete(Err(codec_error(CodecStage::EncodeArgs, message)), counters);
            false
        }
    }
}
