//! Thread-pool futures awaited from async code (tokio and smol): the
//! `future` crate's `IntoFuture` and `as_completed_stream`, end to end with
//! a real executor. (The `future` crate cannot depend on the pool, so these
//! cross-crate tests live here.)

#![cfg(not(loom))]

mod common;

use std::future::{poll_fn, IntoFuture};
use std::pin::Pin;

use common::Event;
use future::{as_completed_stream, FutureError};
use futures_core::Stream;
use thread_pool::ThreadPoolExecutor;

const N: u64 = 10_000;

fn expected_sum() -> u64 {
    (0..N).map(|i| i * 3).sum()
}

/// 10,000 pool futures awaited one after the other from a single async task
/// on a current-thread runtime: no thread per future, nothing blocks.
#[test]
fn one_tokio_task_awaits_ten_thousand_pool_futures() {
    let pool = ThreadPoolExecutor::new(2);
    let futures: Vec<_> = (0..N)
        .map(|i| pool.submit(move || i * 3).unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sum = rt.block_on(async move {
        let mut sum = 0;
        for f in futures {
            sum += f.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, expected_sum());
}

/// The same 10,000 futures as a completion-order stream, under smol.
#[test]
fn a_smol_task_streams_ten_thousand_pool_futures_as_they_complete() {
    let pool = ThreadPoolExecutor::new(2);
    let futures: Vec<_> = (0..N)
        .map(|i| pool.submit(move || i * 3).unwrap())
        .collect();
    let mut stream = as_completed_stream(&futures);
    let (count, sum) = smol::block_on(async {
        let (mut count, mut sum) = (0, 0);
        while let Some(f) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            count += 1;
            sum += f.await.unwrap();
        }
        (count, sum)
    });
    assert_eq!(count, N);
    assert_eq!(sum, expected_sum());
}

/// A queued task cancelled while a task awaits it: the await ends with
/// `Cancelled`, and the pool skips the task.
#[test]
fn cancelling_a_queued_pool_task_ends_its_await() {
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let blocker = {
        let gate = gate.clone();
        pool.submit(move || assert!(gate.wait())).unwrap()
    };
    let queued = pool.submit(|| 1u8).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let awaiting = rt.spawn(queued.clone().into_future());
    assert!(queued.cancel());
    assert!(matches!(
        rt.block_on(awaiting).unwrap(),
        Err(FutureError::Cancelled)
    ));
    gate.set();
    // `block_on` and `spawn` take a `std::future::Future`: `into_future()`
    // turns a handle into one (`.await` does that by itself).
    rt.block_on(blocker.into_future()).unwrap();
}
