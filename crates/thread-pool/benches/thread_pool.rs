//! Our pool side by side with rayon and the `threadpool` crate, every pool with 2 workers
//! (the machine has 2 cores). Run: `cargo bench -p thread-pool --bench thread_pool`; the
//! report (`benches/`) runs it in rounds and reads the groups below. Settings, round order
//! and side figures: `benches/support/harness.rs`.
//!
//! * `thread_pool/round_trip_hot`: submit one empty task and wait for its result, back to
//!   back, so every pool is still awake (spinning or yielding) from the last one. Peers:
//!   rayon with the same result path as ours (`rayon::spawn` completing one of our
//!   promises), rayon `install` (blocks the caller on a latch), the `threadpool` crate (an
//!   mpsc send back), and the floor: two threads spinning on one atomic
//!   (`atomic_spin_ping_pong`), the fastest any cross-thread round trip can be.
//! * `thread_pool/round_trip_idle`: the same, but before each round trip the bench waits
//!   (untimed) until every other thread is asleep in the kernel: each pool is parked, and the
//!   round trip pays the wake-up.
//!
//! Both round-trip groups also record the process CPU time per round trip (every thread,
//! spinning included) as `<who>/cpu` side figures, beside criterion's wall time.
//!
//! * `thread_pool/throughput_200k`: 200,000 tiny tasks, each with its own way back (our
//!   future; the threadpool crate's mpsc send; rayon's scope has none), submitted, then all
//!   awaited.
//! * `thread_pool/trace_200k`: the same 200,000 tasks on our pool without a recorder
//!   (`untraced`, the code path every untraced pool runs), with one (`traced`: three
//!   events per task, `future::trace`), and untraced plus the three clock reads and 16-byte
//!   stores that recording cannot do without (`recording_floor`): what recording the
//!   schedule costs when asked, and how far that is above its physical floor. The traced
//!   recorder is cleared between batches, untimed (see [`trace_overhead`]).
//! * `thread_pool/map_1m`: an ordered map over 1,000,000 integers: ours with a fixed chunk
//!   size, and our default (adaptive claims, `src/adaptive.rs`), against rayon's `par_iter`
//!   (which splits adaptively) and rayon with one job per item (`with_max_len(1)`).

#[path = "../../../benches/support/harness.rs"]
mod harness;
#[path = "../../../benches/support/threads.rs"]
mod threads;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::{run_in_round_order, Entry, Settings};
use rayon::prelude::*;
use thread_pool::{MapOptions, ThreadPoolExecutor};
use threads::CpuMeters;

const WORKERS: usize = 2;

fn ours() -> ThreadPoolExecutor {
    ThreadPoolExecutor::new(WORKERS)
}

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("rayon pool")
}

fn threadpool_crate() -> threadpool::ThreadPool {
    threadpool::ThreadPool::new(WORKERS)
}

/// A thread that answers every odd value stored in `cell` with the next even one, spinning;
/// 0 tells it to stop. Dropping it stops and joins it.
struct SpinPartner {
    cell: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
    next: u64,
}

/// The value that tells the partner to stop (never a ping: pings are odd).
const STOP: u64 = u64::MAX - 1;

impl SpinPartner {
    fn start() -> SpinPartner {
        let cell = Arc::new(AtomicU64::new(0));
        let theirs = cell.clone();
        let thread = thread::spawn(move || loop {
            // Acquire/Release: the ping and the pong carry no data but their own value, so
            // the ordering only matters for the final STOP; it is the natural pairing.
            let v = theirs.load(Ordering::Acquire);
            if v == STOP {
                return;
            }
            if v % 2 == 1 {
                theirs.store(v + 1, Ordering::Release);
            } else {
                std::hint::spin_loop();
            }
        });
        SpinPartner {
            cell,
            thread: Some(thread),
            next: 1,
        }
    }

    /// One round trip: store a ping, spin until the pong.
    fn ping_pong(&mut self) {
        let ping = self.next;
        self.cell.store(ping, Ordering::Release);
        while self.cell.load(Ordering::Acquire) != ping + 1 {
            std::hint::spin_loop();
        }
        self.next += 2;
    }
}

impl Drop for SpinPartner {
    fn drop(&mut self) {
        self.cell.store(STOP, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// How a round-trip group runs `iters` operations: back to back, or each after the process
/// is quiet.
#[derive(Clone, Copy)]
enum Pace {
    Hot,
    Idle,
}

fn run_ops(
    meters: &CpuMeters,
    who: &str,
    pace: Pace,
    iters: u64,
    op: impl FnMut(),
) -> std::time::Duration {
    match pace {
        Pace::Hot => meters.back_to_back(who, iters, op),
        Pace::Idle => meters.after_quiet(who, iters, op),
    }
}

/// The round-trip entries shared by the hot and idle groups. Each pool is made on first use
/// and dropped with its entry, so only the pool being measured has threads.
fn round_trip_entries<'a>(meters: &'a CpuMeters, pace: Pace) -> Vec<Entry<'a>> {
    let mut entries: Vec<Entry<'a>> = Vec::new();
    let mut pool = None;
    entries.push((
        "ours",
        Box::new(move |b| {
            let pool = pool.get_or_insert_with(ours);
            b.iter_custom(|iters| {
                run_ops(meters, "ours", pace, iters, || {
                    pool.submit(|| black_box(()))
                        .unwrap()
                        .into_result()
                        .unwrap()
                })
            })
        }),
    ));
    let mut pool = None;
    entries.push((
        "rayon_spawn_future",
        Box::new(move |b| {
            let pool: &mut rayon::ThreadPool = pool.get_or_insert_with(rayon_pool);
            b.iter_custom(|iters| {
                run_ops(meters, "rayon_spawn_future", pace, iters, || {
                    let (promise, future) = future::promise::<()>();
                    pool.spawn(move || promise.set_result(()).unwrap());
                    future.into_result().unwrap()
                })
            })
        }),
    ));
    let mut pool = None;
    entries.push((
        "rayon_install",
        Box::new(move |b| {
            let pool: &mut rayon::ThreadPool = pool.get_or_insert_with(rayon_pool);
            b.iter_custom(|iters| {
                run_ops(meters, "rayon_install", pace, iters, || {
                    pool.install(|| black_box(()))
                })
            })
        }),
    ));
    let mut pool = None;
    entries.push((
        "threadpool_crate",
        Box::new(move |b| {
            let (pool, tx, rx) = pool.get_or_insert_with(|| {
                let (tx, rx) = mpsc::channel::<()>();
                (threadpool_crate(), tx, rx)
            });
            b.iter_custom(|iters| {
                run_ops(meters, "threadpool_crate", pace, iters, || {
                    let tx = tx.clone();
                    pool.execute(move || tx.send(()).unwrap());
                    rx.recv().unwrap()
                })
            })
        }),
    ));
    if let Pace::Hot = pace {
        let mut partner = None;
        entries.push((
            "atomic_spin_ping_pong",
            Box::new(move |b| {
                let partner = partner.get_or_insert_with(SpinPartner::start);
                b.iter_custom(|iters| {
                    meters.back_to_back("atomic_spin_ping_pong", iters, || partner.ping_pong())
                })
            }),
        ));
    }
    entries
}

fn round_trip(c: &mut Criterion) {
    let settings = Settings::from_env();
    for (id, pace, settings) in [
        ("thread_pool/round_trip_hot", Pace::Hot, settings),
        // Each idle round trip waits (untimed) about a millisecond for the pools to park:
        // a tenth of the time keeps the group's wall time near the others'.
        (
            "thread_pool/round_trip_idle",
            Pace::Idle,
            settings.scaled(0.1),
        ),
    ] {
        let Some(mut group) = harness::group(c, id, settings, Throughput::Elements(1)) else {
            continue;
        };
        let meters = CpuMeters::default();
        run_in_round_order(&mut group, round_trip_entries(&meters, pace));
        group.finish();
        meters.record(id);
    }
}

const TASKS: u64 = 200_000;

fn throughput(c: &mut Criterion) {
    let id = "thread_pool/throughput_200k";
    let Some(mut group) = harness::group(c, id, Settings::from_env(), Throughput::Elements(TASKS))
    else {
        return;
    };
    let mut pool = None;
    // The futures' vector is reused across iterations, as a caller in a loop would; its
    // growth is not what this measures.
    let mut futures = Vec::with_capacity(TASKS as usize);
    let ours_entry: Entry<'_> = (
        "ours",
        Box::new(move |b| {
            let pool = pool.get_or_insert_with(ours);
            b.iter(|| {
                futures.extend((0..TASKS).map(|i| pool.submit(move || black_box(i)).unwrap()));
                let mut sum = 0;
                for f in futures.drain(..) {
                    sum += f.into_result().unwrap();
                }
                black_box(sum)
            })
        }),
    );
    let mut pool = None;
    let threadpool_entry: Entry<'_> = (
        "threadpool_crate",
        Box::new(move |b| {
            let pool = pool.get_or_insert_with(threadpool_crate);
            b.iter(|| {
                let (tx, rx) = mpsc::channel();
                for i in 0..TASKS {
                    let tx = tx.clone();
                    pool.execute(move || tx.send(black_box(i)).unwrap());
                }
                drop(tx);
                black_box(rx.iter().sum::<u64>())
            })
        }),
    );
    let mut pool = None;
    let rayon_entry: Entry<'_> = (
        "rayon_scope",
        Box::new(move |b| {
            let pool: &mut rayon::ThreadPool = pool.get_or_insert_with(rayon_pool);
            b.iter(|| {
                pool.scope(|s| {
                    for i in 0..TASKS {
                        s.spawn(move |_| {
                            black_box(i);
                        });
                    }
                })
            })
        }),
    );
    run_in_round_order(&mut group, vec![ours_entry, threadpool_entry, rayon_entry]);
    group.finish();
}

/// How a `trace_200k` entry records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recording {
    /// No recorder: the code path of every untraced pool.
    Untraced,
    /// A recorder (`future::trace`), cleared between batches.
    Traced,
    /// No recorder, but each task pays what recording must at the least:
    /// the three clock reads and three 16-byte stores ([`floor`]).
    Floor,
}

/// `thread_pool/trace_200k`. Every entry times only its batches of 200k
/// tasks (`iter_custom`); between two batches, untimed, the traced entry
/// clears its recorder (`Recorder::clear`): a recorder kept for the whole
/// criterion run would hold every event of every iteration (hundreds of
/// millions), which no program does, and each batch would record into
/// fresh memory instead of the blocks the last one used. The other entries
/// run the same loop, so all three are timed alike.
fn trace_overhead(c: &mut Criterion) {
    let id = "thread_pool/trace_200k";
    let Some(mut group) = harness::group(c, id, Settings::from_env(), Throughput::Elements(TASKS))
    else {
        return;
    };
    let entry = |name: &'static str, how: Recording| -> Entry<'_> {
        let mut pool = None;
        let mut futures = Vec::with_capacity(TASKS as usize);
        (
            name,
            Box::new(move |b| {
                let (pool, recorder) = pool.get_or_insert_with(|| {
                    let recorder = future::trace::Recorder::new();
                    let builder = ThreadPoolExecutor::builder().max_workers(WORKERS);
                    let builder = match how {
                        Recording::Traced => builder.trace(recorder.clone()),
                        Recording::Untraced | Recording::Floor => builder,
                    };
                    (builder.build().unwrap(), recorder)
                });
                b.iter_custom(|batches| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..batches {
                        let start = Instant::now();
                        if how == Recording::Floor {
                            futures.extend((0..TASKS).map(|i| {
                                floor::record(i);
                                pool.submit(move || {
                                    floor::record(i);
                                    let out = black_box(i);
                                    floor::record(i);
                                    out
                                })
                                .unwrap()
                            }));
                        } else {
                            futures.extend(
                                (0..TASKS).map(|i| pool.submit(move || black_box(i)).unwrap()),
                            );
                        }
                        let mut sum = 0;
                        for f in futures.drain(..) {
                            sum += f.into_result().unwrap();
                        }
                        black_box(sum);
                        timed += start.elapsed();
                        recorder.clear();
                    }
                    timed
                })
            }),
        )
    };
    run_in_round_order(
        &mut group,
        vec![
            entry("untraced", Recording::Untraced),
            entry("traced", Recording::Traced),
            entry("recording_floor", Recording::Floor),
        ],
    );
    group.finish();
}

/// The physical floor of recording a transition: one clock read (the TSC,
/// as `future::trace` reads it on this machine) and one 16-byte store into
/// the thread's own buffer, published by a `Release` store of its length,
/// as the recorder's blocks are; no lock, no lane, no task numbering. The
/// buffer (8 MiB a thread, written round and round) is touched once, as a
/// cleared recorder's blocks are reused.
mod floor {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::Release};

    const SLOTS: usize = 1 << 19;

    struct Buffer {
        words: Box<[AtomicU64]>,
        len: AtomicUsize,
        next: std::cell::Cell<usize>,
    }

    thread_local! {
        static BUFFER: Buffer = Buffer {
            words: (0..2 * SLOTS).map(|_| AtomicU64::new(0)).collect(),
            len: AtomicUsize::new(0),
            next: std::cell::Cell::new(0),
        };
    }

    #[inline]
    pub fn record(task: u64) {
        let stamp = clock();
        BUFFER.with(|b| {
            let slot = b.next.get();
            // Relaxed, then Release: the recorder's publication.
            b.words[2 * slot].store(task, Relaxed);
            b.words[2 * slot + 1].store(stamp << 2, Relaxed);
            b.next.set((slot + 1) % SLOTS);
            b.len.store(slot + 1, Release);
        });
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn clock() -> u64 {
        // SAFETY: `rdtsc` exists on every x86_64 CPU and touches no memory.
        unsafe { std::arch::x86_64::_rdtsc() }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    fn clock() -> u64 {
        use std::sync::OnceLock;
        use std::time::Instant;
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

const ITEMS: u64 = 1_000_000;
/// Items per task of ours with a chunk size; four chunks in flight.
const CHUNK: usize = 4096;

fn map(c: &mut Criterion) {
    let id = "thread_pool/map_1m";
    let Some(mut group) = harness::group(c, id, Settings::from_env(), Throughput::Elements(ITEMS))
    else {
        return;
    };
    let mut pool = None;
    let ours_chunked: Entry<'_> = (
        "ours_chunked",
        Box::new(move |b| {
            let pool = pool.get_or_insert_with(ours);
            let options = MapOptions::new().window(4 * CHUNK).chunk_size(CHUNK);
            b.iter(|| {
                pool.map_with(|x: u64| black_box(x * 2), 0..ITEMS, options)
                    .unwrap()
                    .map(Result::unwrap)
                    .sum::<u64>()
            })
        }),
    );
    let mut pool = None;
    let rayon_par_iter: Entry<'_> = (
        "rayon_par_iter",
        Box::new(move |b| {
            let pool: &mut rayon::ThreadPool = pool.get_or_insert_with(rayon_pool);
            b.iter(|| {
                pool.install(|| {
                    (0..ITEMS)
                        .into_par_iter()
                        .map(|x| black_box(x * 2))
                        .sum::<u64>()
                })
            })
        }),
    );
    let mut pool = None;
    let ours_default: Entry<'_> = (
        "ours_default",
        Box::new(move |b| {
            let pool = pool.get_or_insert_with(ours);
            b.iter(|| {
                pool.map(|x: u64| black_box(x * 2), 0..ITEMS)
                    .unwrap()
                    .map(Result::unwrap)
                    .sum::<u64>()
            })
        }),
    );
    let mut pool = None;
    let rayon_per_item: Entry<'_> = (
        "rayon_max_len_1",
        Box::new(move |b| {
            let pool: &mut rayon::ThreadPool = pool.get_or_insert_with(rayon_pool);
            b.iter(|| {
                pool.install(|| {
                    // A usize range: rayon indexes (and so splits to length 1) only those.
                    (0..ITEMS as usize)
                        .into_par_iter()
                        .with_max_len(1)
                        .map(|x| black_box(x as u64 * 2))
                        .sum::<u64>()
                })
            })
        }),
    );
    run_in_round_order(
        &mut group,
        vec![ours_chunked, rayon_par_iter, ours_default, rayon_per_item],
    );
    group.finish();
}

criterion_group!(benches, round_trip, throughput, trace_overhead, map);
criterion_main!(benches);
