//! Hand-off latency: a value set on one thread, read by a waiter blocked on
//! another, measured as a ping-pong (two hand-offs per iteration) so both
//! threads are always blocked when the value arrives.
//!
//! Peers in the same group: a crossbeam zero-capacity channel (a rendezvous,
//! the closest channel to a one-shot hand-off) and `std::sync::mpsc`.
//! Target (docs/design.md section 3): no slower than the crossbeam channel.

use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Runs `iters` ping-pongs of futures: the main thread completes ping i, the
/// partner (blocked on it) completes pong i, the main thread reads it.
fn futures_ping_pong(iters: u64) -> Duration {
    let n = iters as usize;
    let (ping_promises, ping_futures): (Vec<_>, Vec<_>) =
        (0..n).map(|_| future::promise::<u64>()).unzip();
    let (pong_promises, pong_futures): (Vec<_>, Vec<_>) =
        (0..n).map(|_| future::promise::<u64>()).unzip();
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            for (ping, pong) in ping_futures.iter().zip(&pong_promises) {
                let v = ping.result().unwrap();
                pong.set_result(v + 1).unwrap();
            }
        });
        barrier.wait();
        let start = Instant::now();
        for (i, (ping, pong)) in ping_promises.iter().zip(&pong_futures).enumerate() {
            ping.set_result(i as u64).unwrap();
            assert_eq!(pong.result().unwrap(), i as u64 + 1);
        }
        start.elapsed()
    })
}

/// Runs `iters` ping-pongs over a pair of channels of one kind: `send` and
/// `recv` are that kind's operations, so both peers run the same loop.
fn channel_ping_pong<Tx: Send, Rx: Send>(
    iters: u64,
    (ping_tx, ping_rx): (Tx, Rx),
    (pong_tx, pong_rx): (Tx, Rx),
    send: fn(&Tx, u64),
    recv: fn(&Rx) -> u64,
) -> Duration {
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let barrier = &barrier;
        s.spawn(move || {
            barrier.wait();
            for _ in 0..iters {
                let v = recv(&ping_rx);
                send(&pong_tx, v + 1);
            }
        });
        barrier.wait();
        let start = Instant::now();
        for i in 0..iters {
            send(&ping_tx, i);
            assert_eq!(recv(&pong_rx), i + 1);
        }
        start.elapsed()
    })
}

fn crossbeam_zero_ping_pong(iters: u64) -> Duration {
    channel_ping_pong(
        iters,
        crossbeam_channel::bounded::<u64>(0),
        crossbeam_channel::bounded::<u64>(0),
        |tx, v| tx.send(v).unwrap(),
        |rx| rx.recv().unwrap(),
    )
}

fn std_mpsc_ping_pong(iters: u64) -> Duration {
    channel_ping_pong(
        iters,
        mpsc::channel::<u64>(),
        mpsc::channel::<u64>(),
        |tx, v| tx.send(v).unwrap(),
        |rx| rx.recv().unwrap(),
    )
}

fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("future/handoff");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    // One element = one ping-pong = two hand-offs between blocked threads.
    group.throughput(Throughput::Elements(1));
    group.bench_function("future", |b| b.iter_custom(futures_ping_pong));
    group.bench_function("crossbeam_zero", |b| {
        b.iter_custom(crossbeam_zero_ping_pong)
    });
    group.bench_function("std_mpsc", |b| b.iter_custom(std_mpsc_ping_pong));
    group.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);
