//! A worker's stop, as something its timed waits sleep on.
//!
//! The stop itself is a flag (`AtomicBool`) that the fetch loop reads at
//! each of its blocking waits on Redis. The worker's other waits (the
//! restore thread between rounds, the pauses between start-up retries, the
//! pidbox's reconnects) used to wake every 100-200 ms to read it; they now
//! sleep on a [`Bell`] that is rung after the flag is set, so an idle
//! worker's threads wake only when something happens.
//!
//! No wake-up is lost: a pause reads the flag with the bell's lock held,
//! and [`Bell::ring`] takes that lock after the flag is set, so a pause
//! either sees the flag or is already waiting when the notification comes
//! (the condition variable releases the lock and sleeps in one step).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the worker's pauses sleep on; rung after its stop flag is set.
#[derive(Default)]
pub(crate) struct Bell {
    lock: Mutex<()>,
    rung: Condvar,
}

impl Bell {
    /// Wakes every pause (call it after setting the stop flag).
    pub(crate) fn ring(&self) {
        drop(lock(&self.lock));
        self.rung.notify_all();
    }

    /// Sleeps for `d` (`Duration::MAX`: until the worker stops), or until
    /// `stop` is set and the bell rung; false if it was the stop.
    pub(crate) fn pause_unless_stopped(&self, stop: &AtomicBool, d: Duration) -> bool {
        // `None`: further away than the clock reaches, so only the stop ends it.
        let end = Instant::now().checked_add(d);
        let mut guard = lock(&self.lock);
        loop {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            let left = end.map_or(Duration::MAX, |end| {
                end.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return true;
            }
            // A spurious wake-up only goes round the loop again.
            guard = self
                .rung
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Stops a running [`Worker`](crate::Worker) and wakes its pauses at once
/// (the flag of [`Worker::stop_flag`](crate::Worker::stop_flag) alone is
/// seen by the fetch within a second, and by a pause only when it ends).
/// Get it with [`Worker::stop_handle`](crate::Worker::stop_handle); it may be
/// cloned and sent to another thread.
#[derive(Clone)]
pub struct StopHandle {
    pub(crate) flag: Arc<AtomicBool>,
    pub(crate) bell: Arc<Bell>,
}

impl StopHandle {
    /// A warm shutdown: the worker fetches nothing more, finishes the
    /// running tasks, returns the held ones to their queues, and
    /// [`Worker::run`](crate::Worker::run) returns.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.bell.ring();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
