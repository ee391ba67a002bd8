//! `map` over 1,000,000 cheap items with the default options, as the
//! `thread_pool/map_1m` bench does: `cargo run --release --example map_default`.
use std::hint::black_box;
use std::time::Instant;

use thread_pool::ThreadPoolExecutor;

fn main() {
    let pool = ThreadPoolExecutor::new(2);
    for _ in 0..3 {
        let start = Instant::now();
        let sum: u64 = pool
            .map(|x: u64| black_box(x * 2), 0..1_000_000u64)
            .unwrap()
            .map(Result::unwrap)
            .sum();
        let t = start.elapsed();
        println!("{:.2} M items/s (sum {sum})", 1.0 / t.as_secs_f64());
    }
    println!("{}", pool.stats());
}
