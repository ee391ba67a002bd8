//! One round against the process pool.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use future::FutureError;
use process_pool::ProcessPoolExecutor;

use crate::ledger::{Allowances, Expect};
use crate::rng::Rng;
use crate::round::{run_submitters, Round, HANG};
use crate::threads::wait_all;
use crate::Outcome;

/// The per-task timeout of rounds that test it: long enough that no tiny
/// task on a loaded machine comes near it.
const TASK_TIMEOUT: Duration = Duration::from_secs(3);

fn triple(x: u64) -> u64 {
    x * 3
}

fn plus_seven(x: u64) -> u64 {
    x + 7
}

fn times_five(x: u64) -> u64 {
    x * 5
}

fn panics(_: ()) -> u64 {
    panic!("soak: intended panic")
}

fn crashes(_: ()) -> u64 {
    std::process::abort()
}

fn outlives_the_timeout(_: ()) -> u64 {
    std::thread::sleep(Duration::from_secs(600));
    0
}

/// How a round ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Wait { cancel: bool },
    Terminate,
    Kill,
    Drop,
}

pub fn round(rng: &mut Rng) -> Outcome {
    let timeouts = rng.one_in(6);
    let mut builder = ProcessPoolExecutor::builder().max_workers(rng.range(1, 3) as usize);
    if timeouts {
        builder = builder.task_timeout(TASK_TIMEOUT);
    }
    if rng.one_in(3) {
        builder = builder.max_tasks_per_child(rng.range(1, 20));
    }
    let pool = Arc::new(builder.build().expect("a process pool builds"));
    let round = Round::default();
    let ending = match rng.range(0, 5) {
        0 | 1 => Ending::Wait {
            cancel: rng.one_in(2),
        },
        2 => Ending::Terminate,
        3 => Ending::Kill,
        _ => Ending::Drop,
    };
    let early = rng.one_in(5);

    let threads = rng.range(1, 3);
    let submitter = if timeouts {
        submitter_with_timeouts
    } else {
        submitter_without_timeouts
    };
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
        cancel_any: !matches!(ending, Ending::Wait { cancel: false } | Ending::Drop),
        terminated: matches!(ending, Ending::Terminate | Ending::Kill),
    };
    match ending {
        Ending::Wait { cancel } => {
            pool.shutdown(true, cancel);
            check_stats(&pool, &round);
        }
        Ending::Terminate => pool.terminate_workers(),
        Ending::Kill => pool.kill_workers(),
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

fn check_stats(pool: &ProcessPoolExecutor, round: &Round) {
    let s = pool.stats();
    let ended = s.tasks_completed + s.tasks_failed + s.tasks_cancelled;
    let accepted = round.accepted.load(SeqCst);
    let adds_up = if round.mapped.load(SeqCst) {
        ended >= accepted
    } else {
        ended == accepted
    };
    if s.workers_alive != 0 || s.tasks_running != 0 || s.tasks_queued != 0 || !adds_up {
        round.problem(format!(
            "stats after a waited shutdown do not add up ({accepted} tasks accepted): {s:?}"
        ));
    }
}

fn submit(pool: &ProcessPoolExecutor, round: &Round, f: fn(u64) -> u64, x: u64, cancel: bool) {
    match pool.submit(f, x) {
        Ok(fut) => {
            round.accepted.fetch_add(1, SeqCst);
            let cancelled = cancel && fut.cancel();
            round
                .ledger
                .record_with(&fut, Expect::Value(f(x)), cancelled);
        }
        Err(e) => round.refused("submit", &e),
    }
}

fn submit_unit(pool: &ProcessPoolExecutor, round: &Round, f: fn(()) -> u64, expect: Expect) {
    match pool.submit(f, ()) {
        Ok(fut) => {
            round.accepted.fetch_add(1, SeqCst);
            round.ledger.record(&fut, expect);
        }
        Err(e) => round.refused("submit", &e),
    }
}

fn submitter_with_timeouts(pool: &Arc<ProcessPoolExecutor>, round: &Round, rng: &mut Rng) {
    submitter(pool, round, rng, true)
}

fn submitter_without_timeouts(pool: &Arc<ProcessPoolExecutor>, round: &Round, rng: &mut Rng) {
    submitter(pool, round, rng, false)
}

fn submitter(pool: &Arc<ProcessPoolExecutor>, round: &Round, rng: &mut Rng, timeouts: bool) {
    let mut timed_out_once = false;
    for _ in 0..rng.range(5, 80) {
        let x = rng.range(0, 1_000_000);
        match rng.range(0, 12) {
            0..=3 => submit(pool, round, triple, x, false),
            4 => submit_unit(pool, round, panics, Expect::Panic),
            5 => submit_unit(pool, round, crashes, Expect::Crash),
            6 => submit(pool, round, triple, x, true),
            7 => callback_that_submits_and_waits(pool, round, x),
            8 | 9 => map(pool, round, rng),
            10 if timeouts && !timed_out_once => {
                timed_out_once = true;
                submit_unit(pool, round, outlives_the_timeout, Expect::Timeout);
            }
            _ => match pool.submit(triple, x) {
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

/// A done-callback that submits to its own pool and waits for the result.
fn callback_that_submits_and_waits(pool: &Arc<ProcessPoolExecutor>, round: &Round, x: u64) {
    let f = match pool.submit(triple, x) {
        Ok(f) => f,
        Err(e) => return round.refused("submit", &e),
    };
    round.accepted.fetch_add(1, SeqCst);
    round.ledger.record(&f, Expect::Value(x * 3));
    let (pool2, round2) = (pool.clone(), round.clone());
    f.add_done_callback(move |_| match pool2.submit(plus_seven, x) {
        Ok(g) => {
            round2.accepted.fetch_add(1, SeqCst);
            round2.ledger.record(&g, Expect::Value(x + 7));
            if let Err(FutureError::Timeout(_)) = g.result_timeout(HANG) {
                round2.problem("a task submitted by a done-callback never ran".into());
            }
        }
        Err(e) => round2.refused("a callback's submit", &e),
    });
}

fn map(pool: &ProcessPoolExecutor, round: &Round, rng: &mut Rng) {
    let n = rng.range(0, 300);
    let chunksize = rng.range(1, 40) as usize;
    // Before the call: a map refused part-way (a shutdown while it submits)
    // may already have made tasks that stats() counts.
    round.mapped.store(true, SeqCst);
    let results = match pool.map(times_five, 0..n, chunksize) {
        Ok(r) => r,
        Err(e) => return round.refused("map", &e),
    };
    let read = match rng.range(0, 2) {
        0 => n,
        1 => rng.range(0, n),
        _ => 0,
    };
    for (i, r) in results.take(read as usize).enumerate() {
        round.map_result(i as u64, i as u64 * 5, r);
    }
}
