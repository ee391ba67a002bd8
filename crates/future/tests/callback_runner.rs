//! The callback runner executors lend their futures' callbacks to (issue
//! 17, items 4 and 5): a job that panics past its callbacks' own catch (the
//! drop of a future's last handle runs the value's `Drop`) leaves the runner
//! serving and its count of threads true, so `close_and_join` returns.

#![cfg(not(loom))]

use std::sync::mpsc;
use std::time::Duration;

use future::CallbackRunner;

/// Hang guard.
const LONG: Duration = Duration::from_secs(120);

#[test]
fn a_panicking_job_leaves_the_runner_serving_and_close_and_join_returns() {
    let runner = std::mem::ManuallyDrop::new(CallbackRunner::new("runner-test"));
    runner.run(Box::new(|| panic!("a job panicked past its callbacks")));
    let (tx, rx) = mpsc::channel();
    for i in 0..5 {
        let tx = tx.clone();
        runner.run(Box::new(move || tx.send(i).unwrap()));
    }
    let mut got: Vec<i32> = (0..5)
        .map(|_| rx.recv_timeout(LONG).expect("a later job never ran"))
        .collect();
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    // Joined on another thread: if a runner thread died uncounted, this
    // waits forever, and the guard fails the test (the runner is leaked).
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        runner.close_and_join();
        done_tx.send(()).unwrap();
    });
    done.recv_timeout(LONG)
        .expect("close_and_join did not return: it waits for a runner thread that died");
}
