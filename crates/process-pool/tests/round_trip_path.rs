//! The path of a round trip on an idle pool (issue 18 part 2): which thread
//! writes the task, and when the caller hears its result.
//!
//! The pool's thread lends the task pipe of each idle worker to `submit`
//! when it goes to sleep (the direct hand-off), so a caller that submits
//! right after its previous result writes the next frame itself, with no
//! wake-up of the pool's thread. That only works if the pool's thread has
//! lent the pipe *before* it wakes the caller with the previous result:
//! otherwise the woken caller (on the other CPU, or preempting the pool's
//! thread on the same one) finds no pipe lent, queues its task and rings,
//! and every round trip costs two more thread switches.

mod common;

use common::{clean, T};
use process_pool::ProcessPoolExecutor;

fn add_one(x: u64) -> u64 {
    x + 1
}

/// Back-to-back round trips on a one-worker pool: every task after the
/// first (which forks the worker) goes straight into the worker's pipe.
/// Deterministic, not a race: the pool's thread lends the pipe before it
/// completes the previous future, and takes it back only when `poll`
/// reports an event, and nothing but the next task's result can make one.
#[test]
fn a_caller_woken_by_its_result_finds_the_idle_worker_lent() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    const TRIPS: u64 = 300;
    for i in 0..TRIPS {
        assert_eq!(
            pool.submit(add_one, i).unwrap().result_timeout(T).unwrap(),
            i + 1
        );
    }
    let s = pool.stats();
    assert_eq!(s.tasks_completed, TRIPS);
    assert_eq!(
        s.tasks_handed_off,
        TRIPS - 1,
        "every task after the first should be written by `submit` itself: {s:?}"
    );
    drop(pool);
    c.check();
}
