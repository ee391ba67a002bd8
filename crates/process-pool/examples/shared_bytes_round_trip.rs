//! A 256 MiB argument and result round trip: `SharedBytes` through the pool
//! against the same bytes through a pipelined raw pipe, interleaved.
//!
//! ```text
//! cargo run --release -p process-pool --example shared_bytes_round_trip [MiB] [rounds]
//! ```
//!
//! * `shared/echo`: `pool.submit(echo, data)` where `echo` returns its
//!   argument: 256 MiB go to a worker and 256 MiB come back, as descriptors.
//! * `shared/read`: the worker reads every byte (a sum), then returns the
//!   argument: what mapping and faulting in the pages costs a worker that
//!   consumes the data.
//! * `shared/copy`: the worker returns a *new* 256 MiB buffer, a copy of
//!   the argument made in place (`SharedBytes::with_len`): every page of
//!   both buffers is touched, in the worker.
//! * `raw/pipe`: the limit for pipes: a raw child process (forked before
//!   any thread) echoes a pipe in 1 MiB chunks; the parent writes 256 MiB
//!   from a writer thread while its main thread reads the 256 MiB back
//!   into a buffer that is reused (already faulted in). Pipes of 1 MiB
//!   (`F_SETPIPE_SZ`), the pool's own pipe size.
//!
//! The three run in turn, round after round (A, B, C, A, B, C, ...), so a
//! busy machine slows them alike; it prints each round and the median
//! ratios with their ranges.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use process_pool::{ProcessPoolExecutor, SharedBytes};

fn echo(data: SharedBytes) -> SharedBytes {
    data
}

/// Reads every byte (a sum), then returns the argument: the receiver's
/// cost of mapping and faulting in 256 MiB.
fn read_all(data: SharedBytes) -> SharedBytes {
    let sum = data.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    std::hint::black_box(sum);
    data
}

fn copy(data: SharedBytes) -> SharedBytes {
    SharedBytes::with_len(data.len(), |buf| buf.copy_from_slice(&data)).expect("memfd")
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded: two new descriptors owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&r, &w] {
        // SAFETY: F_SETPIPE_SZ on a pipe we own; failure is harmless.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    }
    (r, w)
}

fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: writes from a valid slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads into a valid, writable slice.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The raw peer: a child that echoes `down` into `up` in 1 MiB chunks.
struct RawPeer {
    pid: libc::pid_t,
    /// `None` once closed (the child then sees end-of-file and exits).
    to_child: Option<OwnedFd>,
    from_child: OwnedFd,
}

impl RawPeer {
    /// Forks the echo child. Call while the process is single-threaded.
    fn start() -> RawPeer {
        let (down_r, down_w) = pipe();
        let (up_r, up_w) = pipe();
        // SAFETY: the process is single-threaded here (first thing in main,
        // before the pool exists); the child only calls read, write and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop((down_w, up_r));
            let mut chunk = vec![0u8; 1 << 20];
            loop {
                match read_some(down_r.as_raw_fd(), &mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write_all(up_w.as_raw_fd(), &chunk[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            // SAFETY: _exit is always sound; no destructors of the parent's image.
            unsafe { libc::_exit(0) };
        }
        drop((down_r, up_w));
        RawPeer {
            pid,
            to_child: Some(down_w),
            from_child: up_r,
        }
    }

    /// Sends `data` and reads as many bytes back into `back`.
    fn round_trip(&self, data: &[u8], back: &mut [u8]) {
        let to = self.to_child.as_ref().expect("open").as_raw_fd();
        let from = self.from_child.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(move || write_all(to, data).expect("write to the raw peer"));
            let mut got = 0;
            while got < back.len() {
                let n = read_some(from, &mut back[got..]).expect("read from the raw peer");
                assert!(n > 0, "the raw peer closed early");
                got += n;
            }
        });
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        // Closing our end makes the child see end-of-file and exit.
        drop(self.to_child.take());
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let peer = RawPeer::start();
    process_pool::start_fork_server();
    let mut args = std::env::args().skip(1);
    let mib: usize = args
        .next()
        .map_or(256, |s| s.parse().expect("MiB: a number"));
    let rounds: usize = args
        .next()
        .map_or(5, |s| s.parse().expect("rounds: a number"));
    let len = mib << 20;

    let bytes: Vec<u8> = (0..len).map(|i| (i as u8) ^ (i >> 20) as u8).collect();
    let data = SharedBytes::from_slice(&bytes).expect("memfd");
    let mut back = vec![0u8; len];
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let t = Duration::from_secs(300);
    // Warm up: the worker exists, the pages are faulted in once.
    pool.submit(echo, data.clone())
        .unwrap()
        .result_timeout(t)
        .unwrap();
    peer.round_trip(&bytes, &mut back);
    assert!(back == bytes, "the raw peer echoed wrong bytes");

    println!("{mib} MiB in, {mib} MiB out; {rounds} rounds, interleaved");
    println!(
        "round  shared/echo  shared/read  shared/copy  raw/pipe   raw/echo  raw/read  raw/copy"
    );
    let (mut echo_ratio, mut read_ratio, mut copy_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut e_t, mut d_t, mut c_t, mut r_t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let start = Instant::now();
        let got = pool
            .submit(echo, data.clone())
            .unwrap()
            .result_timeout(t)
            .unwrap();
        let e = start.elapsed().as_secs_f64();
        assert!(SharedBytes::ptr_eq(&got, &data) || got.len() == len);
        drop(got);

        let start = Instant::now();
        let got = pool
            .submit(read_all, data.clone())
            .unwrap()
            .result_timeout(t)
            .unwrap();
        let d = start.elapsed().as_secs_f64();
        assert_eq!(got.len(), len);
        drop(got);

        let start = Instant::now();
        let got = pool
            .submit(copy, data.clone())
            .unwrap()
            .result_timeout(t)
            .unwrap();
        let c = start.elapsed().as_secs_f64();
        assert_eq!(got.len(), len);
        drop(got);

        let start = Instant::now();
        peer.round_trip(&bytes, &mut back);
        let r = start.elapsed().as_secs_f64();

        println!(
            "{round:>5}  {:>9.2} ms  {:>9.2} ms  {:>9.2} ms  {:>7.2} ms  {:>7.1}x  {:>7.1}x  {:>7.1}x",
            e * 1e3,
            d * 1e3,
            c * 1e3,
            r * 1e3,
            r / e,
            r / d,
            r / c
        );
        echo_ratio.push(r / e);
        read_ratio.push(r / d);
        d_t.push(d);
        copy_ratio.push(r / c);
        e_t.push(e);
        c_t.push(c);
        r_t.push(r);
    }
    let range = |v: &[f64]| {
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        (min, max)
    };
    let (emin, emax) = range(&echo_ratio);
    let (cmin, cmax) = range(&copy_ratio);
    let (dmin, dmax) = range(&read_ratio);
    println!(
        "median: shared/echo {:.2} ms, shared/read {:.2} ms, shared/copy {:.2} ms, raw/pipe {:.2} ms ({:.2} GiB/s each way)",
        median(&mut e_t) * 1e3,
        median(&mut d_t) * 1e3,
        median(&mut c_t) * 1e3,
        median(&mut r_t.clone()) * 1e3,
        mib as f64 / 1024.0 / median(&mut r_t)
    );
    println!(
        "raw/pipe over shared/echo: median {:.1}x (range {emin:.1}-{emax:.1}x); \
         over shared/read: median {:.1}x (range {dmin:.1}-{dmax:.1}x); \
         over shared/copy: median {:.1}x (range {cmin:.1}-{cmax:.1}x)",
        median(&mut echo_ratio),
        median(&mut read_ratio),
        median(&mut copy_ratio)
    );
    pool.shutdown(true, false);
    drop(peer);
}
