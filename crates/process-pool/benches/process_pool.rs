//! Process pool benchmarks, each beside its physical limit measured in the
//! same run (targets: docs/design.md section 3 and docs/benchmarks.md). The report (`benches/`) runs this
//! in rounds; settings and round order: `benches/support/harness.rs`.
//!
//! * `process_pool/round_trip_same_cpu` and `process_pool/round_trip_split_cpu`:
//!   one tiny task on an idle pool (`ours`) against a one-byte ping-pong over
//!   two pipes between two processes (`raw_pipe_ping_pong`), both placed the
//!   same way: every thread and process on CPU 0, or the parent process on
//!   CPU 0 and the child processes (worker, raw echo) on CPU 1. The raw
//!   ping-pong is several times faster on one CPU (a pipe wake-up on the same
//!   CPU is a plain context switch); the target is judged there. Ours has a
//!   third party the raw ping-pong has not: the pool's dispatcher thread, which
//!   owns the pipes (so that many callers can share the workers), so each round
//!   trip is two thread wake-ups plus the two process wake-ups.
//! * `process_pool/tiny_tasks`: 10,000 submits, then wait for all. Target:
//!   >= 100,000 tasks/s.
//! * `process_pool/map_chunked`: `map` of u64 -> u64 over 10,000,000 items in
//!   chunks of 100,000. Target: >= 10 M items/s. `ours_auto`: the same
//!   items through `map_auto` (chunk size picked from items and workers);
//!   target: >= 10x Python's best chunksize (1000 or 100,000).
//! * `process_pool/payload_16mib`: 16 MiB in and 16 MiB out (`ours`) against
//!   the same bytes through raw pipes to a child and back, pipelined
//!   (`raw_pipe_pipelined`: a writer thread sends while the caller reads the
//!   echo, which the child sends back chunk by chunk as it reads), the limit;
//!   and serially (`raw_pipe_serial`: all in, then all out). Target: ours >=
//!   0.8x the pipelined raw pipe.
//! * `process_pool/payload_256mib`: the same with 256 MiB, ours through the
//!   pipes (`ours`) against the pipelined raw pipe, and `ours_shared`: a
//!   `SharedBytes` of that size echoed back by a worker that never touches
//!   its pages (argument and result both cross as descriptors; the memfd is
//!   made once, outside the timing). That is the cost of passing a
//!   descriptor, not a bandwidth: no target. The 16 MiB group has the same
//!   entry.
//! * `process_pool/digest_256mib`: the same work on both sides, which is
//!   what a user does with 256 MiB: the worker reads every byte and returns
//!   a digest (a wrapping sum of the bytes, 8 bytes back). `ours_shared`
//!   maps a `SharedBytes`; `ours` sends a byte buffer through the pool's
//!   pipes; `raw_pipe_pipelined` writes the bytes into a pipe from a writer
//!   thread while a child sums them as they arrive. Target: `ours_shared`
//!   >= 5x the raw pipe, in bytes read by the worker per second.
//!
//! Run: `cargo bench -p process-pool --bench process_pool`.

#[path = "../../../benches/support/harness.rs"]
mod harness;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use criterion::{BatchSize, Criterion, Throughput};
use harness::{run_in_round_order, Entry, Settings};
use process_pool::{ProcessPoolExecutor, SharedBytes};
use serde_bytes::ByteBuf;

const MIB: usize = 1 << 20;
const PAYLOAD: usize = 16 * MIB;
const BIG_PAYLOAD: usize = 256 * MIB;
const PIPE_SIZE: usize = MIB; // the pool's default pipe size, used for the raw pipes too

fn add_one(x: u64) -> u64 {
    x + 1
}

fn echo(data: ByteBuf) -> ByteBuf {
    data
}

/// The zero-copy twin of `echo`: the argument crosses as a descriptor and the
/// worker returns it, so the result crosses back the same way.
fn echo_shared(data: SharedBytes) -> SharedBytes {
    data
}

/// What the digest workers compute over every byte: a wrapping sum, cheap enough (the
/// compiler vectorises it) that the figure is the cost of getting the bytes to the worker.
fn digest(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0u64, |sum, &b| sum.wrapping_add(u64::from(b)))
}

/// A worker that reads every byte of a shared-memory argument.
fn digest_shared(data: SharedBytes) -> u64 {
    digest(data.as_slice())
}

/// A worker that reads every byte of an argument sent through the pipes.
fn digest_buf(data: ByteBuf) -> u64 {
    digest(&data)
}

/// A child process at the other end of two pipes.
struct RawChild {
    to_child: std::fs::File,
    from_child: std::fs::File,
    pid: libc::pid_t,
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: valid array for pipe2.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created these descriptors; we own them.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on descriptors we own.
    unsafe {
        libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int);
    }
    (r.into(), w.into())
}

/// Forks a child running `serve(from_parent, to_parent)`. Called at the top
/// of `main`, while the process is single-threaded.
fn spawn_raw(serve: fn(std::fs::File, std::fs::File)) -> RawChild {
    let (child_r, parent_w) = pipe();
    let (parent_r, child_w) = pipe();
    // SAFETY: the process is single-threaded here (start of main).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        drop((parent_w, parent_r));
        serve(child_r, child_w);
        // SAFETY: leave without running the parent's atexit handlers.
        unsafe { libc::_exit(0) };
    }
    RawChild {
        to_child: parent_w,
        from_child: parent_r,
        pid,
    }
}

/// One byte in, one byte out, until end-of-file.
fn ping_pong_server(mut r: std::fs::File, mut w: std::fs::File) {
    let mut b = [0u8; 1];
    while r.read_exact(&mut b).is_ok() {
        if w.write_all(&b).is_err() {
            break;
        }
    }
}

/// Reads a length and that many bytes, then writes them back.
fn echo_server(mut r: std::fs::File, mut w: std::fs::File) {
    let mut len = [0u8; 8];
    let mut buf = Vec::new();
    while r.read_exact(&mut len).is_ok() {
        buf.resize(u64::from_le_bytes(len) as usize, 0);
        if r.read_exact(&mut buf).is_err() || w.write_all(&buf).is_err() {
            break;
        }
    }
}

/// Reads a length, then echoes that many bytes back chunk by chunk as they
/// arrive, so the way back runs while the way in still does.
fn chunked_echo_server(mut r: std::fs::File, mut w: std::fs::File) {
    let mut len = [0u8; 8];
    let mut buf = vec![0u8; 64 * 1024];
    while r.read_exact(&mut len).is_ok() {
        let mut left = u64::from_le_bytes(len) as usize;
        while left > 0 {
            let want = left.min(buf.len());
            match r.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if w.write_all(&buf[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
            }
        }
    }
}

/// Reads a length, then sums that many bytes as they arrive and writes the
/// 8-byte digest back: the raw pipe doing the digest workers' work.
fn digest_server(mut r: std::fs::File, mut w: std::fs::File) {
    let mut len = [0u8; 8];
    let mut buf = vec![0u8; 64 * 1024];
    while r.read_exact(&mut len).is_ok() {
        let mut left = u64::from_le_bytes(len) as usize;
        let mut sum = 0u64;
        while left > 0 {
            let want = left.min(buf.len());
            match r.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    sum = sum.wrapping_add(digest(&buf[..n]));
                    left -= n;
                }
            }
        }
        if w.write_all(&sum.to_le_bytes()).is_err() {
            return;
        }
    }
}

/// Where the threads of this process and of its descendants may run.
#[derive(Clone, Copy, Debug)]
enum Placement {
    /// Every thread and process on CPU 0.
    SameCpu,
    /// This process on CPU 0, its descendants on CPU 1.
    SplitCpu,
    /// Anywhere (the default).
    Free,
}

fn set_affinity(tid: libc::pid_t, cpu: Option<usize>) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for c in 0..cpus {
        if cpu.is_none_or(|only| only == c) {
            // SAFETY: `c` is below the machine's CPU count, within cpu_set_t.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    // SAFETY: a valid set of the size passed; a thread that exited meanwhile
    // only makes the call fail, which is harmless here.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

/// The thread ids of process `pid`.
fn tasks(pid: libc::pid_t) -> Vec<libc::pid_t> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every descendant process of `root` (children, their children ...).
fn descendants(root: libc::pid_t) -> Vec<libc::pid_t> {
    let parents: Vec<(libc::pid_t, libc::pid_t)> = fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let pid: libc::pid_t = e.file_name().to_str()?.parse().ok()?;
                    let stat = fs::read_to_string(e.path().join("stat")).ok()?;
                    // After the command name: state, then the parent's pid.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
                    Some((pid, ppid))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Places this process's threads and every descendant's threads.
fn place(placement: Placement) {
    let (parent, children) = match placement {
        Placement::SameCpu => (Some(0), Some(0)),
        Placement::SplitCpu => (Some(0), Some(1)),
        Placement::Free => (None, None),
    };
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    for tid in tasks(me) {
        set_affinity(tid, parent);
    }
    for pid in descendants(me) {
        for tid in tasks(pid) {
            set_affinity(tid, children);
        }
    }
}

impl Drop for RawChild {
    fn drop(&mut self) {
        // Closing our ends makes the child see end-of-file and exit.
        let (_, _) = (
            std::mem::replace(
                &mut self.to_child,
                std::fs::File::open("/dev/null").unwrap(),
            ),
            std::mem::replace(
                &mut self.from_child,
                std::fs::File::open("/dev/null").unwrap(),
            ),
        );
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// `size` bytes in and out: ours (a `ByteBuf` through the pool's pipes) against the raw pipe,
/// pipelined, and, when given, serial.
fn payload_group(
    c: &mut Criterion,
    id: &str,
    size: usize,
    pool: &ProcessPoolExecutor,
    pipelined: &mut RawChild,
    serial: Option<&mut RawChild>,
) {
    let Some(mut g) = harness::group(
        c,
        id,
        Settings::from_env(),
        Throughput::Bytes(2 * size as u64),
    ) else {
        return;
    };
    let data = vec![0x5au8; size];
    let shared = SharedBytes::from_slice(&data).expect("a memfd for the SharedBytes payload");
    let data = &data;
    let mut entries: Vec<Entry<'_>> = vec![
        (
            "ours_shared",
            Box::new(move |b| {
                b.iter(|| {
                    let back = pool.submit(echo_shared, shared.clone()).unwrap();
                    let back = back.into_result().unwrap();
                    assert_eq!(back.len(), size);
                    back
                })
            }),
        ),
        (
            "ours",
            Box::new(move |b| {
                b.iter_batched(
                    || ByteBuf::from(data.clone()),
                    |d| pool.submit(echo, d).unwrap().into_result().unwrap(),
                    BatchSize::PerIteration,
                )
            }),
        ),
        (
            "raw_pipe_pipelined",
            Box::new(move |b| {
                let mut back = vec![0u8; size];
                b.iter(|| {
                    let to_child = &mut pipelined.to_child;
                    let from_child = &mut pipelined.from_child;
                    std::thread::scope(|s| {
                        s.spawn(move || {
                            to_child.write_all(&(size as u64).to_le_bytes()).unwrap();
                            to_child.write_all(data).unwrap();
                        });
                        from_child.read_exact(&mut back).unwrap();
                    });
                })
            }),
        ),
    ];
    if let Some(serial) = serial {
        entries.push((
            "raw_pipe_serial",
            Box::new(move |b| {
                let mut back = vec![0u8; size];
                b.iter(|| {
                    serial
                        .to_child
                        .write_all(&(size as u64).to_le_bytes())
                        .unwrap();
                    serial.to_child.write_all(data).unwrap();
                    serial.from_child.read_exact(&mut back).unwrap();
                })
            }),
        ));
    }
    run_in_round_order(&mut g, entries);
    g.finish();
}

/// `size` bytes to a worker that reads them all and returns their digest: ours with a
/// `SharedBytes` and through the pipes, against the raw pipe with a summing child. The
/// throughput is the bytes the worker reads.
fn digest_group(
    c: &mut Criterion,
    id: &str,
    size: usize,
    pool: &ProcessPoolExecutor,
    raw: &mut RawChild,
) {
    let Some(mut g) = harness::group(c, id, Settings::from_env(), Throughput::Bytes(size as u64))
    else {
        return;
    };
    let data = vec![0x5au8; size];
    let expected = digest(&data);
    let shared = SharedBytes::from_slice(&data).expect("a memfd for the SharedBytes payload");
    let data = &data;
    let entries: Vec<Entry<'_>> = vec![
        (
            "ours_shared",
            Box::new(move |b| {
                b.iter(|| {
                    let sum = pool.submit(digest_shared, shared.clone()).unwrap();
                    assert_eq!(sum.into_result().unwrap(), expected);
                })
            }),
        ),
        (
            "ours",
            Box::new(move |b| {
                b.iter_batched(
                    || ByteBuf::from(data.clone()),
                    |d| {
                        let sum = pool.submit(digest_buf, d).unwrap();
                        assert_eq!(sum.into_result().unwrap(), expected);
                    },
                    BatchSize::PerIteration,
                )
            }),
        ),
        (
            "raw_pipe_pipelined",
            Box::new(move |b| {
                b.iter(|| {
                    let to_child = &mut raw.to_child;
                    let from_child = &mut raw.from_child;
                    let mut sum = [0u8; 8];
                    std::thread::scope(|s| {
                        s.spawn(move || {
                            to_child.write_all(&(size as u64).to_le_bytes()).unwrap();
                            to_child.write_all(data).unwrap();
                        });
                        from_child.read_exact(&mut sum).unwrap();
                    });
                    assert_eq!(u64::from_le_bytes(sum), expected);
                })
            }),
        ),
    ];
    run_in_round_order(&mut g, entries);
    g.finish();
}

fn main() {
    process_pool::start_fork_server();
    let mut ping = spawn_raw(ping_pong_server);
    let mut serial = spawn_raw(echo_server);
    let mut pipelined = spawn_raw(chunked_echo_server);
    let mut digester = spawn_raw(digest_server);

    let mut c = Criterion::default().configure_from_args();
    let settings = Settings::from_env();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    // Warm up: fork both workers.
    let warm: Vec<_> = (0..100).map(|i| pool.submit(add_one, i).unwrap()).collect();
    for f in warm {
        f.result().unwrap();
    }

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (id, placement) in [
        ("process_pool/round_trip_same_cpu", Placement::SameCpu),
        ("process_pool/round_trip_split_cpu", Placement::SplitCpu),
    ] {
        if matches!(placement, Placement::SplitCpu) && cpus < 2 {
            continue;
        }
        let Some(mut g) = harness::group(&mut c, id, settings, Throughput::Elements(1)) else {
            continue;
        };
        place(placement);
        let pool = &pool;
        let ping = &mut ping;
        let entries: Vec<Entry<'_>> = vec![
            (
                "ours",
                Box::new(move |b| b.iter(|| pool.submit(add_one, 1).unwrap().result().unwrap())),
            ),
            (
                "raw_pipe_ping_pong",
                Box::new(move |b| {
                    let mut byte = [7u8; 1];
                    b.iter(|| {
                        ping.to_child.write_all(&byte).unwrap();
                        ping.from_child.read_exact(&mut byte).unwrap();
                    })
                }),
            ),
        ];
        run_in_round_order(&mut g, entries);
        g.finish();
        place(Placement::Free);
    }
    if let Some(mut g) = harness::group(
        &mut c,
        "process_pool/tiny_tasks",
        settings,
        Throughput::Elements(10_000),
    ) {
        g.bench_function("ours", |b| {
            b.iter(|| {
                let futs: Vec<_> = (0..10_000u64)
                    .map(|i| pool.submit(add_one, i).unwrap())
                    .collect();
                futs.into_iter()
                    .map(|f| f.into_result().unwrap())
                    .sum::<u64>()
            })
        });
        g.finish();
    }
    if let Some(mut g) = harness::group(
        &mut c,
        "process_pool/map_chunked",
        settings,
        Throughput::Elements(10_000_000),
    ) {
        g.bench_function("ours", |b| {
            b.iter(|| {
                pool.map(add_one, 0..10_000_000u64, 100_000)
                    .unwrap()
                    .map(|r| r.unwrap())
                    .sum::<u64>()
            })
        });
        g.bench_function("ours_auto", |b| {
            b.iter(|| {
                pool.map_auto(add_one, 0..10_000_000u64)
                    .unwrap()
                    .map(|r| r.unwrap())
                    .sum::<u64>()
            })
        });
        g.finish();
    }
    payload_group(
        &mut c,
        "process_pool/payload_16mib",
        PAYLOAD,
        &pool,
        &mut pipelined,
        Some(&mut serial),
    );
    payload_group(
        &mut c,
        "process_pool/payload_256mib",
        BIG_PAYLOAD,
        &pool,
        &mut pipelined,
        None,
    );
    digest_group(
        &mut c,
        "process_pool/digest_256mib",
        BIG_PAYLOAD,
        &pool,
        &mut digester,
    );
    drop(pool);
    c.final_summary();
}
