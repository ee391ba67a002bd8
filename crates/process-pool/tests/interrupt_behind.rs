//! `interrupt(&future)` on a task whose worker already holds the next task
//! in its pipe: the pool re-queues that next task ("it never started"), so
//! the interrupted worker must never run it too. A task that catches
//! SIGTERM to clean up, and then returns, leaves its worker alive for the
//! grace period, reading its pipe.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use common::{clean, wait_until, T};
use future::Interrupt;
use process_pool::ProcessPoolExecutor;

static TERM_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn note_sigterm(_: libc::c_int) {
    TERM_SEEN.store(true, SeqCst);
}

/// Catches SIGTERM (a task that cleans up, then returns), creates `marker`
/// once the handler is in place, and returns 1 once SIGTERM came.
fn returns_on_sigterm(marker: String) -> u64 {
    // SAFETY: installs an async-signal-safe handler (it only stores to an
    // atomic); this runs in a single-threaded pool worker.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            note_sigterm as *const () as libc::sighandler_t,
        )
    };
    std::fs::write(&marker, b"handler installed").unwrap();
    // A hang guard, not a timing: SIGTERM comes within moments.
    for _ in 0..600 {
        if TERM_SEEN.load(SeqCst) {
            return 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    0
}

/// Appends one line (this process's pid) to `log`: how many times it ran.
fn logs_its_run(log: String) -> u32 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    writeln!(f, "{}", std::process::id()).unwrap();
    std::process::id()
}

fn temp(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "process-pool-interrupt-behind-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn the_task_behind_an_interrupted_one_runs_once() {
    let clean = clean();
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .tasks_per_worker(2)
        // Long enough that the worker outlives its task: no SIGKILL comes
        // before the worker could read the next task from its pipe.
        .interrupt_grace(Duration::from_secs(600))
        .build()
        .unwrap();
    let marker = temp("marker");
    let log = temp("log");
    let head = pool
        .submit(returns_on_sigterm, marker.display().to_string())
        .unwrap();
    let behind = pool
        .submit(logs_its_run, log.display().to_string())
        .unwrap();
    wait_until("the head task to install its handler", || marker.exists());
    // Both are in the worker: the head runs, the other waits in its pipe.
    wait_until("the second task to be handed to the worker", || {
        behind.running()
    });
    assert_eq!(pool.interrupt(&head), Interrupt::Requested);
    let ran_in = behind.result_timeout(T).expect("the task behind runs");
    // Its result is in; let the pool settle (the interrupted worker ends).
    pool.shutdown(true, false);
    let runs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(&log);
    assert_eq!(
        runs.lines().count(),
        1,
        "the task behind the interrupted one ran more than once (pids {:?}; its \
         result came from {ran_in}; the head ended with {:?})",
        runs.lines().collect::<Vec<_>>(),
        head.result_timeout(T)
    );
    drop(pool);
    clean.check();
}
