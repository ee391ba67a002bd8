//! Fault injection: workers that die every way a process can, and CPython's
//! test_deadlock crash matrix (a failure or crash while encoding or decoding
//! the argument or the result, or while running, in the worker or the
//! parent). After each: the right error on the right future, the other
//! futures fine, no zombie, no leaked descriptor.

mod common;

use std::time::Duration;

use common::{clean, in_worker, segfault, T};
use future::{FutureError, TaskError};
use process_pool::{
    CodecError, CodecStage, ExitCause, ProcessPoolExecutor, ProtocolError, SubmitError,
    TaskTimedOut, WorkerDeath, WorkerDied,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn square(x: u64) -> u64 {
    x * x
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Never returns: only a kill ends it.
fn hang(_: ()) -> u64 {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn do_abort(_: ()) -> u64 {
    std::process::abort()
}

fn do_segfault(_: ()) -> u64 {
    segfault()
}

fn do_exit(code: i32) -> u64 {
    std::process::exit(code)
}

/// The executor error inside a failed future, downcast to `E`.
fn executor_error<E: std::error::Error + Clone + 'static>(r: Result<u64, FutureError>) -> E {
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => e
            .downcast_ref::<E>()
            .unwrap_or_else(|| panic!("expected {}, got {e:?}", std::any::type_name::<E>()))
            .clone(),
        other => panic!("expected an executor error, got {other:?}"),
    }
}

/// Submits `bad` between good tasks on a 2-worker pool; returns the bad
/// future's outcome after checking the good ones and the pool's health.
fn run_between_good_tasks(
    bad: impl FnOnce(&ProcessPoolExecutor) -> Result<u64, FutureError>,
) -> Result<u64, FutureError> {
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let before: Vec<_> = (0..4u64).map(|i| pool.submit(square, i).unwrap()).collect();
    let outcome = bad(&pool);
    let after: Vec<_> = (4..8u64).map(|i| pool.submit(square, i).unwrap()).collect();
    for (i, f) in before.iter().chain(&after).enumerate() {
        assert_eq!(
            f.result_timeout(T).unwrap(),
            (i * i) as u64,
            "good task {i}"
        );
    }
    drop(pool);
    c.check();
    outcome
}

#[test]
fn abort_in_a_task_fails_only_that_task() {
    let e: WorkerDied = executor_error(run_between_good_tasks(|p| {
        p.submit(do_abort, ()).unwrap().result_timeout(T)
    }));
    assert_eq!(e.cause, ExitCause::Signaled(libc::SIGABRT));
    assert!(e.to_string().contains("SIGABRT"), "{e}");
}

#[test]
fn segfault_in_a_task_fails_only_that_task() {
    let e: WorkerDied = executor_error(run_between_good_tasks(|p| {
        p.submit(do_segfault, ()).unwrap().result_timeout(T)
    }));
    assert_eq!(e.cause, ExitCause::Signaled(libc::SIGSEGV));
    assert!(e.to_string().contains("SIGSEGV"), "{e}");
}

#[test]
fn exit_in_a_task_names_the_exit_code() {
    let e: WorkerDied = executor_error(run_between_good_tasks(|p| {
        p.submit(do_exit, 99).unwrap().result_timeout(T)
    }));
    assert_eq!(e.cause, ExitCause::Exited(99));
    assert!(e.to_string().contains("exited with code 99"), "{e}");
}

#[test]
fn kill_9_from_outside_mid_task() {
    let c = clean();
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let victim = pool.submit(sleep_ms, 20_000).unwrap();
    common::wait_until("the task to run", || {
        victim.running() && common::workers().len() == 1
    });
    let worker = common::workers()[0];
    let queued: Vec<_> = (0..3u64).map(|i| pool.submit(square, i).unwrap()).collect();
    // SAFETY: kill(2) on our own grandchild's pid.
    assert_eq!(unsafe { libc::kill(worker, libc::SIGKILL) }, 0);
    let e: WorkerDied = executor_error(victim.result_timeout(T));
    assert_eq!(
        e,
        WorkerDied {
            pid: worker,
            cause: ExitCause::Signaled(libc::SIGKILL)
        }
    );
    for (i, f) in queued.iter().enumerate() {
        assert_eq!(f.result_timeout(T).unwrap(), (i * i) as u64);
    }
    assert_ne!(
        pool.submit(pid, ()).unwrap().result_timeout(T).unwrap() as i32,
        worker
    );
    let s = pool.stats();
    assert_eq!(s.worker_exits.signal, 1);
    assert_eq!(s.workers_started, 2);
    drop(pool);
    c.check();
}

#[test]
fn killed_child_breaks_the_pool_with_the_break_policy() {
    // CPython's test_killed_child.
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .on_worker_death(WorkerDeath::BreakPool)
        .build()
        .unwrap();
    let victim = pool.submit(sleep_ms, 20_000).unwrap();
    let other = pool.submit(sleep_ms, 20_000).unwrap();
    let queued = pool.submit(square, 3).unwrap();
    common::wait_until("both tasks to run", || {
        common::workers().len() == 2 && victim.running()
    });
    let worker = common::workers()[0];
    // SAFETY: kill(2) on our own grandchild's pid.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    for f in [&victim, &other, &queued] {
        match f.result_timeout(T) {
            Err(FutureError::Task(TaskError::BrokenExecutor(msg))) => {
                assert!(msg.contains("terminated abruptly"), "{msg}")
            }
            r => panic!("expected BrokenExecutor, got {r:?}"),
        }
    }
    assert!(matches!(
        pool.submit(square, 2),
        Err(SubmitError::Broken(_))
    ));
    drop(pool);
    c.check();
}

#[test]
fn task_past_its_timeout_is_killed_and_replaced() {
    let c = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let hung = pool.submit(hang, ()).unwrap();
    let fine: Vec<_> = (0..6u64).map(|i| pool.submit(square, i).unwrap()).collect();
    let e: TaskTimedOut = executor_error(hung.result_timeout(T));
    assert_eq!(e.timeout, Duration::from_millis(300));
    for (i, f) in fine.iter().enumerate() {
        assert_eq!(f.result_timeout(T).unwrap(), (i * i) as u64);
    }
    assert_eq!(
        pool.submit(sleep_ms, 10)
            .unwrap()
            .result_timeout(T)
            .unwrap(),
        10
    );
    common::wait_until("the killed worker to be reaped", || {
        pool.stats().worker_exits.timeout == 1
    });
    drop(pool);
    c.check();
}

/// Writes `bytes` to every descriptor open for writing other than 0-2: in a
/// worker that is exactly its result pipe.
fn write_to_result_pipe(bytes: &[u8]) {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fd < 3 {
            continue;
        }
        // SAFETY: fcntl/write on descriptors of this process.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 && flags & libc::O_ACCMODE == libc::O_WRONLY {
                libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            }
        }
    }
}

fn garbage(_: ()) -> u64 {
    write_to_result_pipe(b"\xff\xff\xff\xffgarbage!");
    std::thread::sleep(Duration::from_secs(20));
    0
}

fn truncated(_: ()) -> u64 {
    // A RESULT header announcing 100 bytes, then 3 bytes, then exit(0).
    write_to_result_pipe(&[100, 0, 0, 0, 3, 1, 2, 3]);
    std::process::exit(0)
}

#[test]
fn a_worker_writing_garbage_is_named_killed_and_replaced() {
    let e: ProtocolError = executor_error(run_between_good_tasks(|p| {
        p.submit(garbage, ()).unwrap().result_timeout(T)
    }));
    assert!(
        matches!(e.error, process_pool::FrameError::TooLarge { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("worker process {}", e.pid)),
        "{e}"
    );
}

#[test]
fn a_truncated_frame_is_named_with_the_exit_status() {
    let e: ProtocolError = executor_error(run_between_good_tasks(|p| {
        p.submit(truncated, ()).unwrap().result_timeout(T)
    }));
    assert!(
        matches!(e.error, process_pool::FrameError::Truncated { .. }),
        "{e}"
    );
    assert_eq!(e.cause, Some(ExitCause::Exited(0)));
}

// --- CPython's test_deadlock crash matrix ---------------------------------

/// Where a `Bomb` goes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum At {
    Nowhere,
    EncodeArgsError,
    DecodeArgsError,
    DecodeArgsExit,
    DecodeArgsCrash,
    RunError,
    RunExit,
    RunCrash,
    EncodeResultError,
    EncodeResultExit,
    EncodeResultCrash,
    DecodeResultError,
    DecodeResultPanic,
}

/// A value whose (de)serialisation fails, exits or crashes where told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bomb(At);

impl Serialize for Bomb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.0, in_worker()) {
            (At::EncodeArgsError, false) | (At::EncodeResultError, true) => {
                return Err(serde::ser::Error::custom("refusing to encode"))
            }
            (At::EncodeResultExit, true) => std::process::exit(1),
            (At::EncodeResultCrash, true) => segfault(),
            _ => {}
        }
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Bomb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let at = At::deserialize(d)?;
        match (at, in_worker()) {
            (At::DecodeArgsError, true) | (At::DecodeResultError, false) => {
                return Err(serde::de::Error::custom("refusing to decode"))
            }
            (At::DecodeArgsExit, true) => std::process::exit(1),
            (At::DecodeArgsCrash, true) => segfault(),
            (At::DecodeResultPanic, false) => panic!("decoder panicked"),
            _ => {}
        }
        Ok(Bomb(at))
    }
}

fn run_bomb(b: Bomb) -> Bomb {
    match b.0 {
        At::RunError => panic!("error while running"),
        At::RunExit => std::process::exit(1),
        At::RunCrash => segfault(),
        _ => b,
    }
}

/// Runs a bomb between good tasks; returns its outcome.
fn explode(at: At) -> Result<Bomb, FutureError> {
    let mut outcome = None;
    run_between_good_tasks(|pool| {
        let f = pool.submit(run_bomb, Bomb(at)).unwrap();
        outcome = Some(f.result_timeout(T));
        Ok(0)
    })
    .unwrap();
    outcome.unwrap()
}

fn codec_stage(r: Result<Bomb, FutureError>) -> CodecStage {
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            e.downcast_ref::<CodecError>().expect("a CodecError").stage
        }
        other => panic!("expected a codec error, got {other:?}"),
    }
}

fn died(r: Result<Bomb, FutureError>) -> ExitCause {
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            e.downcast_ref::<WorkerDied>().expect("WorkerDied").cause
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
}

#[test]
fn matrix_no_bomb() {
    assert_eq!(explode(At::Nowhere).unwrap(), Bomb(At::Nowhere));
}

#[test]
fn matrix_error_at_task_encode_in_parent() {
    assert_eq!(
        codec_stage(explode(At::EncodeArgsError)),
        CodecStage::EncodeArgs
    );
}

#[test]
fn matrix_error_at_task_decode_in_worker() {
    assert_eq!(
        codec_stage(explode(At::DecodeArgsError)),
        CodecStage::DecodeArgs
    );
}

#[test]
fn matrix_exit_at_task_decode_in_worker() {
    assert_eq!(died(explode(At::DecodeArgsExit)), ExitCause::Exited(1));
}

#[test]
fn matrix_crash_at_task_decode_in_worker() {
    assert_eq!(
        died(explode(At::DecodeArgsCrash)),
        ExitCause::Signaled(libc::SIGSEGV)
    );
}

#[test]
fn matrix_error_during_func_exec_on_worker() {
    match explode(At::RunError) {
        Err(FutureError::Task(TaskError::Panicked(m))) => assert_eq!(m, "error while running"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn matrix_exit_during_func_exec_on_worker() {
    assert_eq!(died(explode(At::RunExit)), ExitCause::Exited(1));
}

#[test]
fn matrix_crash_during_func_exec_on_worker() {
    assert_eq!(
        died(explode(At::RunCrash)),
        ExitCause::Signaled(libc::SIGSEGV)
    );
}

#[test]
fn matrix_error_during_result_encode_on_worker() {
    assert_eq!(
        codec_stage(explode(At::EncodeResultError)),
        CodecStage::EncodeResult
    );
}

#[test]
fn matrix_exit_during_result_encode_on_worker() {
    assert_eq!(died(explode(At::EncodeResultExit)), ExitCause::Exited(1));
}

#[test]
fn matrix_crash_during_result_encode_on_worker() {
    assert_eq!(
        died(explode(At::EncodeResultCrash)),
        ExitCause::Signaled(libc::SIGSEGV)
    );
}

#[test]
fn matrix_error_during_result_decode_in_parent() {
    assert_eq!(
        codec_stage(explode(At::DecodeResultError)),
        CodecStage::DecodeResult
    );
}

#[test]
fn matrix_panic_during_result_decode_in_parent() {
    let r = explode(At::DecodeResultPanic);
    match r {
        Err(FutureError::Task(TaskError::Executor(e))) => {
            let e = e.downcast_ref::<CodecError>().unwrap();
            assert_eq!(e.stage, CodecStage::DecodeResult);
            assert!(e.message.contains("decoder panicked"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shutdown_right_after_a_crashing_submit_returns() {
    // CPython's test_shutdown_deadlock.
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let f = pool.submit(do_abort, ()).unwrap();
    pool.shutdown(true, false);
    let _: WorkerDied = executor_error(f.result_timeout(T));
    drop(pool);
    c.check();
}

fn crash_with_data(data: String) -> u64 {
    if data.len() > 1 {
        std::process::abort();
    }
    0
}

#[test]
fn crash_with_big_data_in_flight_does_not_hang() {
    // CPython's test_crash_big_data (gh-94777): 10 tasks of 4 MiB + 1 each.
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let data = "a".repeat((4 << 20) + 1);
    let results: Vec<_> = pool
        .map(crash_with_data, vec![data; 10], 1)
        .unwrap()
        .collect();
    assert_eq!(results.len(), 10);
    for r in results {
        let _: WorkerDied = executor_error(r);
    }
    drop(pool);
    c.check();
}

fn crash_with_bytes(data: Vec<u8>) -> u64 {
    if data.len() > 1 {
        std::process::abort();
    }
    data.iter().map(|&b| u64::from(b)).sum()
}

#[test]
fn crash_with_big_byte_vectors_in_flight_does_not_hang() {
    // The same with `Vec<u8>`, which the worker reads straight into its
    // vector (`wire/byte_buffer.rs`): tasks behind the crashing one are
    // still in its pipe, part-read or whole; each fails on its own, and a
    // small one after them runs.
    let c = clean();
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let data = vec![b'a'; (4 << 20) + 1];
    let results: Vec<_> = pool
        .map(crash_with_bytes, vec![data; 10], 1)
        .unwrap()
        .collect();
    assert_eq!(results.len(), 10);
    for r in results {
        let _: WorkerDied = executor_error(r);
    }
    let small = pool.submit(crash_with_bytes, vec![7]).unwrap();
    assert_eq!(small.result_timeout(T).unwrap(), 7);
    drop(pool);
    c.check();
}

fn close_result_pipe_and_hang(_: ()) -> u64 {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // SAFETY: closing this (worker) process's own descriptors, on purpose.
        unsafe {
            if fd >= 3 && libc::fcntl(fd, libc::F_GETFL) & libc::O_ACCMODE == libc::O_WRONLY {
                libc::close(fd);
            }
        }
    }
    // Lives on until killed: only the pool's SIGKILL can end this task.
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_worker_that_closes_its_pipe_and_lives_on_is_killed() {
    let e: WorkerDied = executor_error(run_between_good_tasks(|p| {
        p.submit(close_result_pipe_and_hang, ())
            .unwrap()
            .result_timeout(T)
    }));
    assert_eq!(e.cause, ExitCause::Signaled(libc::SIGKILL));
}

// --- A result whose length changes between the size pass and the write ----

/// How many times a `Shifty` was serialised in this process.
static SHIFTY_PASSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A big result whose encoding is a different length on every other pass:
/// `grow` says whether later passes are longer or shorter than the first.
/// (A `Serialize` impl is user code; nothing makes it deterministic.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shifty {
    grow: bool,
}

impl Serialize for Shifty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // SeqCst: a plain counter, no ordering subtleties wanted.
        let pass = SHIFTY_PASSES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let len = match (pass.is_multiple_of(2), self.grow) {
            (true, _) => 400_000,
            (false, true) => 450_000,
            (false, false) => 350_000,
        };
        s.serialize_bytes(&vec![7u8; len])
    }
}

impl<'de> Deserialize<'de> for Shifty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        Ok(Shifty {
            grow: bytes.len() > 400_000,
        })
    }
}

fn shifty(grow: bool) -> Shifty {
    Shifty { grow }
}

/// A result frame whose body is not the length its header announced fails
/// that task with a protocol error naming the worker; the pool goes on.
fn length_mismatch(grow: bool) {
    let e: ProtocolError = executor_error(run_between_good_tasks(|p| {
        p.submit(shifty, grow)
            .unwrap()
            .result_timeout(T)
            .map(|_| 0u64)
    }));
    assert!(
        matches!(e.error, process_pool::FrameError::LengthMismatch { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("worker process {}", e.pid)),
        "{e}"
    );
}

#[test]
fn a_result_that_encodes_shorter_the_second_time_is_a_protocol_error() {
    length_mismatch(false);
}

#[test]
fn a_result_that_encodes_longer_the_second_time_is_a_protocol_error() {
    length_mismatch(true);
}

/// The task timeout of the window test below.
const WINDOW_TIMEOUT: Duration = Duration::from_millis(500);

/// Waits until `path` exists, at most 120 s (a hang guard: the test then
/// fails on what did not happen).
fn wait_for_file(path: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::path::Path::new(path).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A result whose `Deserialize`, which runs on the pool's dispatcher thread
/// when the result comes back, says so (file `decoding`) and then holds the
/// dispatcher until the task two places behind it has started (file
/// `b-started`): the dispatcher is kept between reading a worker's pipe and
/// checking deadlines, as a busy machine may keep it. The padding makes the
/// result bigger than the small results the dispatcher completes only at
/// the end of its turn (`DEFER_MAX` in `dispatcher/results.rs`): this one is
/// decoded as it is read.
#[derive(Clone, Debug, Serialize)]
struct HoldsDispatcher(String, Vec<u8>);

impl<'de> Deserialize<'de> for HoldsDispatcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (dir, padding) = <(String, Vec<u8>)>::deserialize(d)?;
        let _ = std::fs::write(format!("{dir}/decoding"), b"");
        wait_for_file(&format!("{dir}/b-started"));
        Ok(HoldsDispatcher(dir, padding))
    }
}

/// Task P: returns (once the test has all three tasks in the worker's
/// pipe) a result that holds the dispatcher.
fn hold_dispatcher(dir: String) -> HoldsDispatcher {
    wait_for_file(&format!("{dir}/go"));
    HoldsDispatcher(dir, vec![0; 8192])
}

/// Task A: starts running (as the pool sees it) when P's result is read,
/// and runs past the timeout while the dispatcher is held, then returns:
/// its result is in the pipe when the dispatcher checks its deadline.
fn outrun_timeout(dir: String) -> u64 {
    wait_for_file(&format!("{dir}/decoding"));
    std::thread::sleep(WINDOW_TIMEOUT * 2);
    1
}

/// Task B: counts its starts; the first one (on the worker about to be
/// killed) waits to be killed, a second one returns at once.
fn count_starts(dir: String) -> u64 {
    use std::io::Write;
    let starts = format!("{dir}/b-starts");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&starts)
        .unwrap();
    f.write_all(b"x").unwrap();
    drop(f);
    let n = std::fs::metadata(&starts).unwrap().len();
    let _ = std::fs::write(format!("{dir}/b-started"), b"");
    if n < 2 {
        wait_for_file(&format!("{dir}/never"));
    }
    n
}

/// A task that outran its timeout finished just as the pool killed its
/// worker, and the next task in that worker's pipe started: that task must
/// not run again elsewhere (it fails as a task whose worker died, since it
/// may have done some of its work), and the late result is no protocol
/// fault (the worker's exit counts as a timeout).
#[test]
fn a_timeout_as_the_task_finishes_runs_the_next_task_once_and_is_no_protocol_fault() {
    let c = clean();
    let dir = std::env::temp_dir().join(format!("pp-window-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_string_lossy().into_owned();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(3)
        .task_timeout(WINDOW_TIMEOUT)
        .build()
        .unwrap();
    let p = pool.submit(hold_dispatcher, d.clone()).unwrap();
    let a = pool.submit(outrun_timeout, d.clone()).unwrap();
    let b = pool.submit(count_starts, d.clone()).unwrap();
    common::wait_until("the three tasks in the worker's pipe", || {
        pool.stats().tasks_queued == 0
    });
    std::fs::write(dir.join("go"), b"").unwrap();
    assert!(p.result_timeout(T).is_ok());
    let _: TaskTimedOut = executor_error(a.result_timeout(T));
    let b = b.result_timeout(T);
    let starts = std::fs::metadata(dir.join("b-starts")).unwrap().len();
    assert_eq!(
        starts, 1,
        "the task behind the timed-out one started on the killed worker and ran again: {b:?}"
    );
    let died: WorkerDied = executor_error(b);
    assert_eq!(died.cause, ExitCause::Signaled(libc::SIGKILL));
    common::wait_until("the killed worker to be reaped", || {
        let exits = pool.stats().worker_exits;
        exits.timeout + exits.protocol_error >= 1
    });
    let exits = pool.stats().worker_exits;
    assert_eq!(
        (exits.timeout, exits.protocol_error),
        (1, 0),
        "the timed-out worker's late result was counted as a protocol fault"
    );
    drop(pool);
    let _ = std::fs::remove_dir_all(&dir);
    c.check();
}
