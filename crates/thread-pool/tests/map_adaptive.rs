//! The default `map`'s adaptive chunks (issue 14, part 1): slow items run
//! side by side, one slow item among many cheap ones holds back only its
//! own claim, results stay in input order, errors stay per item, and the
//! 3.14 rules hold (a shutdown loses nothing; cancel_futures cancels).
//! No wall-clock bounds: each property is checked by who ran at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use common::{Event, LONG};
use thread_pool::{FutureError, TaskError, ThreadPoolExecutor};

/// Counts arrivals and opens once `n` have arrived (gives up after LONG).
#[derive(Clone)]
struct Rendezvous {
    arrived: Arc<AtomicUsize>,
    all_here: Event,
    n: usize,
}

impl Rendezvous {
    fn new(n: usize) -> Self {
        Rendezvous {
            arrived: Arc::new(AtomicUsize::new(0)),
            all_here: Event::new(),
            n,
        }
    }

    /// Arrives and waits for the others; false if they never came.
    fn arrive_and_wait(&self) -> bool {
        if self.arrived.fetch_add(1, SeqCst) + 1 >= self.n {
            self.all_here.set();
        }
        self.all_here.wait()
    }
}

#[test]
fn twenty_slow_items_on_twenty_workers_all_run_at_once() {
    // Each item waits until all 20 are running: it only ends in time if
    // no item waits behind another in a chunk (20 sleeps take one sleep).
    let pool = ThreadPoolExecutor::new(20);
    let meet = Rendezvous::new(20);
    let m = meet.clone();
    let out: Vec<bool> = pool
        .map(move |_: u32| m.arrive_and_wait(), 0..20)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(out.iter().all(|&met| met), "not all 20 items ran at once");
    assert_eq!(pool.stats().workers_alive, 20);
}

#[test]
fn one_slow_item_among_a_million_holds_back_only_its_claim() {
    // The slow item waits until all but its own claim's cheap items (at most
    // about 50 us of work) have run elsewhere. With fixed big chunks (a
    // quarter of the input) its chunk-mates could not run meanwhile.
    const N: usize = 1_000_000;
    const SLOW: usize = 600_000;
    const CLAIM_AT_MOST: usize = 100_000;
    let pool = ThreadPoolExecutor::new(2);
    let done = Arc::new(AtomicUsize::new(0));
    let others_done = Event::new();
    let (d, o) = (done.clone(), others_done.clone());
    let it = pool
        .map(
            move |x: usize| {
                if x == SLOW {
                    let waited = o.wait();
                    d.fetch_add(1, SeqCst);
                    return if waited { x } else { usize::MAX };
                }
                if d.fetch_add(1, SeqCst) + 1 >= N - 1 - CLAIM_AT_MOST {
                    o.set();
                }
                x
            },
            0..N,
        )
        .unwrap();
    let mut next = 0;
    for r in it {
        let v = r.unwrap();
        assert_eq!(v, next, "out of order, or the slow item timed out");
        next += 1;
    }
    assert_eq!(next, N);
    assert_eq!(done.load(SeqCst), N);
}

#[test]
fn panics_fail_only_their_items_in_order() {
    let pool = ThreadPoolExecutor::new(3);
    let it = pool
        .map(
            |x: u32| {
                if x % 1000 == 7 {
                    panic!("bad {x}");
                }
                x * 2
            },
            0..50_000u32,
        )
        .unwrap();
    for (i, r) in it.enumerate() {
        let x = i as u32;
        match r {
            Err(FutureError::Task(TaskError::Panicked(m))) => {
                assert_eq!(x % 1000, 7, "{m}");
                assert_eq!(m, format!("bad {x}"));
            }
            Ok(v) => {
                assert_ne!(x % 1000, 7);
                assert_eq!(v, x * 2);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn cancel_futures_cancels_the_items_no_runner_started() {
    // The only worker is busy, so the map's runner waits in the queue; a
    // shutdown with cancel_futures cancels it, and every item says so.
    let pool = ThreadPoolExecutor::new(1);
    let gate = Event::new();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait()).unwrap();
    assert!(common::eventually(|| pool.stats().running == 1));
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let it = pool
        .map(
            move |x: u32| {
                r.fetch_add(1, SeqCst);
                x
            },
            0..10,
        )
        .unwrap();
    let opener = std::thread::spawn(move || gate.set());
    pool.shutdown(true, true);
    opener.join().unwrap();
    assert!(blocker.result_timeout(LONG).unwrap());
    let out: Vec<_> = it.collect();
    assert_eq!(out.len(), 10);
    assert!(
        out.iter().all(|r| matches!(r, Err(FutureError::Cancelled))),
        "{out:?}"
    );
    assert_eq!(ran.load(SeqCst), 0);
}

/// A map item that counts itself and blocks on `gate` if it is `hold`,
/// saying so on `started` first.
fn counted_holding(
    ran: &Arc<AtomicUsize>,
    hold: u32,
    started: &Event,
    gate: &Event,
) -> impl Fn(u32) -> u32 + Send + Sync + 'static {
    let (ran, started, gate) = (ran.clone(), started.clone(), gate.clone());
    move |x| {
        ran.fetch_add(1, SeqCst);
        if x == hold {
            started.set();
            assert!(gate.wait(), "the test never opened the gate");
        }
        x
    }
}

#[test]
fn dropping_an_advanced_map_starts_nothing_more_of_the_running_claim() {
    // Issue 17, item 8. Cheap items let the claims grow (1, 2, 4, 8, ...),
    // so item 40 runs inside a claim of many items. Dropping the iterator
    // while it runs must start no other item, the rest of its claim
    // included: exactly items 0..=40 run.
    const HOLD: u32 = 40;
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let mut it = pool
        .map(counted_holding(&ran, HOLD, &started, &gate), 0..1000)
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(started.wait(), "item {HOLD} never started");
    drop(it);
    gate.set();
    pool.shutdown(true, false);
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran,
        HOLD as usize + 1,
        "{ran} items ran: some after the drop"
    );
}
