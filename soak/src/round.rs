//! What the threads of one round share: the ledger, the problems found, and
//! the counters that `stats()` must agree with at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use future::FutureError;

use crate::ledger::{Allowances, Ledger};
use crate::rng::Rng;

/// How long any single wait in a round may take before the soak calls it a
/// hang. Generous: a loaded 2-core machine must never trip it.
pub const HANG: Duration = Duration::from_secs(60);

/// The state one round's threads share. Counters are SeqCst: this is a test
/// tool, and its readers run after the writers are joined.
#[derive(Clone, Default)]
pub struct Round {
    pub ledger: Ledger,
    problems: Arc<Mutex<Vec<String>>>,
    /// Set just before the round calls `shutdown` (or drops the pool).
    pub shut: Arc<AtomicBool>,
    /// Tasks the pool accepted through `submit`.
    pub accepted: Arc<AtomicU64>,
    /// Submits the pool refused because it was shut down.
    pub refused: Arc<AtomicU64>,
    /// `map` was used, so `stats()` counts tasks the soak cannot count.
    pub mapped: Arc<AtomicBool>,
    /// Map results that were errors, to judge once the round's ending is known.
    map_errors: Arc<Mutex<Vec<String>>>,
    /// Done-callbacks blocked right now in a wait on their own pool.
    pub waiting_callbacks: Arc<AtomicU64>,
    /// Map items read.
    pub map_items: Arc<AtomicU64>,
}

impl Round {
    pub fn problem(&self, what: String) {
        self.problems.lock().unwrap().push(what);
    }

    /// A submit was refused: fine after shutdown, a problem before.
    pub fn refused(&self, what: &str, error: &dyn std::fmt::Display) {
        if self.shut.load(SeqCst) {
            self.refused.fetch_add(1, SeqCst);
        } else {
            self.problem(format!("{what} refused before any shutdown: {error}"));
        }
    }

    /// Checks one `map` result: a value must be the one for its index; an
    /// error is kept to be judged at the end.
    pub fn map_result(&self, index: u64, expected: u64, result: Result<u64, FutureError>) {
        self.map_items.fetch_add(1, SeqCst);
        match result {
            Ok(v) if v == expected => {}
            Ok(v) => self.problem(format!("map item {index}: got {v}, expected {expected}")),
            Err(e) => self
                .map_errors
                .lock()
                .unwrap()
                .push(format!("item {index}: {e}")),
        }
    }

    /// Every problem of the round, with map errors judged against its ending:
    /// an eager `map` (the default) loses nothing to a plain shutdown; only a
    /// cancelling ending may cancel its items, and only a windowed map may
    /// report items it had not submitted yet as "shut down".
    pub fn problems(&self, allow: Allowances, windowed_ok: bool) -> Vec<String> {
        let mut all = self.problems.lock().unwrap().clone();
        for e in self.map_errors.lock().unwrap().iter() {
            let cancelled = e.contains("cancelled");
            let shut_down = e.contains("shut down");
            let ok = (cancelled && allow.cancel_any) || (shut_down && windowed_ok);
            if !ok {
                all.push(format!("map error the round's ending does not allow: {e}"));
            }
        }
        all.extend(self.ledger.check(allow));
        all
    }
}

/// Runs `threads` submitter threads, each with its own generator, and joins
/// them; with `early`, calls `shut_down` (a shutdown that does not wait)
/// while they are still at work. Afterwards the round counts as shut.
pub fn run_submitters<P: Send + Sync + 'static>(
    pool: &Arc<P>,
    round: &Round,
    rng: &mut Rng,
    threads: u64,
    early: bool,
    shut_down: impl FnOnce(&P),
    submitter: fn(&Arc<P>, &Round, &mut Rng),
) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, round, mut rng) = (pool.clone(), round.clone(), rng.split());
            std::thread::spawn(move || submitter(&pool, &round, &mut rng))
        })
        .collect();
    if early {
        round.shut.store(true, SeqCst);
        shut_down(pool);
    }
    for h in handles {
        if h.join().is_err() {
            round.problem("a submitter thread panicked".into());
        }
    }
    round.shut.store(true, SeqCst);
}
