//! The cause and cost of every task (`Future::report`), its sums in
//! `stats()`, and `max_memory_per_child`, which retires a worker whose peak
//! RSS passed the limit after a task.
//!
//! No wall-clock upper bounds: every time here is a lower bound the test
//! itself made true (CPU burnt until the task's own `getrusage` says so, a
//! gate the test held), and every wait has a generous hang guard.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::clean;
use future::WorkerEnd;
use process_pool::ProcessPoolExecutor;

/// A hang guard: a bug fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(120);

const MIB: u64 = 1 << 20;

fn pid(_: ()) -> u32 {
    std::process::id()
}

/// This process's user CPU time so far.
fn user_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    Duration::from_secs(usage.ru_utime.tv_sec as u64)
        + Duration::from_micros(usage.ru_utime.tv_usec as u64)
}

/// Touches `mib` MiB, then burns user CPU until its own `getrusage` says it
/// spent 50 ms more; returns its pid.
fn allocate_and_burn(mib: u64) -> u32 {
    let mut block = vec![0u8; (mib * MIB) as usize];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&block);
    let start = user_cpu();
    let mut x = 0u64;
    while user_cpu() < start + Duration::from_millis(50) {
        for i in 0..100_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
    std::hint::black_box(x);
    std::process::id()
}

/// Touches `mib` MiB and returns its pid.
fn allocate(mib: u64) -> u32 {
    let mut block = vec![0u8; (mib * MIB) as usize];
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&block);
    std::process::id()
}

/// Creates `<gate>.started`, then waits until the file `gate` exists.
fn hold_until(gate: String) -> u32 {
    std::fs::write(format!("{gate}.started"), b"").expect("writing the started marker");
    while !Path::new(&gate).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::process::id()
}

/// Touches `mib` MiB, then SIGKILLs its own worker: it never reports.
fn allocate_and_die(mib: u64) -> u32 {
    allocate(mib);
    kill_myself(())
}

fn kill_myself(_: ()) -> u32 {
    // SAFETY: raising a signal on our own (worker) process.
    unsafe { libc::raise(libc::SIGKILL) };
    unreachable!("SIGKILL ends the worker")
}

fn hang(_: ()) -> u32 {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// A fresh path for a gate file.
fn gate_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("task-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the gate directory");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("started"));
    path
}

#[test]
fn a_finished_task_reports_its_worker_and_its_costs() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .report_usage(true)
        .build()
        .unwrap();
    let f = pool.submit(allocate_and_burn, 48).unwrap();
    let worker = f.result_timeout(GUARD).unwrap();
    let r = f
        .report()
        .expect("a finished process-pool task has a report");
    assert_eq!(r.worker_pid, Some(worker));
    assert_eq!(r.position, Some(1), "the worker's first task");
    let user = r.user_cpu.expect("user CPU time");
    assert!(user >= Duration::from_millis(50), "user CPU {user:?}");
    assert!(r.system_cpu.is_some());
    // Not compared with the CPU time: the kernel scales CPU times from
    // ticks, and a delta of two readings may exceed the wall time a little.
    let run = r.run_time.expect("run time");
    assert!(run > Duration::ZERO);
    assert!(r.queued.is_some());
    let peak = r.peak_rss_bytes.expect("peak RSS");
    assert!(peak >= 48 * MIB, "peak RSS {peak} after touching 48 MiB");
    assert_eq!((r.worker_end, r.deadline), (None, None));

    let second = pool.submit(pid, ()).unwrap();
    assert_eq!(second.result_timeout(GUARD).unwrap(), worker);
    assert_eq!(second.report().unwrap().position, Some(2));

    let s = pool.stats();
    assert!(s.task_user_cpu >= user, "stats sum {:?}", s.task_user_cpu);
    assert!(s.task_run_time >= run);
    assert!(s.peak_rss_bytes >= peak);
    drop(pool);
    c.check();
}

#[test]
fn cpu_times_and_peak_rss_are_measured_only_when_asked() {
    let c = clean();
    // Two getrusage calls per task cost about 4 µs on the test machine,
    // as much as a tiny task's whole trip: a pool measures them only when
    // asked (or when max_memory_per_child needs the peak).
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let f = pool.submit(pid, ()).unwrap();
    let worker = f.result_timeout(GUARD).unwrap();
    let r = f.report().expect("every finished task has a report");
    assert_eq!(r.worker_pid, Some(worker));
    assert!(r.run_time.is_some() && r.queued.is_some(), "{r:?}");
    assert_eq!(
        (r.user_cpu, r.system_cpu, r.peak_rss_bytes),
        (None, None, None),
        "not asked for: {r:?}"
    );
    drop(pool);
    for builder in [
        ProcessPoolExecutor::builder().report_usage(true),
        ProcessPoolExecutor::builder().max_memory_per_child(1 << 40),
    ] {
        let pool = builder.max_workers(1).build().unwrap();
        let f = pool.submit(pid, ()).unwrap();
        f.result_timeout(GUARD).unwrap();
        let r = f.report().unwrap();
        assert!(r.user_cpu.is_some() && r.peak_rss_bytes.is_some(), "{r:?}");
    }
    c.check();
}

#[test]
fn the_queue_wait_counts_from_submit_to_the_start() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let gate = gate_path("queue");
    let first = pool
        .submit(hold_until, gate.to_string_lossy().into_owned())
        .unwrap();
    let started = gate.with_extension("started");
    wait_until_long("the first task to start", || started.exists());
    let second = pool.submit(pid, ()).unwrap();
    let submitted = Instant::now();
    // The second task cannot start before the gate opens: hold it shut for
    // a while, which is a lower bound of its queue wait.
    std::thread::sleep(Duration::from_millis(100));
    let held = submitted.elapsed();
    std::fs::write(&gate, b"").unwrap();
    first.result_timeout(GUARD).unwrap();
    second.result_timeout(GUARD).unwrap();
    let queued = second.report().unwrap().queued.unwrap();
    assert!(queued >= held, "queued {queued:?}, held {held:?}");
    let run = first.report().unwrap().run_time.unwrap();
    assert!(run >= held, "the held task ran {run:?}, held {held:?}");
    drop(pool);
    c.check();
}

#[test]
fn a_task_whose_worker_died_reports_the_signal_and_its_position() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let worker = pool.submit(pid, ()).unwrap().result_timeout(GUARD).unwrap();
    let f = pool.submit(kill_myself, ()).unwrap();
    assert!(f.result_timeout(GUARD).is_err());
    let r = f.report().expect("a task whose worker died has a report");
    assert_eq!(r.worker_end, Some(WorkerEnd::Signaled(libc::SIGKILL)));
    assert_eq!(r.worker_pid, Some(worker));
    assert_eq!(r.position, Some(2));
    assert_eq!(r.user_cpu, None, "a dead worker measured nothing");
    drop(pool);
    c.check();
}

/// Forks a process that touches `mib` MiB and exits, waits for it, then
/// SIGKILLs its own worker.
fn child_allocates_then_die(mib: u64) -> u32 {
    // SAFETY: the worker is single-threaded, so the child may run any code;
    // it only allocates and `_exit`s, and the worker reaps it.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            allocate(mib);
            libc::_exit(0);
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    kill_myself(())
}

/// What the dead worker's peak RSS is: `wait4` reports the higher of the
/// worker's own peak and that of the children it waited for (the kernel's
/// `RUSAGE_BOTH`), and nothing can read the worker's own alone once it is
/// dead. So a task that ran a big child process shows the child's peak:
/// docs/process-pool.md says so, and this keeps that row true.
#[test]
fn a_dead_workers_peak_rss_includes_the_children_it_waited_for() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let f = pool.submit(child_allocates_then_die, 64).unwrap();
    assert!(f.result_timeout(GUARD).is_err());
    let r = f.report().expect("a task whose worker died has a report");
    let peak = r.peak_rss_bytes.expect("the dead worker's peak RSS");
    assert!(
        peak >= 64 * MIB,
        "peak RSS {peak} bytes: the worker's child touched 64 MiB"
    );
    drop(pool);
    c.check();
}

#[test]
fn a_task_whose_worker_died_reports_the_workers_peak_rss() {
    // The worker sent nothing about this task; the fork server reaps it
    // with `wait4`, whose rusage has the dead worker's peak RSS.
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .build()
        .unwrap();
    let f = pool.submit(allocate_and_die, 64).unwrap();
    assert!(f.result_timeout(GUARD).is_err());
    let r = f.report().expect("a task whose worker died has a report");
    assert_eq!(r.worker_end, Some(WorkerEnd::Signaled(libc::SIGKILL)));
    let peak = r
        .peak_rss_bytes
        .expect("the dead worker's peak RSS, from the fork server's wait4");
    assert!(
        peak >= 64 * MIB,
        "peak RSS {peak} bytes, the task touched 64 MiB"
    );
    drop(pool);
    c.check();
}

#[test]
fn a_timed_out_task_reports_its_deadline() {
    let c = clean();
    let timeout = Duration::from_secs(1);
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .task_timeout(timeout)
        .build()
        .unwrap();
    let f = pool.submit(hang, ()).unwrap();
    assert!(f.result_timeout(GUARD).is_err());
    let r = f.report().expect("a timed-out task has a report");
    assert_eq!(r.deadline, Some(timeout));
    assert!(r.worker_pid.is_some());
    drop(pool);
    c.check();
}

#[test]
fn max_memory_per_child_retires_a_worker_past_the_limit_and_keeps_its_result() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_memory_per_child(64 * MIB)
        .build()
        .unwrap();
    // Below the limit: the worker stays.
    let small = pool
        .submit(allocate, 1)
        .unwrap()
        .result_timeout(GUARD)
        .unwrap();
    let again = pool.submit(pid, ()).unwrap().result_timeout(GUARD).unwrap();
    assert_eq!(small, again, "a worker under the limit is kept");
    // Past it: the task's result is kept, the worker retires.
    let big = pool.submit(allocate, 128).unwrap();
    let fat = big
        .result_timeout(GUARD)
        .expect("the task that passed the limit succeeds");
    assert_eq!(fat, small);
    let fresh = pool.submit(pid, ()).unwrap().result_timeout(GUARD).unwrap();
    assert_ne!(fresh, fat, "the next task runs on a fresh worker");
    wait_until_long("the retired worker to be counted", || {
        pool.stats().worker_exits.max_memory_per_child == 1
    });
    let s = pool.stats();
    assert_eq!(s.tasks_failed, 0, "nothing failed: {s:?}");
    assert_eq!(s.worker_exits.signal + s.worker_exits.exit_code, 0);
    drop(pool);
    c.check();
}

#[test]
fn a_zero_memory_limit_is_refused_with_a_message() {
    let Err(err) = ProcessPoolExecutor::builder()
        .max_memory_per_child(0)
        .build()
    else {
        panic!("a zero limit is refused");
    };
    assert!(err.to_string().contains("max_memory_per_child"), "{err}");
}

/// `wait_until` with this file's longer guard.
fn wait_until_long(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn max_memory_per_child_with_tasks_already_in_the_workers_pipe_fails_none() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(4)
        .max_memory_per_child(64 * MIB)
        .build()
        .unwrap();
    // The big task and the ones behind it may all be in one worker's pipe
    // when it passes the limit: they run there, then it retires.
    let big = pool.submit(allocate, 128).unwrap();
    let behind: Vec<_> = (0..3).map(|_| pool.submit(pid, ()).unwrap()).collect();
    let fat = big.result_timeout(GUARD).unwrap();
    for f in &behind {
        f.result_timeout(GUARD)
            .expect("a task behind the big one succeeds");
    }
    let later = pool.submit(pid, ()).unwrap().result_timeout(GUARD).unwrap();
    assert_ne!(
        later, fat,
        "a task submitted after the retirement runs on a fresh worker"
    );
    wait_until_long("the retired worker to be counted", || {
        pool.stats().worker_exits.max_memory_per_child >= 1
    });
    assert_eq!(pool.stats().tasks_failed, 0);
    drop(pool);
    c.check();
}

#[test]
fn a_cancelled_task_has_no_report() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(1)
        .build()
        .unwrap();
    let gate = gate_path("cancel");
    let first = pool
        .submit(hold_until, gate.to_string_lossy().into_owned())
        .unwrap();
    wait_until_long("the first task to start", || {
        gate.with_extension("started").exists()
    });
    let queued = pool.submit(pid, ()).unwrap();
    assert!(queued.cancel(), "a queued task can be cancelled");
    std::fs::write(&gate, b"").unwrap();
    first.result_timeout(GUARD).unwrap();
    assert_eq!(queued.report(), None, "it never ran");
    assert!(first.report().is_some());
    drop(pool);
    c.check();
}
