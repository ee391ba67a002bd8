//! Side-by-side benchmarks of our pool against rayon and the `threadpool`
//! crate (docs/design.md section 3). Every pool has 2 workers (the machine has 2
//! cores). Run: `cargo bench -p thread-pool --bench thread_pool`.
//!
//! * `thread_pool/round_trip`: submit one empty task on an idle pool and wait
//!   for its result; `raw_thread_ping_pong` is two threads handing a message
//!   back and forth over channels, the floor for any cross-thread round trip.
//! * `thread_pool/throughput_200k`: 200,000 tiny tasks, each with its own
//!   way back (our future; the threadpool crate's mpsc send; rayon's scope
//!   has none), all submitted, then all awaited.
//! * `thread_pool/map_1m`: an ordered map over 1,000,000 integers.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use thread_pool::ThreadPoolExecutor;

const WORKERS: usize = 2;

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("rayon pool")
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("thread_pool/round_trip");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    let ours = ThreadPoolExecutor::new(WORKERS);
    group.bench_function("ours", |b| {
        b.iter(|| {
            ours.submit(|| black_box(()))
                .unwrap()
                .into_result()
                .unwrap()
        })
    });
    drop(ours);

    let rayon = rayon_pool();
    group.bench_function("rayon_install", |b| {
        b.iter(|| rayon.install(|| black_box(())))
    });
    drop(rayon);

    let tp = threadpool::ThreadPool::new(WORKERS);
    let (tx, rx) = mpsc::channel();
    group.bench_function("threadpool_crate", |b| {
        b.iter(|| {
            let tx = tx.clone();
            tp.execute(move || tx.send(()).unwrap());
            rx.recv().unwrap()
        })
    });
    tp.join();

    let (to_peer, peer_rx) = mpsc::channel::<Option<()>>();
    let (peer_tx, from_peer) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        while let Ok(Some(())) = peer_rx.recv() {
            peer_tx.send(()).unwrap();
        }
    });
    group.bench_function("raw_thread_ping_pong", |b| {
        b.iter(|| {
            to_peer.send(Some(())).unwrap();
            from_peer.recv().unwrap()
        })
    });
    to_peer.send(None).unwrap();
    peer.join().unwrap();
    group.finish();
}

const TASKS: u64 = 200_000;

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("thread_pool/throughput_200k");
    group
        .throughput(Throughput::Elements(TASKS))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let ours = ThreadPoolExecutor::new(WORKERS);
    // The futures' vector is reused across iterations, as a caller in a
    // loop would; its growth is not what this measures.
    let mut futures = Vec::with_capacity(TASKS as usize);
    group.bench_function("ours", |b| {
        b.iter(|| {
            futures.extend((0..TASKS).map(|i| ours.submit(move || black_box(i)).unwrap()));
            let mut sum = 0;
            for f in futures.drain(..) {
                sum += f.into_result().unwrap();
            }
            black_box(sum)
        })
    });
    drop(ours);

    let tp = threadpool::ThreadPool::new(WORKERS);
    group.bench_function("threadpool_crate", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::channel();
            for i in 0..TASKS {
                let tx = tx.clone();
                tp.execute(move || tx.send(black_box(i)).unwrap());
            }
            drop(tx);
            black_box(rx.iter().sum::<u64>())
        })
    });
    tp.join();

    let rayon = rayon_pool();
    group.bench_function("rayon_scope", |b| {
        b.iter(|| {
            rayon.scope(|s| {
                for i in 0..TASKS {
                    s.spawn(move |_| {
                        black_box(i);
                    });
                }
            })
        })
    });
    group.finish();
}

const ITEMS: u64 = 1_000_000;

fn map(c: &mut Criterion) {
    let mut group = c.benchmark_group("thread_pool/map_1m");
    group
        .throughput(Throughput::Elements(ITEMS))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let ours = ThreadPoolExecutor::new(WORKERS);
    group.bench_function("ours", |b| {
        b.iter(|| {
            ours.map(|x: u64| black_box(x * 2), 0..ITEMS)
                .unwrap()
                .map(Result::unwrap)
                .sum::<u64>()
        })
    });
    drop(ours);

    let rayon = rayon_pool();
    group.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            rayon.install(|| {
                (0..ITEMS)
                    .into_par_iter()
                    .map(|x| black_box(x * 2))
                    .sum::<u64>()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, round_trip, throughput, map);
criterion_main!(benches);
