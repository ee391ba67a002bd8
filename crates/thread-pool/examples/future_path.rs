//! The future's share of a pool task, on one thread, no pool: create a
//! future, start it, complete it, take the value, 200k times
//! (`cargo run --release --example future_path`). Prints the best of 9
//! rounds, in ns per task: what the executor and the caller pay for the
//! future alone, without any cross-core traffic.
use std::hint::black_box;
use std::time::Instant;

const N: u64 = 200_000;

fn main() {
    let mut futures = Vec::with_capacity(N as usize);
    let mut promises = Vec::with_capacity(N as usize);
    let mut best = f64::MAX;
    for _ in 0..9 {
        let start = Instant::now();
        for i in 0..N {
            let (p, f) = future::promise::<u64>();
            futures.push(f);
            promises.push((p, i));
        }
        for (p, i) in promises.drain(..) {
            if p.set_running_or_notify_cancel().unwrap() {
                p.set_result(black_box(i)).unwrap();
            }
        }
        let sum: u64 = futures.drain(..).map(|f| f.into_result().unwrap()).sum();
        black_box(sum);
        best = best.min(start.elapsed().as_secs_f64() * 1e9 / N as f64);
    }
    println!("future create + start + complete + take: {best:.1} ns per task (best of 9)");
}
