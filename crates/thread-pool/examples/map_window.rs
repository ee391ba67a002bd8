//! How `map`'s window and chunk size change its throughput on cheap items:
//! `cargo run --release --example map_window`.
use std::hint::black_box;
use std::time::Instant;

use thread_pool::{MapOptions, ThreadPoolExecutor};

fn main() {
    let pool = ThreadPoolExecutor::new(2);
    for window in [8, 32, 128, 512] {
        let start = Instant::now();
        let sum: u64 = pool
            .map_with(
                |x: u64| black_box(x * 2),
                0..300_000u64,
                MapOptions::new().window(window),
            )
            .unwrap()
            .map(Result::unwrap)
            .sum();
        let t = start.elapsed();
        println!(
            "window {window:4}: {:.2} M items/s (sum {sum})",
            0.3 / t.as_secs_f64()
        );
    }
    for chunk in [16, 64, 256] {
        let start = Instant::now();
        let options = MapOptions::new().window(8 * chunk).chunk_size(chunk);
        let sum: u64 = pool
            .map_with(|x: u64| black_box(x * 2), 0..1_000_000u64, options)
            .unwrap()
            .map(Result::unwrap)
            .sum();
        let t = start.elapsed();
        println!(
            "chunk {chunk:4} (window {:5}): {:.2} M items/s (sum {sum})",
            8 * chunk,
            1.0 / t.as_secs_f64()
        );
    }
}
