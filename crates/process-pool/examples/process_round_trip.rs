//! Times round trips of one tiny task on an idle pool (a profiling aid:
//! `cargo run --release -p process-pool --example process_round_trip`).

use std::time::Instant;

fn add_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    process_pool::start_fork_server();
    let pool = process_pool::ProcessPoolExecutor::new(2).expect("pool");
    let n = 20_000u64;
    for i in 0..1000 {
        pool.submit(add_one, i)
            .expect("submit")
            .result()
            .expect("result");
    }
    let start = Instant::now();
    for i in 0..n {
        pool.submit(add_one, i)
            .expect("submit")
            .result()
            .expect("result");
    }
    let each = start.elapsed() / n as u32;
    println!("round trip: {each:?}");
}
