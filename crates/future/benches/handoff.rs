//! Hand-off latency: a value set on one thread, read by a waiter on another, measured as a
//! ping-pong (two hand-offs per iteration). Run: `cargo bench -p future --bench handoff`;
//! the report (`benches/`) runs it in rounds (settings and round order:
//! `benches/support/harness.rs`).
//!
//! Peers: a crossbeam `bounded(1)` channel, a `std::sync::mpsc` channel (both reused for
//! every message, as channels are), and the `oneshot` crate's channel (one per message,
//! like our promise/future pair). Ours and `oneshot` allocate their pair inside the timed
//! loop, so the future's allocation is paid in every group; `future/alloc` times it alone.
//!
//! * `future/handoff`: each side as it comes. Ours spins about 127 pause hints before it
//!   blocks; crossbeam and std spin a little (their `Backoff`); `oneshot` parks at once.
//! * `future/handoff_equal_spin`: every peer first polls `try_recv` with the same spin budget
//!   as ours (1 + 2 + ... + 64 pause hints), then blocks.
//! * `future/handoff_no_spin`: nobody spins: ours is waited for with a done-callback that
//!   unparks the reader (the future offers no blocking read without its spin), against
//!   `oneshot` (parks at once) and a hand-written one-shot on a mutex and a condvar.
//! * `future/alloc`: creating and dropping one pair (ours, oneshot) or one channel.

#[path = "../../../benches/support/harness.rs"]
mod harness;

use std::hint::black_box;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::{run_in_round_order, Entry, Settings};

/// The spin budget of `Future::result`: steps of 1, 2, 4 ... 64 pause hints.
const SPIN_STEPS: u32 = 7;

/// Polls `try_recv` with our future's spin budget; `None` if nothing came meanwhile.
fn spin_for<T>(mut try_recv: impl FnMut() -> Option<T>) -> Option<T> {
    for step in 0..SPIN_STEPS {
        if let Some(v) = try_recv() {
            return Some(v);
        }
        for _ in 0..(1u32 << step) {
            std::hint::spin_loop();
        }
    }
    try_recv()
}

/// `iters` ping-pongs over one-shot pairs made by `make`, two per iteration, made inside the
/// timed region; the partner gets its halves in one message before the first ping.
fn fresh_ping_pong<S: Send, R: Send>(
    iters: u64,
    make: fn() -> (S, R),
    send: fn(S, u64),
    recv: fn(R) -> u64,
) -> Duration {
    let n = iters as usize;
    let (to_partner, from_main) = mpsc::channel::<(Vec<R>, Vec<S>)>();
    thread::scope(|s| {
        s.spawn(move || {
            let (pings, pongs) = from_main.recv().unwrap();
            for (ping, pong) in pings.into_iter().zip(pongs) {
                let v = recv(ping);
                send(pong, v + 1);
            }
        });
        let start = Instant::now();
        let (ping_tx, ping_rx): (Vec<S>, Vec<R>) = (0..n).map(|_| make()).unzip();
        let (pong_tx, pong_rx): (Vec<S>, Vec<R>) = (0..n).map(|_| make()).unzip();
        to_partner.send((ping_rx, pong_tx)).unwrap();
        for (i, (ping, pong)) in ping_tx.into_iter().zip(pong_rx).enumerate() {
            send(ping, i as u64);
            assert_eq!(recv(pong), i as u64 + 1);
        }
        start.elapsed()
    })
}

/// `iters` ping-pongs over a pair of reused channels of one kind.
fn channel_ping_pong<Tx: Send, Rx: Send>(
    iters: u64,
    (ping_tx, ping_rx): (Tx, Rx),
    (pong_tx, pong_rx): (Tx, Rx),
    send: fn(&Tx, u64),
    recv: fn(&Rx) -> u64,
) -> Duration {
    let (ready_tx, ready) = mpsc::channel::<()>();
    thread::scope(|s| {
        s.spawn(move || {
            ready_tx.send(()).unwrap();
            for _ in 0..iters {
                let v = recv(&ping_rx);
                send(&pong_tx, v + 1);
            }
        });
        ready.recv().unwrap();
        let start = Instant::now();
        for i in 0..iters {
            send(&ping_tx, i);
            assert_eq!(recv(&pong_rx), i + 1);
        }
        start.elapsed()
    })
}

fn ours_pair() -> (future::Promise<u64>, future::Future<u64>) {
    future::promise()
}
fn ours_send(p: future::Promise<u64>, v: u64) {
    p.set_result(v).unwrap();
}
fn ours_recv(f: future::Future<u64>) -> u64 {
    f.into_result().unwrap()
}
/// Waits without any spin: a done-callback unparks this thread.
fn ours_recv_parked(f: future::Future<u64>) -> u64 {
    let me = thread::current();
    f.add_done_callback(move |_| me.unpark());
    while !f.done() {
        thread::park();
    }
    f.into_result().unwrap()
}

fn oneshot_pair() -> (oneshot::Sender<u64>, oneshot::Receiver<u64>) {
    oneshot::channel()
}
fn oneshot_send(tx: oneshot::Sender<u64>, v: u64) {
    tx.send(v).unwrap();
}
fn oneshot_recv(rx: oneshot::Receiver<u64>) -> u64 {
    rx.recv().unwrap()
}
fn oneshot_recv_spin(rx: oneshot::Receiver<u64>) -> u64 {
    spin_for(|| rx.try_recv().ok()).unwrap_or_else(|| rx.recv().unwrap())
}

/// A one-shot slot on a mutex and a condvar: no spin anywhere.
struct CondvarSlot {
    value: Mutex<Option<u64>>,
    ready: Condvar,
}
fn condvar_pair() -> (Arc<CondvarSlot>, Arc<CondvarSlot>) {
    let slot = Arc::new(CondvarSlot {
        value: Mutex::new(None),
        ready: Condvar::new(),
    });
    (slot.clone(), slot)
}
fn condvar_send(slot: Arc<CondvarSlot>, v: u64) {
    *slot.value.lock().unwrap() = Some(v);
    slot.ready.notify_one();
}
fn condvar_recv(slot: Arc<CondvarSlot>) -> u64 {
    let mut value = slot.value.lock().unwrap();
    loop {
        if let Some(v) = value.take() {
            return v;
        }
        value = slot.ready.wait(value).unwrap();
    }
}

fn bounded1(iters: u64, spin: bool) -> Duration {
    let recv: fn(&crossbeam_channel::Receiver<u64>) -> u64 = if spin {
        |rx| spin_for(|| rx.try_recv().ok()).unwrap_or_else(|| rx.recv().unwrap())
    } else {
        |rx| rx.recv().unwrap()
    };
    channel_ping_pong(
        iters,
        crossbeam_channel::bounded::<u64>(1),
        crossbeam_channel::bounded::<u64>(1),
        |tx, v| tx.send(v).unwrap(),
        recv,
    )
}

fn std_mpsc(iters: u64, spin: bool) -> Duration {
    let recv: fn(&mpsc::Receiver<u64>) -> u64 = if spin {
        |rx| spin_for(|| rx.try_recv().ok()).unwrap_or_else(|| rx.recv().unwrap())
    } else {
        |rx| rx.recv().unwrap()
    };
    channel_ping_pong(
        iters,
        mpsc::channel::<u64>(),
        mpsc::channel::<u64>(),
        |tx, v| tx.send(v).unwrap(),
        recv,
    )
}

fn handoff(c: &mut Criterion) {
    let settings = Settings::from_env();
    // One element = one ping-pong = two hand-offs.
    let one = Throughput::Elements(1);
    if let Some(mut g) = harness::group(c, "future/handoff", settings, one.clone()) {
        let entries: Vec<Entry<'_>> = vec![
            (
                "future",
                Box::new(|b| {
                    b.iter_custom(|n| fresh_ping_pong(n, ours_pair, ours_send, ours_recv))
                }),
            ),
            (
                "bounded1",
                Box::new(|b| b.iter_custom(|n| bounded1(n, false))),
            ),
            (
                "std_mpsc",
                Box::new(|b| b.iter_custom(|n| std_mpsc(n, false))),
            ),
            (
                "oneshot",
                Box::new(|b| {
                    b.iter_custom(|n| fresh_ping_pong(n, oneshot_pair, oneshot_send, oneshot_recv))
                }),
            ),
        ];
        run_in_round_order(&mut g, entries);
        g.finish();
    }
    if let Some(mut g) = harness::group(c, "future/handoff_equal_spin", settings, one.clone()) {
        let entries: Vec<Entry<'_>> = vec![
            (
                "future",
                Box::new(|b| {
                    b.iter_custom(|n| fresh_ping_pong(n, ours_pair, ours_send, ours_recv))
                }),
            ),
            (
                "bounded1_spin",
                Box::new(|b| b.iter_custom(|n| bounded1(n, true))),
            ),
            (
                "std_mpsc_spin",
                Box::new(|b| b.iter_custom(|n| std_mpsc(n, true))),
            ),
            (
                "oneshot_spin",
                Box::new(|b| {
                    b.iter_custom(|n| {
                        fresh_ping_pong(n, oneshot_pair, oneshot_send, oneshot_recv_spin)
                    })
                }),
            ),
        ];
        run_in_round_order(&mut g, entries);
        g.finish();
    }
    if let Some(mut g) = harness::group(c, "future/handoff_no_spin", settings, one.clone()) {
        let entries: Vec<Entry<'_>> = vec![
            (
                "future_callback_park",
                Box::new(|b| {
                    b.iter_custom(|n| fresh_ping_pong(n, ours_pair, ours_send, ours_recv_parked))
                }),
            ),
            (
                "oneshot",
                Box::new(|b| {
                    b.iter_custom(|n| fresh_ping_pong(n, oneshot_pair, oneshot_send, oneshot_recv))
                }),
            ),
            (
                "mutex_condvar",
                Box::new(|b| {
                    b.iter_custom(|n| fresh_ping_pong(n, condvar_pair, condvar_send, condvar_recv))
                }),
            ),
        ];
        run_in_round_order(&mut g, entries);
        g.finish();
    }
    if let Some(mut g) = harness::group(c, "future/alloc", settings, one.clone()) {
        let entries: Vec<Entry<'_>> = vec![
            ("future", Box::new(|b| b.iter(|| black_box(ours_pair())))),
            (
                "oneshot",
                Box::new(|b| b.iter(|| black_box(oneshot_pair()))),
            ),
            (
                "bounded1",
                Box::new(|b| b.iter(|| black_box(crossbeam_channel::bounded::<u64>(1)))),
            ),
            (
                "std_mpsc",
                Box::new(|b| b.iter(|| black_box(mpsc::channel::<u64>()))),
            ),
        ];
        run_in_round_order(&mut g, entries);
        g.finish();
    }
}

criterion_group!(benches, handoff);
criterion_main!(benches);
