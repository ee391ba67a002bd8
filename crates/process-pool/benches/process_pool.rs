//! Process pool benchmarks, each beside its physical limit measured in the
//! same run (docs/design.md section 3):
//!
//! * `process_pool/round_trip`: one tiny task on an idle pool (`ours`)
//!   against a one-byte ping-pong over two pipes between two processes
//!   (`raw_pipe_ping_pong`). Target: ours <= 1.5x raw.
//! * `process_pool/tiny_tasks`: 10,000 submits, then wait for all. Target:
//!   >= 100,000 tasks/s.
//! * `process_pool/map_chunked`: `map` of u64 -> u64 over 10,000,000 items in
//!   chunks of 100,000. Target: >= 10 M items/s.
//! * `process_pool/payload_16mib`: 16 MiB in and 16 MiB out (`ours`) against
//!   the same bytes through raw pipes to a child and back (`raw_pipe`).
//!   Target: ours >= 0.8x raw.
//!
//! Run: `cargo bench -p process-pool --bench process_pool`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use process_pool::ProcessPoolExecutor;
use serde_bytes::ByteBuf;

const MIB: usize = 1 << 20;
const PAYLOAD: usize = 16 * MIB;
const PIPE_SIZE: usize = MIB; // the pool's default pipe size, used for the raw pipes too

fn add_one(x: u64) -> u64 {
    x + 1
}

fn echo(data: ByteBuf) -> ByteBuf {
    data
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

fn main() {
    process_pool::start_fork_server();
    let mut ping = spawn_raw(ping_pong_server);
    let mut echoer = spawn_raw(echo_server);

    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    // Warm up: fork both workers.
    let warm: Vec<_> = (0..100).map(|i| pool.submit(add_one, i).unwrap()).collect();
    for f in warm {
        f.result().unwrap();
    }

    {
        let mut g = c.benchmark_group("process_pool/round_trip");
        g.throughput(Throughput::Elements(1));
        g.bench_function("ours", |b| {
            b.iter(|| pool.submit(add_one, 1).unwrap().result().unwrap())
        });
        g.bench_function("raw_pipe_ping_pong", |b| {
            let mut byte = [7u8; 1];
            b.iter(|| {
                ping.to_child.write_all(&byte).unwrap();
                ping.from_child.read_exact(&mut byte).unwrap();
            })
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("process_pool/tiny_tasks");
        g.sample_size(10);
        g.throughput(Throughput::Elements(10_000));
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
    {
        let mut g = c.benchmark_group("process_pool/map_chunked");
        g.sample_size(10);
        g.throughput(Throughput::Elements(10_000_000));
        g.bench_function("ours", |b| {
            b.iter(|| {
                pool.map(add_one, 0..10_000_000u64, 100_000)
                    .unwrap()
                    .map(|r| r.unwrap())
                    .sum::<u64>()
            })
        });
        g.finish();
    }
    {
        let data = vec![0x5au8; PAYLOAD];
        let mut g = c.benchmark_group("process_pool/payload_16mib");
        g.sample_size(10);
        g.throughput(Throughput::Bytes(2 * PAYLOAD as u64));
        g.bench_function("ours", |b| {
            b.iter_batched(
                || ByteBuf::from(data.clone()),
                |d| pool.submit(echo, d).unwrap().into_result().unwrap(),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("raw_pipe", |b| {
            let mut back = vec![0u8; PAYLOAD];
            b.iter(|| {
                echoer
                    .to_child
                    .write_all(&(PAYLOAD as u64).to_le_bytes())
                    .unwrap();
                echoer.to_child.write_all(&data).unwrap();
                echoer.from_child.read_exact(&mut back).unwrap();
            })
        });
        g.finish();
    }
    drop(pool);
    c.final_summary();
}
