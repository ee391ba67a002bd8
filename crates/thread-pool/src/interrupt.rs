//! Cooperative interruption: the [`InterruptToken`] a task asks for.
//!
//! A thread cannot be stopped from outside safely: killing it would leave
//! every lock it holds locked and every invariant it was restoring broken.
//! So on threads, interrupting a running task is a request the task itself
//! honours. A task submitted with
//! [`submit_interruptible`](crate::ThreadPoolExecutor::submit_interruptible)
//! gets a token; [`interrupt`](crate::ThreadPoolExecutor::interrupt) sets
//! it; the task polls it ([`InterruptToken::check`]) between steps, or
//! blocks on it instead of sleeping ([`InterruptToken::sleep`]), and returns
//! the [`Interrupted`] error it got. That error is the only way to build
//! one, so a future that ends with it says the task saw the request and
//! stopped; a future that ends with a value says the task ran to its end
//! (it never looked, or finished first).
//!
//! The pool finds a future's token through [`Tokens`]: a map from
//! [`Future::id`] to the token, entered at submit and removed by a
//! done-callback, so the entry lives exactly as long as the future is not
//! done (and its id, an address, cannot be reused while the entry exists).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use future::Future;

/// The flag behind a token: set once, never cleared.
#[derive(Default)]
struct State {
    /// Read without the lock by `check`; written under it, so a sleeper
    /// that checked it under the lock cannot miss the notification.
    set: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl State {
    fn guard(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data (only the flag's write-then-notify), so a
        // poisoned one is as good as a healthy one.
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self) {
        let _guard = self.guard();
        self.set.store(true, SeqCst);
        self.wake.notify_all();
    }
}

/// A running task's view of [`interrupt`](crate::ThreadPoolExecutor::interrupt):
/// poll it between steps, or sleep on it.
#[derive(Clone, Default)]
pub struct InterruptToken {
    state: Arc<State>,
}

impl InterruptToken {
    /// A token nobody has set, for calling an interruptible task's body
    /// directly (in a test, or outside a pool).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the task was asked to stop.
    pub fn is_interrupted(&self) -> bool {
        self.state.set.load(SeqCst)
    }

    /// `Err(Interrupted)` once the task was asked to stop: write
    /// `token.check()?` between steps.
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.is_interrupted() {
            Err(Interrupted { _seen: () })
        } else {
            Ok(())
        }
    }

    /// Sleeps for `duration`, or less if the task is asked to stop first
    /// (then `Err(Interrupted)`, at once). A `duration` too large for the
    /// clock sleeps until the request comes.
    pub fn sleep(&self, duration: Duration) -> Result<(), Interrupted> {
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self.state.guard();
        loop {
            self.check()?;
            match deadline {
                None => {
                    guard = self
                        .state
                        .wake
                        .wait(guard)
                        .unwrap_or_else(|p| p.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(());
                    }
                    guard = self
                        .state
                        .wake
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }

    /// Sets the token (what `interrupt` does; also for driving a task's
    /// body by hand in a test).
    pub fn interrupt(&self) {
        self.state.set();
    }
}

impl fmt::Debug for InterruptToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptToken")
            .field("interrupted", &self.is_interrupted())
            .finish()
    }
}

/// The task saw its [`InterruptToken`] set and stopped. Only the token
/// makes one, so a future failed with it (inside
/// `TaskError::Executor`) says the interruption took effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    _seen: (),
}

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted by request: the task saw its interrupt token and stopped")
    }
}

impl std::error::Error for Interrupted {}

/// `interrupt` was given a future whose task has no token: it was
/// submitted with `submit` (or is not this pool's), and a thread cannot be
/// stopped from outside. Nothing was done; the task runs to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotInterruptible;

impl fmt::Display for NotInterruptible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "this running task cannot be interrupted: a thread cannot be stopped from outside, \
             so only a task submitted with submit_interruptible (which gets an InterruptToken \
             to check) can be; the task runs to its end",
        )
    }
}

impl std::error::Error for NotInterruptible {}

/// The tokens of this pool's futures that are not done, by future id.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    map: Arc<Mutex<HashMap<usize, InterruptToken>>>,
}

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<usize, InterruptToken>> {
        // Every operation is a single insert, remove or lookup: a poisoned
        // map is still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters `token` for `future` until the future is done.
    pub(crate) fn register<T>(&self, future: &Future<T>, token: InterruptToken) {
        let id = future.id();
        self.lock().insert(id, token);
        let tokens = self.clone();
        future.add_done_callback(move |_| {
            tokens.lock().remove(&id);
        });
    }

    /// The token of the future with this id, if it has one and is not done.
    pub(crate) fn get(&self, future_id: usize) -> Option<InterruptToken> {
        self.lock().get(&future_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_and_sleep_see_the_request() {
        let token = InterruptToken::new();
        assert!(token.check().is_ok());
        assert!(token.sleep(Duration::ZERO).is_ok());
        token.interrupt();
        assert_eq!(token.check(), Err(Interrupted { _seen: () }));
        assert!(token.sleep(Duration::MAX).is_err(), "returns at once");
    }

    #[test]
    fn a_sleeper_is_woken_by_the_request() {
        let token = InterruptToken::new();
        let sleeper = {
            let token = token.clone();
            std::thread::spawn(move || token.sleep(Duration::MAX))
        };
        token.interrupt();
        assert!(sleeper.join().unwrap().is_err());
    }

    #[test]
    fn an_entry_lives_until_its_future_is_done() {
        let tokens = Tokens::default();
        let (finished, f) = future::promise::<u8>();
        let (_dropped, cancelled) = future::promise::<u8>();
        tokens.register(&f, InterruptToken::new());
        tokens.register(&cancelled, InterruptToken::new());
        assert!(tokens.get(f.id()).is_some());
        assert_eq!(tokens.lock().len(), 2);
        finished.set_result(1).unwrap();
        assert!(cancelled.cancel());
        assert!(tokens.get(f.id()).is_none());
        assert_eq!(tokens.lock().len(), 0, "the map does not grow");
    }
}
