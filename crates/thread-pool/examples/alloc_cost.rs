//! Baseline costs on this machine, one thread, no pool: creating 200k
//! futures (`future::promise`, kept alive as a pool's caller keeps them)
//! and, for comparison, 200k small boxes (a threadpool-crate task).
//! `cargo run --release --example alloc_cost`.
use std::hint::black_box;
use std::time::Instant;

const N: usize = 200_000;

fn main() {
    let mut futures = Vec::with_capacity(N);
    let mut boxes = Vec::with_capacity(N);
    for _ in 0..5 {
        let start = Instant::now();
        futures.extend((0..N).map(|_| future::promise::<u64>()));
        let t1 = start.elapsed();
        futures.clear();
        let start = Instant::now();
        boxes.extend((0..N as u64).map(|i| Box::new([i; 3])));
        let t2 = start.elapsed();
        black_box(&boxes);
        boxes.clear();
        println!(
            "200k promises {t1:?} ({:.1} M/s), 200k boxes {t2:?} ({:.1} M/s)",
            N as f64 / t1.as_secs_f64() / 1e6,
            N as f64 / t2.as_secs_f64() / 1e6
        );
    }
}
