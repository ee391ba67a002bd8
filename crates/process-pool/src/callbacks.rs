//! Where done-callbacks run: never on the dispatcher thread.
//!
//! A future's done-callbacks (and `Future::map` closures, which are
//! callbacks) are user code, and user code may block: a callback that
//! submits to the same pool and waits for the result would, on the
//! dispatcher thread, wait for the very thread that must deliver that
//! result. Python runs them on its manager thread and shares that trap; we
//! do not. The dispatcher completes each future with
//! `Promise::set_outcome_deferred`: readers and waiters are woken at once,
//! and only a future that *has* callbacks costs more, a job handed to this
//! runner.
//!
//! The runner is a small elastic set of threads per pool: a job goes to an
//! idle runner thread if there is one, else a new thread starts, so a
//! callback that blocks (even on another callback's work, through
//! `Future::map` chains) never holds up the next one. A thread idle for
//! `IDLE_EXIT` exits; a waited shutdown joins them all once the dispatcher
//! is gone (no job can come after that), as Python's `shutdown(wait=True)`
//! waits for its manager thread, which ran the callbacks.
//!
//! ```text
//!  dispatcher --job--> queue --(idle thread? notify : spawn)--> runner thread
//!                                                            runs it, then waits
//!                                                            (IDLE_EXIT -> exits)
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A deferred run of one future's callbacks.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// How long a runner thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(2);

thread_local! {
    /// Set on runner threads, so a waited shutdown from a callback does not
    /// wait for the callback that calls it.
    static ON_RUNNER: Cell<bool> = const { Cell::new(false) };
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// No more jobs will come: threads exit once the queue is empty.
    closed: bool,
    /// Runner threads started and not yet exited.
    live: usize,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// A job was queued (or the runner closed).
    work: Condvar,
    /// A runner thread exited.
    gone: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, and run_callbacks catches their panics:
        // a poisoned lock can only come from a bug here; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The callback threads of one pool.
#[derive(Default)]
pub(crate) struct CallbackRunner {
    inner: Arc<Inner>,
}

impl CallbackRunner {
    /// Runs `job` on a runner thread, starting one if none is idle.
    pub fn run(&self, job: Job) {
        let mut s = self.inner.lock();
        s.jobs.push_back(job);
        // Every queued job has an idle thread that will take it, or a new one.
        if s.jobs.len() <= s.idle {
            drop(s);
            self.inner.work.notify_one();
            return;
        }
        let inner = Arc::clone(&self.inner);
        let spawned = thread::Builder::new()
            .name("process-pool-callbacks".into())
            .spawn(move || serve(&inner));
        match spawned {
            Ok(handle) => {
                s.live += 1;
                s.threads.retain(|h| !h.is_finished());
                s.threads.push(handle);
            }
            Err(_) => {
                // No thread to be had: run it here rather than lose it.
                let job = s.jobs.pop_back().expect("pushed above");
                drop(s);
                job();
            }
        }
    }

    /// Lets the threads finish the queued jobs and exit, and waits until
    /// they have; every caller waits, not only the first. On a runner
    /// thread (a callback shutting a pool down) it does not wait: that
    /// thread cannot exit while it is here, and two such callbacks would
    /// wait for each other. The mark is per thread, not per pool: a
    /// callback of one pool shutting down another does not wait for the
    /// other's callbacks either (no deadlock; a weaker guarantee).
    pub fn close_and_join(&self) {
        let mut s = self.inner.lock();
        s.closed = true;
        self.inner.work.notify_all();
        if on_runner_thread() {
            return;
        }
        while s.live > 0 {
            s = self.inner.gone.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        let threads = std::mem::take(&mut s.threads);
        drop(s);
        for t in threads {
            // Each has left `serve`; join only reaps the thread.
            let _ = t.join();
        }
    }
}

/// True on a callback runner thread.
pub(crate) fn on_runner_thread() -> bool {
    ON_RUNNER.with(Cell::get)
}

fn serve(inner: &Inner) {
    ON_RUNNER.with(|f| f.set(true));
    let mut s = inner.lock();
    loop {
        if let Some(job) = s.jobs.pop_front() {
            drop(s);
            job();
            s = inner.lock();
            continue;
        }
        if s.closed {
            break;
        }
        s.idle += 1;
        let (guard, timeout) = inner
            .work
            .wait_timeout(s, IDLE_EXIT)
            .unwrap_or_else(|p| p.into_inner());
        s = guard;
        s.idle -= 1;
        if timeout.timed_out() && s.jobs.is_empty() {
            break; // idle too long; the handle is pruned or joined later
        }
    }
    s.live -= 1;
    drop(s);
    inner.gone.notify_all();
}
