//! What one submit costs while the workers run, against the same submits
//! with the workers held at a barrier (nothing reads the queue while it
//! fills): `cargo run --release --example submit_cost`. The gap between the
//! two is what a worker chasing the submitter costs (see `src/pacing.rs`).
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use thread_pool::ThreadPoolExecutor;

const TASKS: u64 = 200_000;
const ROUNDS: usize = 9;

/// Submits `TASKS` tiny tasks, then waits for them all; returns the time
/// the submits took, per task.
fn submit_phase(pool: &ThreadPoolExecutor, hold_workers: bool) -> Duration {
    let barrier = Arc::new(Barrier::new(pool.max_workers() + 1));
    if hold_workers {
        for _ in 0..pool.max_workers() {
            let barrier = barrier.clone();
            pool.submit(move || {
                barrier.wait();
            })
            .unwrap();
        }
        // Let every worker reach the barrier before the clock starts.
        while pool.stats().running < pool.max_workers() {
            std::thread::yield_now();
        }
    }
    let start = Instant::now();
    let futures: Vec<_> = (0..TASKS)
        .map(|i| pool.submit(move || black_box(i)).unwrap())
        .collect();
    let submitting = start.elapsed();
    if hold_workers {
        barrier.wait();
    }
    let sum: u64 = futures.into_iter().map(|f| f.into_result().unwrap()).sum();
    black_box(sum);
    submitting / TASKS as u32
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let pool = ThreadPoolExecutor::new(2);
    let (mut held, mut running) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        held.push(submit_phase(&pool, true));
        running.push(submit_phase(&pool, false));
    }
    println!(
        "submit, workers held at a barrier: median {:?}",
        median(held)
    );
    println!(
        "submit, workers running:           median {:?}",
        median(running)
    );
}
