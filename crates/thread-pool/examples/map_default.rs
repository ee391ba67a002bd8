//! `map` over 1,000,000 cheap items with the default options (adaptive
//! claims), side by side with rayon's `par_iter` on a pool of the same size,
//! interleaved in rounds: `cargo run --release --example map_default`.
//! Prints each one's median and the ratio of the medians.
use std::hint::black_box;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use thread_pool::ThreadPoolExecutor;

const ITEMS: u64 = 1_000_000;
const ROUNDS: usize = 9;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let pool = ThreadPoolExecutor::new(2);
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let sum: u64 = pool
            .map(|x: u64| black_box(x * 2), 0..ITEMS)
            .unwrap()
            .map(Result::unwrap)
            .sum();
        ours.push(start.elapsed());
        assert_eq!(sum, ITEMS * (ITEMS - 1));
        let start = Instant::now();
        let sum: u64 = rayon.install(|| (0..ITEMS).into_par_iter().map(|x| black_box(x * 2)).sum());
        theirs.push(start.elapsed());
        assert_eq!(sum, ITEMS * (ITEMS - 1));
    }
    let (o, t) = (median(ours), median(theirs));
    let rate = |d: Duration| ITEMS as f64 / d.as_secs_f64() / 1e6;
    println!("ours   {:>9.1} M items/s (median of {ROUNDS})", rate(o));
    println!("rayon  {:>9.1} M items/s (median of {ROUNDS})", rate(t));
    println!(
        "ratio  {:.3} (ours / rayon par_iter)",
        t.as_secs_f64() / o.as_secs_f64()
    );
    println!("{}", pool.stats());
}
