//! The ledger of one round: every future the round made, what it was meant
//! to end as, and how many times its done-callback ran.
//!
//! A done-callback is the one thing that runs exactly once per completion,
//! so counting its runs is how the soak proves "every future ends exactly
//! once": zero runs after the pool is down is a future that never ended (a
//! lost task, a hang waiting to happen), two is a double completion.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use future::{Future, FutureError, TaskError};

/// What a task was built to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Return this value.
    Value(u64),
    /// Panic.
    Panic,
    /// Kill its own worker process (process pool).
    Crash,
    /// Outlive the pool's per-task timeout (process pool).
    Timeout,
}

/// How a future actually ended, in the soak's words.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Value(u64),
    Panicked,
    Cancelled,
    /// A process-pool error, by type: `WorkerDied`, `TaskTimedOut`, `WorkerTerminated`.
    Executor(&'static str),
    Other(String),
    NotDone,
}

/// Names a process-pool executor error by its type.
fn executor_error_name(e: &future::DynError) -> &'static str {
    if e.downcast_ref::<process_pool::WorkerDied>().is_some() {
        "WorkerDied"
    } else if e.downcast_ref::<process_pool::TaskTimedOut>().is_some() {
        "TaskTimedOut"
    } else if e.downcast_ref::<process_pool::WorkerTerminated>().is_some() {
        "WorkerTerminated"
    } else {
        "other executor error"
    }
}

/// Reads a done future's ending without blocking.
pub fn ended(future: &Future<u64>) -> Ended {
    if !future.done() {
        return Ended::NotDone;
    }
    match future.result_timeout(std::time::Duration::ZERO) {
        Ok(v) => Ended::Value(v),
        Err(FutureError::Cancelled) => Ended::Cancelled,
        Err(FutureError::Task(TaskError::Panicked(_))) => Ended::Panicked,
        Err(FutureError::Task(TaskError::Executor(e))) => Ended::Executor(executor_error_name(&e)),
        Err(other) => Ended::Other(other.to_string()),
    }
}

/// What the round's ending allows beyond each task's own outcome.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allowances {
    /// `shutdown(cancel_futures = true)` or `terminate/kill_workers` ran:
    /// any task may have been cancelled before it started.
    pub cancel_any: bool,
    /// `terminate_workers`/`kill_workers` ran: a running task may end as
    /// `WorkerTerminated`.
    pub terminated: bool,
}

struct Entry {
    future: Future<u64>,
    expect: Expect,
    /// Our own `cancel()` on it returned true.
    cancelled_by_us: bool,
    callbacks: Arc<AtomicU32>,
}

/// All futures of one round. Shared by the round's threads.
#[derive(Clone, Default)]
pub struct Ledger {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Ledger {
    /// Records a future and hooks the callback that counts its endings.
    pub fn record(&self, future: &Future<u64>, expect: Expect) {
        self.record_with(future, expect, false);
    }

    /// Records a future that the caller tried to cancel.
    pub fn record_with(&self, future: &Future<u64>, expect: Expect, cancelled_by_us: bool) {
        let callbacks = Arc::new(AtomicU32::new(0));
        let count = callbacks.clone();
        future.add_done_callback(move |_| {
            // SeqCst: the checker reads this count after the pool is down;
            // nothing weaker needs defending in a test tool.
            count.fetch_add(1, SeqCst);
        });
        self.entries.lock().unwrap().push(Entry {
            future: future.clone(),
            expect,
            cancelled_by_us,
            callbacks,
        });
    }

    /// Handles to every future recorded so far.
    pub fn futures(&self) -> Vec<Future<u64>> {
        let entries = self.entries.lock().unwrap();
        entries.iter().map(|e| e.future.clone()).collect()
    }

    /// Waits (at most `HANG`) until every done future's callback has run.
    /// A future is done before its callbacks run, on whichever thread runs
    /// them (CPython too): the process pool runs them on its callback
    /// threads, which nothing waits for when the pool's last handle was
    /// dropped inside a callback. Polls without holding the ledger's lock,
    /// which a callback may need to record the futures it makes.
    pub fn settle_callbacks(&self) {
        let deadline = std::time::Instant::now() + crate::round::HANG;
        loop {
            let pending = {
                let entries = self.entries.lock().unwrap();
                entries
                    .iter()
                    .any(|e| e.future.done() && e.callbacks.load(SeqCst) == 0)
            };
            if !pending || std::time::Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Futures recorded so far.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Checks every future once the pool is down: ended exactly once, and
    /// in a way its task and the round's ending allow. Returns the problems.
    pub fn check(&self, allow: Allowances) -> Vec<String> {
        self.settle_callbacks();
        let entries = self.entries.lock().unwrap();
        let mut problems = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let runs = e.callbacks.load(SeqCst);
            let end = ended(&e.future);
            if runs != 1 {
                problems.push(format!(
                    "future #{i} ({:?}) ran its done-callback {runs} times (ended as {end:?})",
                    e.expect
                ));
                continue;
            }
            if !allowed(e.expect, e.cancelled_by_us, &end, allow) {
                problems.push(format!(
                    "future #{i} was built to {:?} (cancelled by us: {}) but ended as {end:?}",
                    e.expect, e.cancelled_by_us
                ));
            }
        }
        problems
    }
}

fn allowed(expect: Expect, cancelled_by_us: bool, end: &Ended, allow: Allowances) -> bool {
    if cancelled_by_us {
        // cancel() returned true: the task never started, so nothing else.
        return *end == Ended::Cancelled;
    }
    match end {
        Ended::Cancelled => allow.cancel_any,
        Ended::Executor("WorkerTerminated") => allow.terminated,
        Ended::Value(v) => expect == Expect::Value(*v),
        Ended::Panicked => expect == Expect::Panic,
        Ended::Executor("WorkerDied") => expect == Expect::Crash,
        Ended::Executor("TaskTimedOut") => expect == Expect::Timeout,
        _ => false,
    }
}
