//! `SharedBytes`: big payloads cross as sealed memfd descriptors, mapped on
//! the other side. Round trips compare equal and really share the file (the
//! same inode on both sides), a worker that dies holding a mapping and a
//! result nobody reads leave no descriptor and no mapping behind, the seals
//! hold on both sides, and `Vec<u8>` works as before.

mod common;

use std::os::fd::{AsFd, AsRawFd};

use common::{clean, T};
use future::TaskError;
use process_pool::{ProcessPoolExecutor, SharedBytes, WorkerDied};
use serde::{Deserialize, Serialize};

const MIB: usize = 1 << 20;

/// The hang guard for tasks that walk tens of MiB byte by byte: in a debug
/// build on a loaded 2-core machine one such pass took more than `T` (30 s).
const BIG: std::time::Duration = std::time::Duration::from_secs(180);

/// The memfds of `SharedBytes` this process holds open, by inode.
fn memfd_fds() -> Vec<u64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            if target
                .to_string_lossy()
                .contains("memfd:process-pool-shared-bytes")
            {
                if let Ok(meta) = std::fs::metadata(e.path()) {
                    use std::os::unix::fs::MetadataExt;
                    out.push(meta.ino());
                }
            }
        }
    }
    out
}

/// Lines of /proc/self/maps that map a `SharedBytes` memfd.
fn memfd_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("memfd:process-pool-shared-bytes"))
        .count()
}

fn inode(b: &SharedBytes) -> u64 {
    // SAFETY: a zeroed stat is a valid out-parameter; fstat on a live fd.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        assert_eq!(libc::fstat(b.as_fd().as_raw_fd(), &mut st), 0);
        st.st_ino
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
        .collect()
}

/// The inode the worker mapped, and a new buffer: each byte + 1.
fn inode_and_increment(data: SharedBytes) -> (u64, SharedBytes) {
    let out = SharedBytes::with_len(data.len(), |buf| {
        for (o, &i) in buf.iter_mut().zip(data.iter()) {
            *o = i.wrapping_add(1);
        }
    })
    .unwrap();
    (inode(&data), out)
}

fn echo(data: SharedBytes) -> SharedBytes {
    data
}

#[test]
fn a_64_mib_argument_and_result_round_trip_as_the_same_file() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let bytes = pattern(72 * MIB, 3);
    let arg = SharedBytes::from_slice(&bytes).unwrap();
    let (ino, out) = pool
        .submit(inode_and_increment, arg.clone())
        .unwrap()
        .result_timeout(BIG)
        .unwrap();
    assert_eq!(ino, inode(&arg), "the worker mapped our memfd, not a copy");
    assert_eq!(out.len(), bytes.len());
    assert!(out
        .iter()
        .zip(&bytes)
        .all(|(&o, &i)| o == i.wrapping_add(1)));
    // An echo comes back as the very same file.
    let back = pool
        .submit(echo, arg.clone())
        .unwrap()
        .result_timeout(BIG)
        .unwrap();
    assert_eq!(inode(&back), inode(&arg));
    assert_eq!(back, arg);
    drop((arg, out, back));
    pool.shutdown(true, false);
    assert_eq!(memfd_fds(), Vec::<u64>::new());
    assert_eq!(memfd_maps(), 0);
    drop(pool);
    c.check();
}

fn map_then_abort(data: SharedBytes) -> u64 {
    // Touch every page, so the worker really holds the mapping.
    let sum: u64 = data.iter().step_by(4096).map(|&b| b as u64).sum();
    if sum != u64::MAX {
        std::process::abort();
    }
    sum
}

#[test]
fn a_worker_that_dies_holding_a_mapping_leaks_nothing() {
    let c = clean();
    let fds_before = memfd_fds();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let arg = SharedBytes::from_slice(&pattern(16 * MIB, 1)).unwrap();
    let ino = inode(&arg);
    let err = pool
        .submit(map_then_abort, arg.clone())
        .unwrap()
        .exception_timeout(BIG)
        .unwrap()
        .expect("the worker died");
    match err {
        TaskError::Executor(e) => {
            let died = e.downcast_ref::<WorkerDied>().expect("WorkerDied");
            assert_eq!(died.cause.signal_name(), Some("SIGABRT"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The pool goes on, with the same buffer, in a new worker.
    let back = pool
        .submit(echo, arg.clone())
        .unwrap()
        .result_timeout(T)
        .unwrap();
    assert_eq!(inode(&back), ino);
    drop((arg, back));
    pool.shutdown(true, false);
    assert_eq!(memfd_fds(), fds_before, "a memfd is still open");
    assert_eq!(memfd_maps(), 0, "a memfd is still mapped");
    // Nobody else holds it either: not the fork server.
    let fs = process_pool::fork_server_info().unwrap().pid;
    for e in std::fs::read_dir(format!("/proc/{fs}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        assert!(!target.to_string_lossy().contains("memfd"), "{target:?}");
    }
    drop(pool);
    c.check();
}

/// Blocks until the test opens the FIFO `path` for writing, then returns
/// `len` bytes in a new buffer.
fn produce_after_fifo((path, len): (String, usize)) -> SharedBytes {
    let mut f = std::fs::File::open(&path).unwrap();
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut f, &mut b).unwrap();
    SharedBytes::with_len(len, |buf| buf.fill(b[0])).unwrap()
}

#[test]
fn a_result_the_parent_never_reads_is_freed() {
    let c = clean();
    let dir = std::env::temp_dir().join(format!("pp-shm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("go");
    let _ = std::fs::remove_file(&fifo);
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let fut = pool
        .submit(
            produce_after_fifo,
            (fifo.to_str().unwrap().to_string(), 8 * MIB),
        )
        .unwrap();
    // The future is gone before the task can finish (it waits for us).
    drop(fut);
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    std::io::Write::write_all(&mut w, &[7]).unwrap();
    drop(w);
    // The result was produced, sent and decoded by the pool; nothing holds it.
    common::wait_until("the task to complete", || pool.stats().tasks_completed == 1);
    pool.shutdown(true, false);
    assert_eq!(memfd_fds(), Vec::<u64>::new());
    assert_eq!(memfd_maps(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
    drop(pool);
    c.check();
}

fn seals_and_bytes(data: SharedBytes) -> (i32, SharedBytes) {
    // SAFETY: F_GET_SEALS reads the seals of a live descriptor.
    let seals = unsafe { libc::fcntl(data.as_fd().as_raw_fd(), libc::F_GET_SEALS) };
    (seals, SharedBytes::from_slice(&data[..16]).unwrap())
}

/// Every way a holder could change the bytes: all refused.
fn assert_immutable(b: &SharedBytes) {
    let fd = b.as_fd().as_raw_fd();
    let want = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: plain system calls on a live descriptor; a writable mapping,
    // if one were (wrongly) granted, is unmapped at once.
    unsafe {
        assert_eq!(libc::fcntl(fd, libc::F_GET_SEALS) & want, want);
        assert_eq!(libc::pwrite(fd, b"x".as_ptr().cast(), 1, 0), -1);
        assert_eq!(libc::ftruncate(fd, 0), -1);
        assert_eq!(libc::ftruncate(fd, (b.len() + 4096) as libc::off_t), -1);
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_eq!(p, libc::MAP_FAILED, "a writable shared mapping was granted");
        // The seals themselves are sealed.
        assert_eq!(libc::fcntl(fd, libc::F_ADD_SEALS, 0), -1);
        // A descriptor reopened through /proc cannot write either.
        let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).unwrap();
        let rw = libc::open(path.as_ptr(), libc::O_RDWR);
        if rw >= 0 {
            assert_eq!(libc::write(rw, b"x".as_ptr().cast(), 1), -1);
            libc::close(rw);
        }
    }
}

#[test]
fn sealing_prevents_the_sender_from_mutating_what_the_receiver_maps() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let arg = SharedBytes::from_slice(&pattern(MIB, 9)).unwrap();
    assert_immutable(&arg);
    let (seals, result) = pool
        .submit(seals_and_bytes, arg.clone())
        .unwrap()
        .result_timeout(T)
        .unwrap();
    let want = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    assert_eq!(seals & want, want, "the worker received a sealed memfd");
    assert_immutable(&result);
    assert_eq!(&result[..], &arg[..16]);
    drop((arg, result));
    pool.shutdown(true, false);
    drop(pool);
    c.check();
}

fn reverse(mut v: Vec<u8>) -> Vec<u8> {
    v.reverse();
    v
}

#[derive(Clone, Serialize, Deserialize)]
struct Mixed {
    a: SharedBytes,
    b: SharedBytes,
    again: SharedBytes,
    plain: Vec<u8>,
    n: u64,
}

fn lengths(m: Mixed) -> (usize, usize, bool, usize, u64, Mixed) {
    let same = SharedBytes::ptr_eq(&m.a, &m.again);
    (m.a.len(), m.b.len(), same, m.plain.len(), m.n, m)
}

fn first_byte(b: SharedBytes) -> u8 {
    b[0]
}

#[test]
fn vec_u8_still_works_and_values_mix() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let v = pattern(3 * MIB, 5);
    let mut want = v.clone();
    want.reverse();
    assert_eq!(
        pool.submit(reverse, v).unwrap().result_timeout(T).unwrap(),
        want
    );

    // Several buffers in one value, one of them twice: one descriptor each.
    let a = SharedBytes::from_slice(b"alpha").unwrap();
    let b = SharedBytes::from_slice(&pattern(2 * MIB, 2)).unwrap();
    let m = Mixed {
        a: a.clone(),
        b: b.clone(),
        again: a.clone(),
        plain: vec![1, 2, 3],
        n: 42,
    };
    let (la, lb, same, lp, n, back) = pool.submit(lengths, m).unwrap().result_timeout(T).unwrap();
    assert_eq!((la, lb, same, lp, n), (5, 2 * MIB, true, 3, 42));
    assert_eq!(inode(&back.a), inode(&a));
    assert_eq!(inode(&back.b), inode(&b));
    assert!(SharedBytes::ptr_eq(&back.a, &back.again));

    // Many at once (tasks with descriptors go to idle workers, others
    // pipeline behind them), and through map's chunks.
    let bufs: Vec<SharedBytes> = (0..40u8)
        .map(|i| SharedBytes::from_slice(&[i; 100]).unwrap())
        .collect();
    let futs: Vec<_> = bufs
        .iter()
        .map(|b| pool.submit(first_byte, b.clone()).unwrap())
        .collect();
    for (i, f) in futs.into_iter().enumerate() {
        assert_eq!(f.result_timeout(T).unwrap(), i as u8);
    }
    let firsts: Vec<u8> = pool
        .map(first_byte, bufs.clone(), 3)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(firsts, (0..40u8).collect::<Vec<_>>());
    drop((a, b, back, bufs));
    pool.shutdown(true, false);
    assert_eq!(memfd_fds(), Vec::<u64>::new());
    assert_eq!(memfd_maps(), 0);
    drop(pool);
    c.check();
}

#[test]
fn shared_bytes_is_send_sync_and_derefs() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SharedBytes>();
    let b = SharedBytes::from_slice(b"xyz").unwrap();
    let t = std::thread::spawn(move || b.iter().map(|&x| x as u32).sum::<u32>());
    assert_eq!(t.join().unwrap(), b'x' as u32 + b'y' as u32 + b'z' as u32);
}

/// The hang guard of the waits below: far beyond what they need.
const GUARD: std::time::Duration = std::time::Duration::from_secs(60);

/// Returns once the file `gate` exists (the test creates it).
fn wait_for_gate(gate: String) -> u8 {
    while !std::path::Path::new(&gate).exists() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    0
}

/// The pool's dispatcher thread (named `process-pool`; the tests of this
/// file run one at a time, so there is one).
fn dispatcher_tid() -> String {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|t| t.ok())
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .find(|tid| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                .is_ok_and(|c| c.trim_end() == "process-pool")
        })
        .expect("the pool's dispatcher thread")
}

/// Waits until the dispatcher thread sleeps in `poll` (the system call it
/// is blocked in, from `/proc`; "running" while it is not blocked).
fn wait_for_dispatcher_in_poll(tid: &str) {
    let deadline = std::time::Instant::now() + GUARD;
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
            .expect("/proc/self/task/<tid>/syscall");
        let nr = syscall
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok());
        if nr == Some(libc::SYS_poll) || nr == Some(libc::SYS_ppoll) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dispatcher never went back to sleep in poll: {syscall}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Opens the gate when dropped, so that a failing test does not leave
/// the pool's drop waiting for a task that waits for the gate.
struct OpenOnDrop(std::path::PathBuf);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, b"");
    }
}

#[test]
fn a_task_with_descriptors_waiting_for_an_idle_worker_stays_queued_and_cancellable() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let gate = std::env::temp_dir().join(format!("pp-fds-gate-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    let opener = OpenOnDrop(gate.clone());
    let busy = pool
        .submit(wait_for_gate, gate.to_string_lossy().into_owned())
        .unwrap();
    let deadline = std::time::Instant::now() + GUARD;
    while pool.stats().tasks_running != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first task never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let tid = dispatcher_tid();
    wait_for_dispatcher_in_poll(&tid);
    // The only worker is busy: a task that carries descriptors waits for an
    // idle worker. Once the dispatcher, woken by this submit, sleeps again,
    // it has looked at the task and left it in the queue.
    let waiting = pool
        .submit(first_byte, SharedBytes::from_slice(&[7]).unwrap())
        .unwrap();
    wait_for_dispatcher_in_poll(&tid);
    assert_eq!(
        pool.stats().tasks_running,
        1,
        "the task that waits in the queue is not running"
    );
    assert!(
        waiting.cancel(),
        "a task still in the queue can be cancelled"
    );
    drop(opener);
    assert_eq!(busy.result_timeout(GUARD).unwrap(), 0);
    drop(pool);
    let _ = std::fs::remove_file(&gate);
    c.check();
}
