//! Results out: from the workers' result pipes to the futures.
//!
//! `read` takes what a worker wrote (up to 16 reads a turn, so that one
//! busy worker does not starve the others), `handle_frames` splits it into
//! frames, and a `RESULT` completes the worker's head task: the codec
//! decodes the outcome (`codec::decode_result`), the descriptors sent with
//! it are taken (`receive_result_fds`), and `complete_head` hands the
//! outcome to the future, with what the task cost. A frame the pool cannot
//! read kills the worker (`death::protocol_fault`).

use std::io;
use std::os::fd::AsRawFd;
// Relaxed on the statistics counters: see the `stats` module.
use std::sync::atomic::Ordering::Relaxed;

use super::worker::{EndReason, Phase, Worker};
use super::Dispatcher;
use crate::parent::task::Task;
use crate::sys;
use crate::wire::codec;
use crate::wire::cost::Cost;
use crate::wire::fd_passing;
use crate::wire::frame::{self, FrameBuf, FrameError};

impl Dispatcher {
    /// Reads whatever worker `i` sent and handles complete frames.
    pub(super) fn read(&mut self, i: usize) {
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
        if w.ended_by() == Some(EndReason::Timeout) {
            // Killed for a timeout, it answered all the same.
            w.answered_after_kill = true;
            if w.inflight.front().map(|t| t.id) != Some(result.id) {
                // The timed-out head's result, too late: its future failed.
                // Its descriptors are taken (and closed) to keep the next
                // result's in step.
                drop(receive_result_fds(w, &result)?);
                return Ok(());
            }
        }
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
        let Task { frame, sink, .. } = task;
        self.shared.recycle_buffer(frame);
        match result.outcome {
            // A small result without descriptors is completed just before
            // the loop sleeps (see `Finished`).
            Ok(bytes) if !result.has_fds && bytes.len() <= DEFER_MAX => {
                self.finished.push(Finished {
                    sink,
                    outcome: Ok(bytes.to_vec()),
                });
            }
            Err(error) if !result.has_fds => self.finished.push(Finished {
                sink,
                outcome: Err(error),
            }),
            // The result decodes with its descriptors installed; unused
            // ones close at the end of the scope. Those read before it
            // complete first.
            outcome => {
                self.complete_finished();
                let counters = &self.shared.counters;
                fd_passing::with_incoming(received.fds, received.truncated, || {
                    sink.complete(outcome, counters)
                })
            }
        }
        self.retire_at_limit(i);
        Ok(())
    }

    /// Completes the futures whose results came this turn (see
    /// `Finished`): called when the idle workers' pipes are lent, just
    /// before the loop sleeps, and when it ends; and before any other
    /// future is completed, so that futures complete in the order the pool
    /// learnt their outcomes (a result read before its worker's death is
    /// completed before the death fails the next task).
    pub(super) fn complete_finished(&mut self) {
        let counters = &self.shared.counters;
        for Finished { sink, outcome } in self.finished.drain(..) {
            match outcome {
                Ok(bytes) => sink.complete(Ok(&bytes), counters),
                Err(error) => sink.complete(Err(error), counters),
            }
        }
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
}

/// Results up to this size are completed at the end of the loop's turn
/// (copied out of the worker's input buffer); bigger ones, and results
/// with descriptors, are completed as they are read (a copy would cost
/// more than the wake-up order saves).
const DEFER_MAX: usize = 4096;

/// A task whose result came, to be completed at the end of the loop's
/// turn, once the pipes of idle workers are lent to `submit`.
///
/// # Why the wake-up waits
///
/// Completing a future wakes its caller, who typically submits its next
/// task at once. If the pipes are not lent yet (the loop takes them back
/// after every `poll` and lends them again only when it is about to
/// sleep), that task cannot be handed straight to the idle worker: it is
/// queued, the doorbell rings, and the round trip costs two more thread
/// switches (the caller blocks, the pool's thread writes the frame). So
/// the loop completes what it read only after `intake` has lent the idle
/// workers' pipes (`tests/round_trip_path.rs`).
pub(super) struct Finished {
    sink: Box<dyn crate::parent::task::Sink>,
    outcome: Result<Vec<u8>, future::TaskError>,
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
