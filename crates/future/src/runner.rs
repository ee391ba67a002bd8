//! A runner for done-callbacks: threads an executor lends its futures'
//! callbacks to, so that they never run on the one thread that delivers
//! results.
//!
//! A future's done-callbacks (and `Future::map` closures, which are
//! callbacks) are user code, and user code may block: a callback that
//! submits to the same executor and waits for the result would, on the
//! thread that delivers results (a process pool's dispatcher, a Celery
//! executor's listener), wait for the very thread that must deliver that
//! result; a callback that drops the executor's last handle would make it
//! join itself. Python runs them on its manager thread and shares that trap;
//! we do not. Such an executor completes each future with
//! [`Promise::set_outcome_deferred`](crate::Promise::set_outcome_deferred):
//! readers and waiters are woken at once, and only a future that *has*
//! callbacks costs more, a job handed to this runner.
//!
//! The runner is a small elastic set of threads per executor: a job goes to
//! an idle runner thread if there is one, else a new thread starts, so a
//! callback that blocks (even on another callback's work, through
//! `Future::map` chains) never holds up the next one. A thread idle for
//! `IDLE_EXIT` exits; [`CallbackRunner::close_and_join`] joins them all once
//! no job can come any more, as Python's `shutdown(wait=True)` waits for its
//! manager thread, which ran the callbacks.
//!
//! Every job runs under [`contain`]: the callbacks themselves are caught
//! one by one, but the job's end can still run user code (the drop of the
//! last handle to a future drops its value), and a runner thread that died
//! there would leave `live` counting it, so `close_and_join` would wait for
//! it forever.
//!
//! ```text
//!  completer --job--> queue --(idle thread? notify : spawn)--> runner thread
//!                                                           runs it, then waits
//!                                                           (IDLE_EXIT -> exits)
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::contain::contain;

/// A deferred run of one future's callbacks (what
/// [`Promise::set_outcome_deferred`](crate::Promise::set_outcome_deferred)
/// hands over).
pub type CallbackJob = Box<dyn FnOnce() + Send>;

/// How long a runner thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(2);

thread_local! {
    /// Set on runner threads, so a waited shutdown from a callback does not
    /// wait for the callback that calls it.
    static ON_RUNNER: Cell<bool> = const { Cell::new(false) };
}

#[derive(Default)]
struct State {
    jobs: VecDeque<CallbackJob>,
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
        // Jobs run outside the lock, under `contain`: a poisoned lock can
        // only come from a bug here; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The callback threads of one executor.
///
/// ```
/// let runner = future::CallbackRunner::new("my-callbacks");
/// let (promise, future) = future::promise::<u8>();
/// let (tx, rx) = std::sync::mpsc::channel();
/// future.add_done_callback(move |f| tx.send(f.result().unwrap()).unwrap());
/// promise.set_outcome_deferred(Ok(7), |job| runner.run(job)).unwrap();
/// assert_eq!(rx.recv().unwrap(), 7);
/// runner.close_and_join();
/// ```
pub struct CallbackRunner {
    inner: Arc<Inner>,
    /// The threads' name (and the name in a contained panic's report).
    name: String,
}

impl CallbackRunner {
    /// A runner whose threads are named `thread_name`. No thread starts
    /// before the first job.
    pub fn new(thread_name: &str) -> Self {
        CallbackRunner {
            inner: Arc::default(),
            name: thread_name.to_string(),
        }
    }

    /// Runs `job` on a runner thread, starting one if none is idle. After
    /// [`close_and_join`](Self::close_and_join) the job still runs (on a new
    /// thread, which exits after it); the caller decides whether jobs may
    /// still come.
    pub fn run(&self, job: CallbackJob) {
        let mut s = self.inner.lock();
        s.jobs.push_back(job);
        // Every queued job has an idle thread that will take it, or a new one.
        if s.jobs.len() <= s.idle {
            drop(s);
            self.inner.work.notify_one();
            return;
        }
        let inner = Arc::clone(&self.inner);
        let name = self.name.clone();
        let spawned = thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || serve(&inner, &name));
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
                contain(&self.name, "a callback job", job);
            }
        }
    }

    /// Lets the threads finish the queued jobs and exit, and waits until
    /// they have; every caller waits, not only the first. On a runner
    /// thread (a callback shutting its executor down) it does not wait:
    /// that thread cannot exit while it is here, and two such callbacks
    /// would wait for each other. The mark is per thread, not per runner: a
    /// callback of one executor shutting down another does not wait for the
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

impl Default for CallbackRunner {
    fn default() -> Self {
        Self::new("future-callbacks")
    }
}

/// True on a callback runner thread (of any runner): a callback is running
/// here, so an executor's waited shutdown must not wait for this thread.
pub fn on_runner_thread() -> bool {
    ON_RUNNER.with(Cell::get)
}

fn serve(inner: &Inner, name: &str) {
    ON_RUNNER.with(|f| f.set(true));
    let mut s = inner.lock();
    loop {
        if let Some(job) = s.jobs.pop_front() {
            drop(s);
            contain(name, "a callback job", job);
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
