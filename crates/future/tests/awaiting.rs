//! Awaiting futures from async code, under two real runtimes (tokio and
//! smol): values, errors and cancellation, races with `cancel()`, dropped
//! and re-polled awaits, and `as_completed_stream`.
//!
//! Promises are completed from plain std threads here (the `future` crate
//! cannot depend on an executor); awaiting 10,000 thread-pool futures is in
//! `crates/thread-pool/tests/awaiting.rs`.

#![cfg(not(loom))]

#[path = "wakers/mod.rs"]
mod wakers;

use std::future::{poll_fn, Future as _, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use future::{as_completed_stream, promise, FutureError, Promise, TaskError};
use futures_core::Stream;
use wakers::CountingWaker;

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker::default());
    (counter.clone(), Waker::from(counter))
}

/// Polls `fut` once with `waker`.
fn poll_once<F: std::future::Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// Polls an await once from inside a task, so that its waker is registered
/// before the test goes on; the future must still be pending.
async fn register<T>(awaiting: &mut future::Awaiting<T>) {
    poll_fn(|cx| {
        assert!(Pin::new(&mut *awaiting).poll(cx).is_pending());
        Poll::Ready(())
    })
    .await
}

/// `StreamExt::next` without pulling in a combinator crate.
async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Completes `promise` with `value` from a new std thread, after `gate`.
fn complete_later<T: Send + 'static>(
    promise: Promise<T>,
    value: T,
    gate: Arc<Barrier>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        gate.wait();
        promise.set_result(value).unwrap();
    })
}

#[test]
fn tokio_awaits_a_value_set_by_another_thread() {
    tokio_rt().block_on(async {
        let (p, f) = promise::<String>();
        let gate = Arc::new(Barrier::new(2));
        let worker = complete_later(p, "hello".to_string(), gate.clone());
        let mut awaiting = f.clone().into_future();
        // Registered before the value exists: the wake-up must come from completion.
        register(&mut awaiting).await;
        assert_eq!(f.registered_wakers(), 1);
        gate.wait();
        assert_eq!(awaiting.await.unwrap(), "hello");
        assert_eq!(f.registered_wakers(), 0);
        worker.join().unwrap();
    });
}

#[test]
fn smol_awaits_a_value_set_by_another_thread() {
    smol::block_on(async {
        let (p, f) = promise::<u64>();
        let gate = Arc::new(Barrier::new(2));
        let worker = complete_later(p, 42, gate.clone());
        let mut awaiting = f.into_future();
        register(&mut awaiting).await;
        gate.wait();
        assert_eq!(awaiting.await.unwrap(), 42);
        worker.join().unwrap();
    });
}

#[test]
fn awaiting_moves_the_value_and_awaiting_a_reference_clones_it() {
    smol::block_on(async {
        let (p, f) = promise::<Vec<u8>>();
        p.set_result(vec![1, 2, 3]).unwrap();
        let other = f.clone();
        assert_eq!((&f).await.unwrap(), [1, 2, 3]); // cloned: still there
        assert_eq!(f.await.unwrap(), [1, 2, 3]); // moved out
        assert!(matches!(other.result(), Err(FutureError::ValueTaken)));
        assert!(matches!((&other).await, Err(FutureError::ValueTaken)));
    });
}

#[test]
fn a_value_that_is_not_clone_can_be_awaited() {
    struct NotClone(u8);
    let (p, f) = promise::<NotClone>();
    thread::spawn(move || p.set_result(NotClone(7)).unwrap());
    let got = tokio_rt().block_on(f.into_future()).unwrap();
    assert_eq!(got.0, 7);
}

#[test]
fn errors_and_cancellation_come_out_as_future_errors() {
    tokio_rt().block_on(async {
        let (p, f) = promise::<u8>();
        p.set_error(TaskError::failed(std::io::Error::other("disk full")))
            .unwrap();
        match f.await {
            Err(FutureError::Task(e)) => assert!(e.to_string().contains("disk full"), "{e}"),
            other => panic!("unexpected {other:?}"),
        }

        let (_p, f) = promise::<u8>();
        assert!(f.cancel());
        assert!(matches!(f.await, Err(FutureError::Cancelled)));

        let (p, f) = promise::<u8>();
        let dropper = thread::spawn(move || drop(p));
        assert!(matches!(
            f.await,
            Err(FutureError::Task(TaskError::BrokenPromise))
        ));
        dropper.join().unwrap();
    });
}

/// `cancel()` on another thread while a task awaits: the await ends with
/// `Cancelled` whenever the cancel lands (before the first poll, between
/// polls, during one), and with the value if completion won instead.
#[test]
fn an_await_races_with_cancel() {
    let rt = tokio_rt();
    for round in 0..500u32 {
        let (p, f) = promise::<u32>();
        let gate = Arc::new(Barrier::new(3));
        let canceller = {
            let (f, gate) = (f.clone(), gate.clone());
            thread::spawn(move || {
                gate.wait();
                f.cancel()
            })
        };
        let completer = {
            let gate = gate.clone();
            thread::spawn(move || {
                gate.wait();
                // Start the task the way an executor does; skip it if cancelled.
                if p.set_running_or_notify_cancel().unwrap() {
                    p.set_result(round).unwrap();
                }
            })
        };
        let awaiting = {
            let f = f.clone();
            rt.spawn(async move { f.await })
        };
        gate.wait();
        let outcome = rt.block_on(awaiting).unwrap();
        let cancelled = canceller.join().unwrap();
        completer.join().unwrap();
        match outcome {
            Ok(v) => assert!(!cancelled && v == round),
            Err(FutureError::Cancelled) => assert!(cancelled && f.cancelled()),
            Err(e) => panic!("unexpected {e}"),
        }
        assert_eq!(f.registered_wakers(), 0);
    }
}

#[test]
fn a_dropped_awaiting_task_unregisters_its_waker_tokio() {
    let rt = tokio_rt();
    let (p, f) = promise::<u8>();
    let (registered_tx, registered_rx) = std::sync::mpsc::channel();
    let task = {
        let f = f.clone();
        rt.spawn(async move {
            let mut awaiting = f.into_future();
            register(&mut awaiting).await;
            registered_tx.send(()).unwrap();
            awaiting.await
        })
    };
    registered_rx.recv().unwrap();
    assert_eq!(f.registered_wakers(), 1);
    task.abort();
    // The aborted task's future is dropped before its handle resolves.
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    assert_eq!(f.registered_wakers(), 0);
    p.set_result(1).unwrap(); // nobody left to wake
    assert_eq!(f.result().unwrap(), 1);
}

#[test]
fn a_dropped_awaiting_task_unregisters_its_waker_smol() {
    let (_p, f) = promise::<u8>();
    let (registered_tx, registered_rx) = std::sync::mpsc::channel();
    let task = {
        let f = f.clone();
        smol::spawn(async move {
            let mut awaiting = f.into_future();
            register(&mut awaiting).await;
            registered_tx.send(()).unwrap();
            awaiting.await
        })
    };
    registered_rx.recv().unwrap();
    assert_eq!(f.registered_wakers(), 1);
    // `cancel` drops the task's future and resolves once it is gone.
    assert!(smol::block_on(task.cancel()).is_none());
    assert_eq!(f.registered_wakers(), 0);
}

#[test]
fn an_await_that_loses_a_timeout_unregisters() {
    tokio_rt().block_on(async {
        let (_p, f) = promise::<u8>();
        let lost = tokio::time::timeout(Duration::from_millis(1), f.clone().into_future()).await;
        assert!(lost.is_err());
        assert_eq!(f.registered_wakers(), 0);
    });
}

/// Polling a fresh await with a fresh waker and dropping it, again and
/// again, leaves nothing registered: no waker is kept alive, none piles up.
#[test]
fn polling_and_dropping_awaits_repeatedly_does_not_grow_the_wakers() {
    let (p, f) = promise::<u8>();
    let mut counters = Vec::new();
    for _ in 0..10_000 {
        let (counter, waker) = counting_waker();
        let mut awaiting = (&f).into_future();
        assert!(poll_once(&mut awaiting, &waker).is_pending());
        assert_eq!(f.registered_wakers(), 1);
        drop(awaiting);
        drop(waker);
        assert_eq!(f.registered_wakers(), 0);
        counters.push(counter);
    }
    // Each waker is referenced by its counter only: none is stored anywhere.
    assert!(counters.iter().all(|c| Arc::strong_count(c) == 1));
    p.set_result(1).unwrap();
    assert!(counters.iter().all(|c| c.wakes.load(Ordering::SeqCst) == 0));
}

/// A task that moves between worker threads re-polls with a new waker: it
/// replaces the old one (one entry per await), and only the newest is woken.
#[test]
fn a_repoll_with_a_new_waker_replaces_the_old_one() {
    let (p, f) = promise::<u8>();
    let (old, old_waker) = counting_waker();
    let (new, new_waker) = counting_waker();
    let mut awaiting = f.clone().into_future();
    assert!(poll_once(&mut awaiting, &old_waker).is_pending());
    assert!(poll_once(&mut awaiting, &old_waker).is_pending()); // same waker: kept
    assert_eq!(f.registered_wakers(), 1);
    assert!(poll_once(&mut awaiting, &new_waker).is_pending());
    assert_eq!(f.registered_wakers(), 1);
    drop((old_waker, new_waker));
    assert_eq!(Arc::strong_count(&old), 1, "the old waker was released");
    assert_eq!(Arc::strong_count(&new), 2, "the new waker is stored");
    p.set_result(5).unwrap();
    assert_eq!(new.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(old.wakes.load(Ordering::SeqCst), 0);
    assert_eq!(Arc::strong_count(&new), 1, "completion drained it");
    let (_, waker) = counting_waker();
    assert_eq!(
        poll_once(&mut awaiting, &waker).map(Result::unwrap),
        Poll::Ready(5)
    );
}

#[test]
fn many_tasks_await_one_future_and_all_wake() {
    let rt = tokio_rt();
    let (p, f) = promise::<u32>();
    let (registered_tx, registered_rx) = std::sync::mpsc::channel();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (f, tx) = (f.clone(), registered_tx.clone());
            rt.spawn(async move {
                let mut awaiting = (&f).into_future();
                register(&mut awaiting).await;
                tx.send(()).unwrap();
                awaiting.await
            })
        })
        .collect();
    for _ in 0..100 {
        registered_rx.recv().unwrap();
    }
    assert_eq!(f.registered_wakers(), 100);
    p.set_result(9).unwrap();
    for task in tasks {
        assert_eq!(rt.block_on(task).unwrap().unwrap(), 9);
    }
}

/// 10,000 futures completed by two plain threads, awaited in order from
/// one async task.
#[test]
fn one_task_awaits_ten_thousand_futures_completed_by_threads() {
    const N: u64 = 10_000;
    let (promises, futures): (Vec<_>, Vec<_>) = (0..N).map(|_| promise::<u64>()).unzip();
    let mut halves = [Vec::new(), Vec::new()];
    for (i, p) in promises.into_iter().enumerate() {
        halves[i % 2].push((i as u64, p));
    }
    let workers: Vec<_> = halves
        .into_iter()
        .map(|half| {
            thread::spawn(move || {
                for (i, p) in half {
                    p.set_result(i * i).unwrap();
                }
            })
        })
        .collect();
    let sum = tokio_rt().block_on(async move {
        let mut sum = 0;
        for f in futures {
            sum += f.await.unwrap();
        }
        sum
    });
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(sum, (0..N).map(|i| i * i).sum::<u64>());
}

/// Completes the promises in the order given, from one std thread, after `gate`.
fn complete_in_order(
    promises: Vec<(usize, Promise<usize>)>,
    gate: Arc<Barrier>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        gate.wait();
        for (i, p) in promises {
            p.set_result(i).unwrap();
        }
    })
}

/// The stream yields already-done futures first, then the rest in the
/// order they complete, each once; cancelled ones come out too.
async fn stream_yields_in_completion_order() {
    let (promises, futures): (Vec<_>, Vec<_>) = (0..6).map(|_| promise::<usize>()).unzip();
    let mut promises: Vec<Option<Promise<usize>>> = promises.into_iter().map(Some).collect();
    promises[4].take().unwrap().set_result(4).unwrap(); // done before the call
    assert!(futures[2].cancel()); // done before the call too
    let mut stream = as_completed_stream(futures.iter().chain(&futures[..2])); // duplicates
    assert_eq!(stream.total(), 6);
    let gate = Arc::new(Barrier::new(2));
    let order = [3, 0, 5, 1];
    let completer = complete_in_order(
        order
            .iter()
            .map(|&i| (i, promises[i].take().unwrap()))
            .collect(),
        gate.clone(),
    );
    let mut seen = Vec::new();
    // The two done at the call, in input order.
    for _ in 0..2 {
        let f = next(&mut stream).await.unwrap();
        seen.push(if f.cancelled() { 2 } else { f.await.unwrap() });
    }
    gate.wait();
    while let Some(f) = next(&mut stream).await {
        seen.push(f.await.unwrap());
    }
    completer.join().unwrap();
    assert_eq!(seen, [2, 4, 3, 0, 5, 1]);
    assert_eq!(stream.unfinished(), 0);
    assert!(next(&mut stream).await.is_none());
}

#[test]
fn the_stream_under_tokio() {
    tokio_rt().block_on(stream_yields_in_completion_order());
}

#[test]
fn the_stream_under_smol() {
    smol::block_on(stream_yields_in_completion_order());
}

/// A pending stream keeps one waker; dropping the stream unlinks it from the
/// futures still pending, so completing them later wakes nobody.
#[test]
fn a_pending_stream_keeps_one_waker_and_unlinks_on_drop() {
    let (p, f) = promise::<u8>();
    let (counter, waker) = counting_waker();
    let mut stream = as_completed_stream([&f]);
    for _ in 0..3 {
        assert!(Pin::new(&mut stream)
            .poll_next(&mut Context::from_waker(&waker))
            .is_pending());
    }
    drop(waker);
    assert_eq!(Arc::strong_count(&counter), 2, "one stored copy");
    drop(stream);
    assert_eq!(Arc::strong_count(&counter), 1, "unlinked on drop");
    p.set_result(1).unwrap();
    assert_eq!(counter.wakes.load(Ordering::SeqCst), 0);
}

/// A stream over futures completed concurrently by many threads yields each
/// exactly once, and the task is always woken (no lost wake-up), on both runtimes.
#[test]
fn the_stream_sees_every_concurrent_completion_once() {
    type Task = Pin<Box<dyn std::future::Future<Output = Vec<usize>>>>;
    fn run(block_on: fn(Task) -> Vec<usize>) {
        const N: usize = 2_000;
        let (promises, futures): (Vec<_>, Vec<_>) = (0..N).map(|_| promise::<usize>()).unzip();
        let mut stream = as_completed_stream(&futures);
        let mut quarters: Vec<Vec<(usize, Promise<usize>)>> = (0..4).map(|_| Vec::new()).collect();
        for (i, p) in promises.into_iter().enumerate() {
            quarters[i % 4].push((i, p));
        }
        let gate = Arc::new(Barrier::new(4));
        let workers: Vec<_> = quarters
            .into_iter()
            .map(|q| complete_in_order(q, gate.clone()))
            .collect();
        let mut seen = block_on(Box::pin(async move {
            let mut seen = Vec::new();
            while let Some(f) = next(&mut stream).await {
                seen.push(f.await.unwrap());
            }
            seen
        }));
        for w in workers {
            w.join().unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..N).collect::<Vec<_>>());
    }
    run(|f| tokio_rt().block_on(f));
    run(smol::block_on);
}

#[test]
fn awaiting_is_send_and_unpin_so_any_runtime_can_spawn_it() {
    fn spawnable<F: std::future::Future + Send + Unpin + 'static>(_: &F) {}
    let (_p, f) = promise::<Vec<u8>>();
    spawnable(&f.into_future());
}
