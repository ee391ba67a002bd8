//! Interleaved round-trip comparison (ours vs rayon's install), robust to
//! a noisy machine: `cargo run --release -p thread-pool --example thread_round_trip`.
use std::hint::black_box;
use std::time::{Duration, Instant};

use thread_pool::ThreadPoolExecutor;

fn per_op(n: u32, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

fn main() {
    let ours = ThreadPoolExecutor::new(2);
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        a.push(per_op(3000, || {
            ours.submit(|| black_box(()))
                .unwrap()
                .into_result()
                .unwrap()
        }));
        b.push(per_op(3000, || rayon.install(|| black_box(()))));
    }
    a.sort();
    b.sort();
    println!("ours  median {:?} (min {:?})", a[a.len() / 2], a[0]);
    println!("rayon median {:?} (min {:?})", b[b.len() / 2], b[0]);
}
