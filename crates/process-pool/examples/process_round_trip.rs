//! Times round trips of one tiny task on an idle pool (a profiling aid:
//! `cargo run --release -p process-pool --example process_round_trip`).
//! `CALLBACK=1` times the trip to a done-callback instead of to `result()`
//! (the callback runs on the pool's callback thread, see `future::CallbackRunner`, `crates/future/src/runner.rs`).

use std::sync::mpsc;
use std::time::Instant;

fn add_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    process_pool::start_fork_server();
    let pool = process_pool::ProcessPoolExecutor::new(2).expect("pool");
    let callback = std::env::var_os("CALLBACK").is_some();
    let n = 20_000u64;
    let (tx, rx) = mpsc::channel::<u64>();
    let trip = |i: u64| {
        let fut = pool.submit(add_one, i).expect("submit");
        if callback {
            let tx = tx.clone();
            fut.add_done_callback(move |f| tx.send(f.result().expect("result")).unwrap());
            rx.recv().expect("callback ran")
        } else {
            fut.result().expect("result")
        }
    };
    for i in 0..1000 {
        trip(i);
    }
    let start = Instant::now();
    for i in 0..n {
        trip(i);
    }
    let each = start.elapsed() / n as u32;
    let what = if callback { "to a callback" } else { "" };
    println!(
        "round trip{}{what}: {each:?}",
        if callback { " " } else { "" }
    );
}
