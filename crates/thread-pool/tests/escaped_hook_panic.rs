//! A callback-panic hook that itself panics: the worker
//! that ran the callback survives, the pool runs every later task, and
//! `stats()` is true. Its own test binary, because the hook is process-wide.

mod common;

use common::{Event, LONG};
use thread_pool::ThreadPoolExecutor;

#[test]
fn a_panicking_callback_panic_hook_does_not_kill_the_worker() {
    future::set_callback_panic_hook(|report| panic!("the hook panicked on {report:?}"));
    let pool = ThreadPoolExecutor::builder()
        .max_workers(1)
        .thread_name_prefix("tpeschook")
        .build()
        .unwrap();
    let gate = Event::new();
    let g = gate.clone();
    let first = pool.submit(move || g.wait()).unwrap();
    first.add_done_callback(|_| panic!("a callback panicked"));
    gate.set();
    assert!(first.result_timeout(LONG).unwrap());
    let later: Vec<_> = (0..20)
        .map(|i| pool.submit(move || i + 1).unwrap())
        .collect();
    for (i, f) in later.into_iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i + 1);
    }
    let truthful = common::eventually(|| {
        let s = pool.stats();
        s.workers_alive == 1
            && s.workers_idle == 1
            && common::os_threads_named("tpeschook").len() == 1
    });
    assert!(truthful, "{:?}", pool.stats());
    future::reset_callback_panic_hook();
}
