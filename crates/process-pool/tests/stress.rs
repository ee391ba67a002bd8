//! Big payloads both ways at once, and replacements forked while the parent
//! is busy with threads that print, allocate and hold locks.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{clean, T};
use future::{FutureError, TaskError};
use process_pool::{ProcessPoolExecutor, WorkerDied};
use serde_bytes::ByteBuf;

const MIB: usize = 1 << 20;

/// Echoes the payload with its first and last bytes inverted (cheap even in
/// a debug build, and proof that the worker really handled the bytes).
fn reverse(mut data: ByteBuf) -> ByteBuf {
    if let Some(first) = data.first_mut() {
        *first = !*first;
    }
    if let Some(last) = data.last_mut() {
        *last = !*last;
    }
    data
}

/// `len` bytes of a seeded pattern, built by doubling (fast in debug builds).
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..=255u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect();
    block.repeat(len / 256)
}

fn big_payloads_both_ways(pipe_size: usize) {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .pipe_size(pipe_size)
        .build()
        .unwrap();
    // Four 32 MiB tasks on two workers: while a worker writes its 32 MiB
    // result, the pool is writing it the next 32 MiB task.
    let inputs: Vec<Vec<u8>> = (0..4).map(|s| pattern(s, 32 * MIB)).collect();
    let futs: Vec<_> = inputs
        .iter()
        .map(|d| pool.submit(reverse, ByteBuf::from(d.clone())).unwrap())
        .collect();
    for (input, f) in inputs.iter().zip(&futs) {
        let mut out = f.result_timeout(T).unwrap().into_vec();
        assert_eq!(out.len(), input.len());
        let n = out.len();
        out[0] = !out[0];
        out[n - 1] = !out[n - 1];
        assert!(out == *input, "payload corrupted");
    }
    drop(pool);
    c.check();
}

#[test]
fn payloads_of_32_mib_both_ways_at_once() {
    big_payloads_both_ways(1 << 20);
}

#[test]
fn payloads_of_32_mib_both_ways_with_the_default_64k_pipes() {
    big_payloads_both_ways(0);
}

#[test]
fn oversized_arguments_fail_their_future_only() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_frame_bytes(MIB)
        .build()
        .unwrap();
    let big = pool
        .submit(reverse, ByteBuf::from(vec![0u8; 2 * MIB]))
        .unwrap();
    match big.result_timeout(T) {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let e = e.downcast_ref::<process_pool::CodecError>().unwrap();
            assert_eq!(e.stage, process_pool::CodecStage::EncodeArgs);
            assert!(e.message.contains("cap"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let small = pool.submit(reverse, ByteBuf::from(vec![1u8, 2])).unwrap();
    assert_eq!(
        small.result_timeout(T).unwrap().into_vec(),
        vec![!1u8, !2u8]
    );
    drop(pool);
    c.check();
}

fn maybe_crash(i: u64) -> u64 {
    if i.is_multiple_of(4) {
        std::process::abort();
    }
    i * 3
}

#[test]
fn replacements_fork_safely_while_eight_threads_print_allocate_and_lock() {
    let c = clean();
    let stop = Arc::new(AtomicBool::new(false));
    let lock = Arc::new(Mutex::new(Vec::<String>::new()));
    let spins = Arc::new(AtomicU64::new(0));
    let busy: Vec<_> = (0..8)
        .map(|t| {
            let (stop, lock, spins) = (stop.clone(), lock.clone(), spins.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Hold a Mutex, the stdout lock and the allocator as much
                    // as possible: a worker forked from this process at the
                    // wrong moment would inherit these locks held.
                    let mut v = lock.lock().unwrap();
                    v.push(format!("thread {t} line {n}"));
                    if v.len() > 1000 {
                        v.clear();
                    }
                    drop(v);
                    if n.is_multiple_of(64) {
                        println!("busy thread {t} at {n}");
                        eprintln!("busy thread {t} at {n}");
                    }
                    let junk: Vec<Box<[u8]>> =
                        (0..8).map(|k| vec![k as u8; 64 + k * 512].into()).collect();
                    std::hint::black_box(junk);
                    n += 1;
                }
                spins.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();

    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..40u64)
        .map(|i| pool.submit(maybe_crash, i).unwrap())
        .collect();
    for (i, f) in futs.iter().enumerate() {
        let r = f.result_timeout(T);
        if i % 4 == 0 {
            match r {
                Err(FutureError::Task(TaskError::Executor(e))) => {
                    assert!(e.downcast_ref::<WorkerDied>().is_some(), "{e:?}")
                }
                other => panic!("task {i}: {other:?}"),
            }
        } else {
            assert_eq!(r.unwrap(), i as u64 * 3);
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.worker_exits.signal, 10);
    assert!(stats.workers_started >= 10, "{stats:?}");
    drop(pool);
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
    assert!(spins.load(Ordering::Relaxed) > 0);
    c.check();
}

fn add_one(x: u64) -> u64 {
    x + 1
}

#[test]
fn many_tiny_tasks_and_a_long_map() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let futs: Vec<_> = (0..5000u64)
        .map(|i| pool.submit(add_one, i).unwrap())
        .collect();
    for (i, f) in futs.iter().enumerate() {
        assert_eq!(f.result_timeout(T).unwrap(), i as u64 + 1);
    }
    let mut expected = 1u64;
    for r in pool.map(add_one, 0..1_000_000u64, 10_000).unwrap() {
        assert_eq!(r.unwrap(), expected);
        expected += 1;
    }
    assert_eq!(expected, 1_000_001);
    drop(pool);
    c.check();
}

// A map dropped early: tests/map.rs::an_advanced_map_dropped_cancels_what_has_not_started
// (exact counts, synchronised by a gate instead of a 20 ms sleep per item).

fn add_one_or_abort(x: u64) -> u64 {
    if x % 50 == 49 {
        std::process::abort();
    }
    x + 1
}

#[test]
fn concurrent_submitters_racing_for_idle_workers() {
    // Sequential submit+result from several threads exercises the direct
    // hand-off to idle workers (lanes) racing with the queue, with workers
    // dying on some of the handed-off tasks.
    let c = clean();
    let pool = Arc::new(ProcessPoolExecutor::new(2).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    let x = t * 1000 + i;
                    let r = pool.submit(add_one_or_abort, x).unwrap().result_timeout(T);
                    if x % 50 == 49 {
                        match r {
                            Err(FutureError::Task(TaskError::Executor(e))) => {
                                assert!(e.downcast_ref::<WorkerDied>().is_some(), "{e:?}")
                            }
                            other => panic!("{x}: {other:?}"),
                        }
                    } else {
                        assert_eq!(r.unwrap(), x + 1);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = pool.stats();
    assert_eq!(s.worker_exits.signal, 16, "{s:?}");
    assert_eq!(s.tasks_completed, 800 - 16, "{s:?}");
    drop(pool);
    c.check();
}
