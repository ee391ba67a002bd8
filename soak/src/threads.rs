//! One round against the thread pool.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use future::{wait, FutureError, ReturnWhen};
use thread_pool::{MapOptions, ThreadPoolExecutor};

use crate::ledger::{Allowances, Expect};
use crate::rng::Rng;
use crate::round::{run_submitters, Round, HANG};
use crate::Outcome;

/// How a round ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// `shutdown(wait = true, cancel_futures)`, then `stats()` is checked.
    Wait { cancel: bool },
    /// `shutdown(wait = false, cancel_futures)`, then the last handle is dropped.
    NoWait { cancel: bool },
    /// The round's handle is dropped (a callback may hold the last one, so the
    /// pool may be dropped on one of its own workers).
    Drop,
}

pub fn round(rng: &mut Rng) -> Outcome {
    let pool = Arc::new(
        ThreadPoolExecutor::builder()
            .max_workers(rng.range(1, 6) as usize)
            .thread_name_prefix("soak")
            .build()
            .expect("a thread pool builds"),
    );
    let round = Round::default();
    let ending = match rng.range(0, 4) {
        0 | 1 => Ending::Wait {
            cancel: rng.one_in(2),
        },
        2 => Ending::NoWait {
            cancel: rng.one_in(2),
        },
        _ => Ending::Drop,
    };
    // Sometimes shut down while the submitters are still at work.
    let early = rng.one_in(4);

    let threads = rng.range(1, 4);
    run_submitters(
        &pool,
        &round,
        rng,
        threads,
        early,
        |p| p.shutdown(false, false),
        submitter,
    );

    let allow = Allowances {
        cancel_any: matches!(
            ending,
            Ending::Wait { cancel: true } | Ending::NoWait { cancel: true }
        ),
        terminated: false,
    };
    match ending {
        Ending::Wait { cancel } => {
            pool.shutdown(true, cancel);
            check_stats(&pool, &round);
        }
        Ending::NoWait { cancel } => pool.shutdown(false, cancel),
        Ending::Drop => {}
    }
    drop(pool);
    wait_all(&round);
    Outcome {
        futures: round.ledger.len() as u64,
        map_items: round.map_items.load(SeqCst),
        refused: round.refused.load(SeqCst),
        problems: round.problems(allow, early),
    }
}

/// Waits until every recorded future is done (the pool may still be
/// finishing them on its own after a non-waiting ending). A done-callback
/// may record a new future while this waits, so wait again until the
/// ledger stops growing (a callback runs after its future is done).
pub fn wait_all(round: &Round) {
    let mut waited = 0;
    loop {
        let futures = round.ledger.futures();
        if futures.len() == waited {
            return;
        }
        waited = futures.len();
        let split = wait(futures.iter(), Some(HANG), ReturnWhen::AllCompleted);
        if !split.not_done.is_empty() {
            round.problem(format!(
                "{} futures still not done {HANG:?} after the pool was let go",
                split.not_done.len()
            ));
            return;
        }
        // Their callbacks run after they are done, and may record more.
        round.ledger.settle_callbacks();
    }
}

fn check_stats(pool: &ThreadPoolExecutor, round: &Round) {
    let s = pool.stats();
    let ended = s.completed + s.failed + s.cancelled;
    let accepted = round.accepted.load(SeqCst);
    let adds_up = if round.mapped.load(SeqCst) {
        ended >= accepted
    } else {
        ended == accepted
    };
    if s.workers_alive != 0 || s.running != 0 || s.queued != 0 || !adds_up {
        round.problem(format!(
            "stats after a waited shutdown do not add up ({accepted} tasks accepted): {s}"
        ));
    }
}

fn submitter(pool: &Arc<ThreadPoolExecutor>, round: &Round, rng: &mut Rng) {
    for _ in 0..rng.range(10, 150) {
        let x = rng.range(0, 1_000_000);
        match rng.range(0, 10) {
            0..=2 => submit_value(pool, round, x, false),
            3 => match pool.submit(|| -> u64 { panic!("soak: intended panic") }) {
                Ok(f) => {
                    round.accepted.fetch_add(1, SeqCst);
                    round.ledger.record(&f, Expect::Panic);
                }
                Err(e) => round.refused("submit", &e),
            },
            4 => submit_value(pool, round, x, true),
            5 => callback_that_submits_and_waits(pool, round, x),
            6 => match pool.submit(move || x * 3) {
                Ok(f) => {
                    round.accepted.fetch_add(1, SeqCst);
                    let plus_one = f.map(|v| v + 1);
                    round.ledger.record(&plus_one, Expect::Value(x * 3 + 1));
                }
                Err(e) => round.refused("submit", &e),
            },
            7 | 8 => map(pool, round, rng),
            _ => match pool.submit(move || x * 3) {
                // Submit, then wait: the sequential path.
                Ok(f) => {
                    round.accepted.fetch_add(1, SeqCst);
                    round.ledger.record(&f, Expect::Value(x * 3));
                    let _ = f.result_timeout(HANG);
                }
                Err(e) => round.refused("submit", &e),
            },
        }
    }
}

fn submit_value(pool: &ThreadPoolExecutor, round: &Round, x: u64, cancel: bool) {
    match pool.submit(move || x * 3) {
        Ok(f) => {
            round.accepted.fetch_add(1, SeqCst);
            let cancelled = cancel && f.cancel();
            round
                .ledger
                .record_with(&f, Expect::Value(x * 3), cancelled);
        }
        Err(e) => round.refused("submit", &e),
    }
}

/// A done-callback that submits to its own pool and waits for the result
/// (CPython starts a new thread for it; a pool that counts the callback's
/// worker as idle deadlocks here).
fn callback_that_submits_and_waits(pool: &Arc<ThreadPoolExecutor>, round: &Round, x: u64) {
    let f = match pool.submit(move || x * 3) {
        Ok(f) => f,
        Err(e) => return round.refused("submit", &e),
    };
    round.accepted.fetch_add(1, SeqCst);
    round.ledger.record(&f, Expect::Value(x * 3));
    let (pool2, round2) = (pool.clone(), round.clone());
    f.add_done_callback(move |_| match pool2.submit(move || x + 7) {
        Ok(g) => {
            round2.accepted.fetch_add(1, SeqCst);
            round2.ledger.record(&g, Expect::Value(x + 7));
            // Wait only while a worker slot stays free for `g`: a callback
            // runs on a worker, and if every worker blocks in a wait, no pool
            // can run what they wait for (CPython's neither).
            let Some(_slot) = WaitSlot::take(&round2, pool2.max_workers()) else {
                return;
            };
            if let Err(FutureError::Timeout(_)) = g.result_timeout(HANG) {
                round2.problem("a task submitted by a done-callback never ran".into());
            }
        }
        Err(e) => round2.refused("a callback's submit", &e),
    });
}

/// One of the `max_workers - 1` places for a callback that blocks in a
/// wait on its own pool; given back on drop.
struct WaitSlot<'a>(&'a Round);

impl<'a> WaitSlot<'a> {
    fn take(round: &'a Round, max_workers: usize) -> Option<Self> {
        let limit = max_workers.saturating_sub(1) as u64;
        round
            .waiting_callbacks
            .fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| WaitSlot(round))
    }
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.waiting_callbacks.fetch_sub(1, SeqCst);
    }
}

fn times_five(x: u64) -> u64 {
    x * 5
}

fn map(pool: &ThreadPoolExecutor, round: &Round, rng: &mut Rng) {
    let n = rng.range(0, 60);
    let windowed = rng.one_in(2);
    // Before the call: a map refused part-way (a shutdown while it submits)
    // may already have made tasks that stats() counts.
    round.mapped.store(true, SeqCst);
    let results = if windowed {
        let options = MapOptions::new().window(rng.range(1, 8) as usize);
        pool.map_with(times_five, 0..n, options)
    } else {
        pool.map(times_five, 0..n)
    };
    let results = match results {
        Ok(r) => r,
        Err(e) => return round.refused("map", &e),
    };
    // Read all, some, or none of the results, then drop the iterator.
    let read = match rng.range(0, 2) {
        0 => n,
        1 => rng.range(0, n),
        _ => 0,
    };
    for (i, r) in results.take(read as usize).enumerate() {
        round.map_result(i as u64, i as u64 * 5, r);
    }
}
