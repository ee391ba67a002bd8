//! A callback-panic hook that itself panics, on the process pool's callback
//! runner: the runner survives, the future's other
//! callbacks run, later callbacks run, and `drop(pool)` returns. Its own
//! test binary, because the hook is process-wide.

mod common;

use std::mem::ManuallyDrop;
use std::sync::mpsc;
use std::time::Duration;

use process_pool::ProcessPoolExecutor;

/// Hang guard: a lost runner fails the test instead of hanging it.
const LONG: Duration = Duration::from_secs(120);

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn a_panicking_callback_panic_hook_does_not_kill_the_callback_runner() {
    let c = common::clean();
    future::set_callback_panic_hook(|report| panic!("the hook panicked on {report:?}"));
    // Dropped only by the guarded thread below: if an assertion fails first,
    // the pool is leaked rather than dropped (which would hang) on unwind.
    let pool = ManuallyDrop::new(ProcessPoolExecutor::new(1).unwrap());
    let (tx, rx) = mpsc::channel();
    let first = pool.submit(square, 3).unwrap();
    first.add_done_callback(|_| panic!("a callback panicked"));
    let t = tx.clone();
    first.add_done_callback(move |f| t.send(f.result().unwrap()).unwrap());
    assert_eq!(
        rx.recv_timeout(LONG)
            .expect("the callback after the panicking one never ran"),
        9
    );
    // Later callbacks run too.
    for x in 0..5u64 {
        let t = tx.clone();
        pool.submit(square, x)
            .unwrap()
            .add_done_callback(move |f| t.send(f.result().unwrap()).unwrap());
        assert_eq!(
            rx.recv_timeout(LONG).expect("a later callback never ran"),
            x * x
        );
    }
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        drop(ManuallyDrop::into_inner(pool));
        done_tx.send(()).unwrap();
    });
    done.recv_timeout(LONG)
        .expect("drop(pool) did not return: it waits for a runner thread that is gone");
    future::reset_callback_panic_hook();
    c.check();
}
