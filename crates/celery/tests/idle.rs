//! An idle worker sleeps: each of its threads waits in a blocking call
//! until a real event (a message, a signal, the worker's stop, its next
//! restore round) instead of waking on a timer to look at a flag. Checked
//! with the kernel's count of each thread's wake-ups (`/proc`), with the
//! idle fetch's own waits on the server (`BLMOVE`, a second each: Redis's
//! timeout, as kombu's) as the only clock.

mod common;

use common::*;

/// The restore thread runs a round at start, then sleeps until the next
/// one (`restore_interval`, 100 s by default) or the worker's stop.
#[test]
fn an_idle_workers_restore_thread_sleeps_until_its_next_round() {
    let redis = RedisServer::start();
    // The only in-process worker of this test binary: its thread names are
    // its own.
    let _worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let pid = std::process::id();
    let mut tid = None;
    wait_until(LONG, "the restore thread", || {
        tid = thread_named(pid, "celery-restore");
        tid.is_some()
    });
    let tid = tid.unwrap();
    // Between rounds: asleep, not in a round's Redis I/O.
    let asleep = [
        libc::SYS_futex,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
    ];
    wait_until(LONG, "the restore thread to end its first round", || {
        current_syscall(tid).is_some_and(|n| asleep.contains(&n))
    });
    let mut c = redis.connect();
    assert_asleep_across_three_fetch_waits(&mut c, pid, tid, "the restore thread");
}

/// The thread of the worker binary that turns SIGINT and SIGTERM into a
/// warm or cold shutdown sleeps until a signal comes.
#[test]
fn an_idle_worker_binarys_signal_thread_sleeps_until_a_signal() {
    let redis = RedisServer::start();
    let mut worker = Spawned::start(&redis.url(0), || {}, &["-c", "1"]);
    let pid = worker.pid() as u32;
    let mut tid = None;
    wait_until(LONG, "the signal thread", || {
        tid = thread_named(pid, "celery-signals");
        tid.is_some()
    });
    let tid = tid.unwrap();
    wait_until(LONG, "the signal thread asleep", || {
        thread_state(pid, tid) == 'S'
    });
    let mut c = redis.connect();
    assert_asleep_across_three_fetch_waits(&mut c, pid, tid, "the signal thread");
    // It still hears the first Ctrl-C: a warm shutdown, exit 0.
    worker.signal_group(libc::SIGINT);
    assert_eq!(worker.wait_exit(), Some(0), "{}", worker.stderr());
}
