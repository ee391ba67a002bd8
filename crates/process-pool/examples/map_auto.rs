//! `map` over cheap items: `map_auto` against chunksize 1 and a fixed good
//! chunksize, interleaved in rounds (A, B, C, A, B, C, ...) so that a busy
//! machine hurts all three alike:
//! `cargo run --release -p process-pool --example map_auto [items] [rounds]`.

use std::time::Instant;

/// The u64 -> u64 step of `benches/peers/process_pool.py`'s map.
fn step(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761).wrapping_add(1)
}

fn expected(items: u64) -> u64 {
    (0..items).map(step).fold(0, |a, y| a ^ y)
}

fn rate(items: u64, run: impl FnOnce() -> u64) -> f64 {
    let start = Instant::now();
    let folded = run();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(folded, expected(items), "wrong results");
    items as f64 / secs
}

fn range(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "min {:.2} median {:.2} max {:.2} M items/s",
        v[0] / 1e6,
        v[v.len() / 2] / 1e6,
        v[v.len() - 1] / 1e6
    )
}

fn main() {
    process_pool::start_fork_server();
    let mut args = std::env::args().skip(1);
    let items: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let pool = process_pool::ProcessPoolExecutor::new(2).expect("pool");
    let sum = |it: &mut dyn Iterator<Item = Result<u64, future::FutureError>>| {
        it.map(|r| r.expect("item")).fold(0, |a, y| a ^ y)
    };
    let ones = items.min(100_000); // chunksize 1 is slow: fewer items
    let (mut auto, mut fixed, mut one) = (vec![], vec![], vec![]);
    println!(
        "{items} u64 items on 2 workers, auto chunksize {} (chunksize 1: {ones} items)",
        process_pool::auto_chunksize(items as usize, 2)
    );
    for round in 0..rounds {
        let a = rate(items, || {
            sum(&mut pool.map_auto(step, 0..items).expect("map"))
        });
        let f = rate(items, || {
            sum(&mut pool.map(step, 0..items, 10_000).expect("map"))
        });
        let o = rate(ones, || sum(&mut pool.map(step, 0..ones, 1).expect("map")));
        println!(
            "round {round}: auto {:.2}, chunksize 10000 {:.2}, chunksize 1 {:.3} M items/s",
            a / 1e6,
            f / 1e6,
            o / 1e6
        );
        auto.push(a);
        fixed.push(f);
        one.push(o);
    }
    println!("auto:            {}", range(auto));
    println!("chunksize 10000: {}", range(fixed));
    println!("chunksize 1:     {}", range(one));
}
