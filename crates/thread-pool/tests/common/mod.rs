//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A generous upper bound for "this must not hang" (2 noisy cores).
pub const LONG: Duration = Duration::from_secs(30);

/// A gate tasks block on until the test opens it (Python's Event).
#[derive(Clone, Default)]
pub struct Event {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Event {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&self) {
        *self.inner.0.lock().unwrap() = true;
        self.inner.1.notify_all();
    }

    /// Waits until set, at most `LONG`; returns whether it was set.
    pub fn wait(&self) -> bool {
        let guard = self.inner.0.lock().unwrap();
        let (guard, _) = self
            .inner
            .1
            .wait_timeout_while(guard, LONG, |set| !*set)
            .unwrap();
        *guard
    }

    pub fn is_set(&self) -> bool {
        *self.inner.0.lock().unwrap()
    }
}

/// The OS names of this process's threads whose name starts with `prefix`
/// (Linux shows at most 15 bytes of a name, so keep prefixes short).
pub fn os_threads_named(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
                let comm = comm.trim_end().to_string();
                if comm.starts_with(prefix) {
                    names.push(comm);
                }
            }
        }
    }
    names
}

/// The OS names and scheduler states (`R` running, `S` sleeping, ...) of
/// this process's threads whose name starts with `prefix`.
pub fn os_thread_states(prefix: &str) -> Vec<(String, char)> {
    let mut states = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
                continue;
            };
            let name = comm.trim_end().to_string();
            if !name.starts_with(prefix) {
                continue;
            }
            // `stat` is "tid (comm) state ...": the state follows the last ')'.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some(state) = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.trim().chars().next())
            {
                states.push((name, state));
            }
        }
    }
    states
}

/// Polls `cond` until true or `LONG` passes. For tests only, where the
/// thing awaited has no completion signal of its own (thread exit).
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + LONG;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// True once no OS thread named `prefix*` is left. A joined thread has
/// finished its code and its thread-locals, but the kernel removes it from
/// `/proc` a moment later, so this waits (at most `LONG`).
pub fn threads_gone(prefix: &str) -> bool {
    eventually(|| os_threads_named(prefix).is_empty())
}

thread_local! {
    static LIVE_GUARD: std::cell::RefCell<Option<LiveGuard>> = const { std::cell::RefCell::new(None) };
}

struct LiveGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An initializer that counts live worker threads in `live`: +1 when a
/// worker starts, -1 from a thread-local destructor when it ends, which
/// runs before `join` returns. So after `shutdown(wait = true)`, `live` is
/// exactly 0 if no worker outlived it.
pub fn counting_initializer(
    live: Arc<std::sync::atomic::AtomicUsize>,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    move || {
        live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        LIVE_GUARD.with(|g| *g.borrow_mut() = Some(LiveGuard(live.clone())));
        Ok(())
    }
}

/// A counting semaphore (std `Mutex` + `Condvar`) whose `acquire` gives up
/// after `HANG_GUARD`: from then on every `acquire` fails at once, so a map
/// that would hang ends and its test fails, saying which item waited.
#[derive(Clone)]
pub struct Semaphore {
    inner: Arc<(Mutex<(usize, bool)>, Condvar)>,
}

/// How long an `acquire` waits before the semaphore calls it a hang.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

impl Semaphore {
    pub fn new(permits: usize) -> Self {
        Semaphore {
            inner: Arc::new((Mutex::new((permits, false)), Condvar::new())),
        }
    }

    /// Takes a permit; false if none came within `HANG_GUARD` (or an
    /// earlier `acquire` already gave up).
    pub fn acquire(&self) -> bool {
        let guard = self.inner.0.lock().unwrap();
        let (mut guard, _) = self
            .inner
            .1
            .wait_timeout_while(guard, HANG_GUARD, |(permits, hung)| *permits == 0 && !*hung)
            .unwrap();
        if guard.1 || guard.0 == 0 {
            guard.1 = true;
            self.inner.1.notify_all();
            return false;
        }
        guard.0 -= 1;
        true
    }

    pub fn release(&self) {
        self.inner.0.lock().unwrap().0 += 1;
        self.inner.1.notify_all();
    }
}

/// A map item that counts itself and blocks on `gate` if it is `hold`,
/// saying so on `started` first.
pub fn counted_holding(
    ran: &Arc<AtomicUsize>,
    hold: u32,
    started: &Event,
    gate: &Event,
) -> impl Fn(u32) -> u32 + Send + Sync + 'static {
    let (ran, started, gate) = (ran.clone(), started.clone(), gate.clone());
    move |x| {
        ran.fetch_add(1, SeqCst);
        if x == hold {
            started.set();
            assert!(gate.wait(), "the test never opened the gate");
        }
        x
    }
}

/// A map item that takes one of the consumer's permits: `Some(x)`, or
/// `None` if it waited `HANG_GUARD` for one (the map would have hung).
pub fn takes_a_permit(sem: &Semaphore) -> impl Fn(u32) -> Option<u32> + Send + Sync + 'static {
    let sem = sem.clone();
    move |x| sem.acquire().then_some(x)
}

/// Checks that every item got its permit, in order.
pub fn check_every_item_got_a_permit(out: &[Option<u32>], n: u32) {
    assert_eq!(out.len(), n as usize);
    if let Some(first) = out.iter().position(Option::is_none) {
        panic!(
            "item {first} waited {:?} for a permit the consumer releases per result: \
             the results before it never reached the consumer (the map hung)",
            HANG_GUARD
        );
    }
    assert!(out.iter().enumerate().all(|(i, v)| *v == Some(i as u32)));
}
