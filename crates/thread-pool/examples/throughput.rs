//! Interleaved 200k-task throughput: ours (a future per task) against the
//! threadpool crate (execute + an mpsc send per task), robust to a noisy
//! machine: `cargo run --release --example throughput`. With `OURS_ONLY=1`
//! only our pool runs, with `THEIRS_ONLY=1` only the threadpool crate (for
//! profiling, or for comparing CPU time per task with `time`).
use std::hint::black_box;
use std::sync::mpsc;
use std::time::Instant;

use thread_pool::ThreadPoolExecutor;

const TASKS: u64 = 200_000;

fn main() {
    let ours = ThreadPoolExecutor::new(2);
    let tp = threadpool::ThreadPool::new(2);
    let mut futures = Vec::with_capacity(TASKS as usize);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let ours_only = std::env::var_os("OURS_ONLY").is_some();
    let theirs_only = std::env::var_os("THEIRS_ONLY").is_some();
    for _ in 0..9 {
        if theirs_only {
            a.push(0.0);
        } else {
            let start = Instant::now();
            futures.extend((0..TASKS).map(|i| ours.submit(move || black_box(i)).unwrap()));
            let sum: u64 = futures.drain(..).map(|f| f.into_result().unwrap()).sum();
            a.push(TASKS as f64 / start.elapsed().as_secs_f64() / 1e6);
            black_box(sum);
        }

        if ours_only {
            b.push(0.0);
            continue;
        }
        let start = Instant::now();
        let (tx, rx) = mpsc::channel();
        for i in 0..TASKS {
            let tx = tx.clone();
            tp.execute(move || tx.send(black_box(i)).unwrap());
        }
        drop(tx);
        black_box(rx.iter().sum::<u64>());
        b.push(TASKS as f64 / start.elapsed().as_secs_f64() / 1e6);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    println!(
        "ours       median {:.2} M tasks/s (max {:.2})",
        a[a.len() / 2],
        a[a.len() - 1]
    );
    println!(
        "threadpool median {:.2} M tasks/s (max {:.2})",
        b[b.len() / 2],
        b[b.len() - 1]
    );
    println!("{}", ours.stats());
}
