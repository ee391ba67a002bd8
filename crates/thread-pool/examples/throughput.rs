//! Quick look at the 200k-task throughput and a submit/wait round trip,
//! with the pool's own counters: `cargo run --release --example throughput`.
use std::hint::black_box;
use std::time::Instant;

use thread_pool::ThreadPoolExecutor;

fn main() {
    let pool = ThreadPoolExecutor::new(2);
    let mut futures = Vec::with_capacity(200_000);
    for round in 0..5 {
        let start = Instant::now();
        futures.extend((0..200_000u64).map(|i| pool.submit(move || black_box(i)).unwrap()));
        let submitted = start.elapsed();
        let sum: u64 = futures.drain(..).map(|f| f.into_result().unwrap()).sum();
        let total = start.elapsed();
        println!(
            "round {round}: submit {:?}, total {:?} ({:.2} M tasks/s), sum {sum}",
            submitted,
            total,
            0.2 / total.as_secs_f64()
        );
    }
    let start = Instant::now();
    for _ in 0..20_000 {
        pool.submit(|| ()).unwrap().into_result().unwrap();
    }
    println!("round trip: {:?} per task", start.elapsed() / 20_000);
    println!("{}", pool.stats());
}
