//! Throughput of tiny tasks, one submit each (a profiling aid:
//! `cargo run --release -p process-pool --example tiny_tasks`).

use std::time::Instant;

fn add_one(x: u64) -> u64 {
    x + 1
}

fn main() {
    process_pool::start_fork_server();
    // TASKS_PER_WORKER=n fixes the pipelining depth (default: adaptive), to compare.
    let mut builder = process_pool::ProcessPoolExecutor::builder().max_workers(2);
    if let Some(depth) = std::env::var("TASKS_PER_WORKER")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.tasks_per_worker(depth);
    }
    let pool = builder.build().expect("pool");
    for round in 0..5 {
        let start = Instant::now();
        let futs: Vec<_> = (0..10_000u64)
            .map(|i| pool.submit(add_one, i).expect("submit"))
            .collect();
        let sum: u64 = futs
            .into_iter()
            .map(|f| f.into_result().expect("result"))
            .sum();
        let rate = 10_000.0 / start.elapsed().as_secs_f64();
        println!("round {round}: {rate:.0} tasks/s (sum {sum})");
    }
    for round in 0..3 {
        let start = Instant::now();
        let sum: u64 = pool
            .map(add_one, 0..10_000u64, 1)
            .expect("map")
            .map(|r| r.expect("item"))
            .sum();
        let rate = 10_000.0 / start.elapsed().as_secs_f64();
        println!("map, chunksize 1, round {round}: {rate:.0} items/s (sum {sum})");
    }
}
