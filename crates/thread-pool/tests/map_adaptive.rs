//! The default `map`'s adaptive chunks: slow items run
//! side by side, one slow item among many cheap ones holds back only its
//! own claim, results stay in input order, errors stay per item, and the
//! 3.14 rules hold (a shutdown loses nothing; cancel_futures cancels).
//! No wall-clock bounds: each property is checked by who ran at once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
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

/// What a map over `0..n` yielded, split: the values in order, then the
/// items that yielded `Cancelled`, then anything else (which fails the test).
fn split(out: Vec<Result<u32, FutureError>>) -> (Vec<u32>, Vec<usize>) {
    let mut values = Vec::new();
    let mut cancelled = Vec::new();
    for (i, r) in out.into_iter().enumerate() {
        match r {
            Ok(v) => values.push(v),
            Err(FutureError::Cancelled) => cancelled.push(i),
            other => panic!("item {i}: {other:?}"),
        }
    }
    (values, cancelled)
}

#[test]
fn dropping_an_advanced_map_starts_nothing_more_of_the_running_claim() {
    // A runner looks for a cancellation before every item, not once per
    // claim. Cheap items let the claims grow (1, 2, 4, 8, ...),
    // so item 40 runs inside a claim of many items. Dropping the iterator
    // while it runs must start no other item, the rest of its claim
    // included: exactly items 0..=40 run.
    const HOLD: u32 = 40;
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let mut it = pool
        .map(
            common::counted_holding(&ran, HOLD, &started, &gate),
            0..1000,
        )
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

#[test]
fn cancel_futures_cancels_the_unstarted_items_of_a_running_map() {
    // The only runner is inside item 1 when the pool is
    // shut down with cancel_futures: item 1 finishes (a running task cannot
    // be cancelled), and no item after it starts (they are the map's queued
    // work, which Python 3.14 and the windowed map cancel).
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let mut it = pool
        .map(common::counted_holding(&ran, 1, &started, &gate), 0..100)
        .unwrap();
    let first = it.next().unwrap();
    assert!(started.wait(), "item 1 never started");
    pool.shutdown(false, true);
    gate.set();
    let (values, cancelled) = split(std::iter::once(first).chain(it).collect());
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran, 2,
        "{ran} items ran: some after shutdown(cancel_futures)"
    );
    assert_eq!(values, [0, 1]);
    assert_eq!(cancelled, (2..100).collect::<Vec<_>>());
}

#[test]
fn a_waited_cancel_futures_shutdown_waits_only_for_the_running_items() {
    // The same with wait: two runners, each inside its first item
    // (a runner's first claim is one item), while another thread waits for
    // the results. shutdown(wait = true, cancel_futures = true) returns once
    // those two items end; it does not run the other 998.
    let pool = ThreadPoolExecutor::new(2);
    let gate = Event::new();
    let running = Rendezvous::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let (g, meet, r) = (gate.clone(), running.clone(), ran.clone());
    let it = pool
        .map(
            move |x: u32| {
                if r.fetch_add(1, SeqCst) < 2 {
                    meet.arrive_and_wait();
                    assert!(g.wait(), "the test never opened the gate");
                }
                x
            },
            0..1000,
        )
        .unwrap();
    let consumer = std::thread::spawn(move || it.collect::<Vec<_>>());
    assert!(running.all_here.wait(), "the two runners never started");
    std::thread::scope(|s| {
        // The gate opens once the shutdown has begun, so the two items end
        // after the cancel, never before it.
        s.spawn(|| {
            assert!(common::eventually(|| pool.is_shutdown()));
            gate.set();
        });
        pool.shutdown(true, true);
    });
    let (values, cancelled) = split(consumer.join().unwrap());
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran, 2,
        "{ran} items ran: some after shutdown(cancel_futures)"
    );
    assert_eq!(values, [0, 1]);
    assert_eq!(cancelled, (2..1000).collect::<Vec<_>>());
}

#[test]
fn shutdown_with_cancel_futures_from_inside_an_item_cancels_the_rest() {
    // ADVERSARY class 1 and 6: user code shuts its own pool down from inside
    // a map item, waiting (from a worker, which must not join itself). Its
    // own item finishes and is yielded; nothing after it starts.
    const STOP: u32 = 30;
    let pool = Arc::new(ThreadPoolExecutor::new(1));
    let handle = Arc::new(std::sync::OnceLock::<std::sync::Weak<ThreadPoolExecutor>>::new());
    handle.set(Arc::downgrade(&pool)).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (h, r) = (handle.clone(), ran.clone());
    let it = pool
        .map(
            move |x: u32| {
                r.fetch_add(1, SeqCst);
                if x == STOP {
                    let pool = h.get().and_then(std::sync::Weak::upgrade);
                    pool.expect("the test set the handle").shutdown(true, true);
                }
                x
            },
            0..1000,
        )
        .unwrap();
    let (values, cancelled) = split(it.collect());
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran,
        STOP as usize + 1,
        "{ran} items ran: some after the shutdown"
    );
    assert_eq!(values, (0..=STOP).collect::<Vec<_>>());
    assert_eq!(cancelled, (STOP as usize + 1..1000).collect::<Vec<_>>());
    pool.shutdown(true, false);
}

#[test]
fn a_pool_that_breaks_during_a_map_fails_its_unstarted_items() {
    // Python: a broken thread pool fails every queued work item with
    // BrokenThreadPool, and lets the running ones finish. The map's runner
    // is inside item 1 on the first worker when the second worker's
    // initializer fails: item 1 finishes, the items after it yield the
    // broken pool's error and never run.
    let inits = Arc::new(AtomicUsize::new(0));
    let (started, gate) = (Event::new(), Event::new());
    let (i, s) = (inits.clone(), started.clone());
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(move || -> Result<(), String> {
            if i.fetch_add(1, SeqCst) == 0 {
                return Ok(());
            }
            // The second worker fails once item 1 runs on the first.
            assert!(s.wait(), "item 1 never started");
            Err("no second worker today".to_string())
        })
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut it = pool
        .map(common::counted_holding(&ran, 1, &started, &gate), 0..100)
        .unwrap();
    assert_eq!(it.next().unwrap().unwrap(), 0);
    assert!(started.wait(), "item 1 never started");
    assert!(common::eventually(|| pool.broken().is_some()));
    gate.set();
    assert_eq!(it.next().unwrap().unwrap(), 1);
    let rest: Vec<_> = it.collect();
    let ran = ran.load(SeqCst);
    assert_eq!(ran, 2, "{ran} items ran: some after the pool broke");
    assert_eq!(rest.len(), 98);
    for r in rest {
        match r {
            Err(FutureError::Task(TaskError::BrokenExecutor(m))) => {
                assert!(m.contains("no second worker today"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_cancel_that_stops_two_claims_yields_each_item_as_it_ran() {
    // Two runners each stop inside a claim, at their first item from K on.
    // The lower claim's unstarted rest is a gap, and the other runner's
    // items after it did run: each item must yield its value if it ran and
    // `Cancelled` if it did not, whatever ran after a gap.
    const N: usize = 100_000;
    const K: usize = 50_000;
    let pool = ThreadPoolExecutor::new(2);
    let ran: Arc<Vec<AtomicBool>> = Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
    let both_held = Rendezvous::new(2);
    let gate = Event::new();
    let (r, meet, g) = (ran.clone(), both_held.clone(), gate.clone());
    let it = pool
        .map(
            move |x: u32| {
                r[x as usize].store(true, SeqCst);
                if x as usize >= K {
                    meet.arrive_and_wait();
                    assert!(g.wait(), "the test never opened the gate");
                }
                x
            },
            0..N as u32,
        )
        .unwrap();
    assert!(both_held.all_here.wait(), "the two runners never reached K");
    pool.shutdown(false, true);
    gate.set();
    let out: Vec<_> = it.collect();
    assert_eq!(out.len(), N);
    let mut held = Vec::new();
    for (i, r) in out.into_iter().enumerate() {
        let did_run = ran[i].load(SeqCst);
        match r {
            Ok(v) if did_run => assert_eq!(v as usize, i),
            Err(FutureError::Cancelled) if !did_run => {}
            other => panic!("item {i} (ran: {did_run}) yielded {other:?}"),
        }
        if did_run && i >= K {
            held.push(i);
        }
    }
    // Everything before K ran (claims are taken in order); from K on, only
    // the two items the runners were held in.
    assert!((0..K).all(|i| ran[i].load(SeqCst)));
    assert_eq!(
        held.len(),
        2,
        "{} items from K on ran, the first: {:?}",
        held.len(),
        &held[..held.len().min(5)]
    );
}

#[test]
fn a_timeout_during_a_claim_starts_nothing_more_of_it() {
    // ADVERSARY class 6, the map's timeout: gh-95166 cancels what is in
    // flight, so the rest of the claim item 40 runs in must not start. The
    // iteration begins once item 40 is held, long after the 1 ms deadline:
    // the pieces already delivered are yielded, then the timeout.
    const HOLD: u32 = 40;
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let it = pool
        .map_with(
            common::counted_holding(&ran, HOLD, &started, &gate),
            0..1000,
            thread_pool::MapOptions::new().timeout(std::time::Duration::from_millis(1)),
        )
        .unwrap();
    assert!(started.wait(), "item {HOLD} never started");
    let out: Vec<_> = it.collect();
    let (last, values) = out.split_last().expect("at least the timeout");
    assert!(matches!(last, Err(FutureError::Timeout(_))), "{last:?}");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v.as_ref().unwrap(), i as u32);
    }
    assert!(values.len() <= HOLD as usize);
    gate.set();
    pool.shutdown(true, false);
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran,
        HOLD as usize + 1,
        "{ran} items ran: some after the timeout"
    );
}

#[test]
fn cancel_futures_after_a_plain_shutdown_still_stops_a_running_map() {
    // Python: a second shutdown(cancel_futures=True) after a plain one
    // cancels what is still pending. The map keeps running after the first
    // (its items are the pool's work) and stops at the second.
    let pool = ThreadPoolExecutor::new(1);
    let (ran, started, gate) = (Arc::new(AtomicUsize::new(0)), Event::new(), Event::new());
    let it = pool
        .map(common::counted_holding(&ran, 1, &started, &gate), 0..100)
        .unwrap();
    assert!(started.wait(), "item 1 never started");
    pool.shutdown(false, false);
    pool.shutdown(false, true);
    gate.set();
    let (values, cancelled) = split(it.collect());
    let ran = ran.load(SeqCst);
    assert_eq!(
        ran, 2,
        "{ran} items ran: some after shutdown(cancel_futures)"
    );
    assert_eq!(values, [0, 1]);
    assert_eq!(cancelled, (2..100).collect::<Vec<_>>());
}

#[test]
fn the_timeout_counts_from_the_map_call_even_when_reading_the_input_is_slow() {
    // CPython takes `end_time` before it reads the input and submits. Here
    // reading the input takes longer than the timeout, so the deadline has
    // passed when `map` returns: the first `next()`, on an item that has
    // not finished (item 0 is held on a gate), yields the timeout at once.
    // The gate opens as soon as the consumer sleeps while item 0 runs (seen
    // in /proc; the consumer sleeps only if it waits): a `next()` that waited for a deadline counted from after
    // the read would then get item 0's value instead.
    const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
    let pool = ThreadPoolExecutor::new(1);
    let (started, gate) = (Event::new(), Event::new());
    let (s, g) = (started.clone(), gate.clone());
    let f = move |x: u32| {
        if x == 0 {
            s.set();
            assert!(g.wait(), "the test never opened the gate");
        }
        x
    };
    let input = (0..4u32).inspect(|&x| {
        if x == 3 {
            // The read of the input outlasts the timeout (a lower bound:
            // `sleep` never returns early).
            std::thread::sleep(TIMEOUT + TIMEOUT / 2);
        }
    });
    let done = Arc::new(AtomicBool::new(false));
    let first = std::thread::scope(|scope| {
        let consumer = std::thread::Builder::new()
            .name("map-deadline".into())
            .spawn_scoped(scope, || {
                let mut it = pool
                    .map_with(f, input, thread_pool::MapOptions::new().timeout(TIMEOUT))
                    .unwrap();
                let first = it.next();
                done.store(true, SeqCst);
                first
            })
            .unwrap();
        // Once item 0 runs, the read is over and the consumer is in
        // `next()`. (Timed out at once, the consumer cancels the map and
        // item 0 may never start.)
        let slept = common::eventually(|| {
            done.load(SeqCst)
                || started.is_set()
                    && common::os_thread_states("map-deadline")
                        .iter()
                        .any(|(_, state)| *state == 'S')
        });
        assert!(slept, "the consumer neither returned nor slept");
        gate.set();
        consumer.join().unwrap()
    });
    assert!(
        matches!(first, Some(Err(FutureError::Timeout(_)))),
        "the first item after the deadline: {first:?} (the timeout was counted from after the input was read)"
    );
    pool.shutdown(true, false);
}

#[test]
fn a_panic_in_the_input_still_runs_the_items_read_before_it() {
    // CPython submits each item as it reads it: when the input raises, `map`
    // raises, and the futures already submitted run (nothing cancels them).
    // The default map reads the whole input before it starts its runners,
    // so on a panic in the input the items read before it must still run
    // (and `map` passes the input's panic on).
    let pool = ThreadPoolExecutor::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let input = (0..10u32).inspect(|&x| {
        if x == 5 {
            panic!("the input fails at item 5");
        }
    });
    let r = ran.clone();
    let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map(
            move |_: u32| {
                r.fetch_add(1, SeqCst);
            },
            input,
        )
    }));
    let payload = call.expect_err("map returned although its input panicked");
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("the input fails at item 5"),
        "map passed on another panic"
    );
    pool.shutdown(true, false);
    assert_eq!(
        ran.load(SeqCst),
        5,
        "the items read before the panic did not all run"
    );
}

#[test]
fn an_item_that_waits_for_the_consumer_does_not_hang_the_map() {
    // Review 6: one worker; each item takes one of 4 permits, and the
    // consumer gives one back per result it gets. CPython (a future per
    // item) goes on; a map whose results reach the iterator only when
    // their whole claim ends hangs at the fifth item of a claim, which
    // waits for the consumer, who waits for the four before it.
    const N: u32 = 1000;
    let pool = ThreadPoolExecutor::new(1);
    let sem = common::Semaphore::new(4);
    let mut out = Vec::new();
    for r in pool.map(common::takes_a_permit(&sem), 0..N).unwrap() {
        out.push(r.unwrap());
        sem.release();
    }
    common::check_every_item_got_a_permit(&out, N);
}
