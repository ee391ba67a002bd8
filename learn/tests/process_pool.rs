//! The process-pool rung, steps s08-s09: workers forked straight from this
//! (multi-threaded) test process, as those steps do.

mod common;

use std::collections::HashSet;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::within_60s;
use learn::s08_process_pool_fork_pipes as s08;
use learn::s09_process_pool_poll_loop as s09;

/// True once `pid` names no process at all: not running, not a zombie
/// (a zombie still accepts `kill(pid, 0)`).
pub fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only asks whether `pid` exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn square(x: u64) -> u64 {
    x * x
}

fn my_pid(_: u64) -> u64 {
    u64::from(std::process::id()) // getpid(): async-signal-safe
}

#[test]
fn s08_a_worker_answers_and_is_reaped_when_dropped() {
    let worker = s08::Worker::spawn(square).expect("fork");
    let pid = worker.pid;
    assert_eq!(worker.call(12).ok(), Some(144));
    within_60s("drop: close the task pipe, then waitpid", move || drop(worker));
    assert!(gone(pid), "worker {pid} is still there (a zombie?)");
}

#[test]
fn s08_a_dead_worker_is_an_error_naming_it_not_a_hang() {
    let worker = s08::Worker::spawn(square).expect("fork");
    let pid = worker.pid;
    // SAFETY: SIGKILL to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let answer =
        within_60s("a call to a dead worker", move || worker.call(2).map_err(|e| e.to_string()));
    assert_eq!(answer, Err(format!("worker {pid} died")));
    assert!(gone(pid));
}

#[test]
fn s08_children_forked_by_several_threads_at_once_all_exit() {
    // Each child closes every descriptor but its two. Without that, a child
    // forked by one thread keeps a copy of another thread's task pipe, so
    // that pipe's worker never reads end-of-file and its drop waits forever.
    let forked = Arc::new(Mutex::new(Vec::new()));
    let spawners: Vec<_> = (0..4)
        .map(|_| {
            let forked = forked.clone();
            thread::spawn(move || {
                (0..25u64).all(|x| {
                    let Ok(worker) = s08::Worker::spawn(square) else { return false };
                    let pid = worker.pid;
                    forked.lock().map(|mut pids| pids.push(pid)).ok();
                    let answer = worker.call(x).ok();
                    drop(worker);
                    answer == Some(x * x) && gone(pid)
                })
            })
        })
        .collect();
    let (done, outcome) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(spawners.into_iter().all(|s| s.join().unwrap_or(false)));
    });
    match outcome.recv_timeout(Duration::from_secs(60)) {
        Ok(all) => assert!(all, "a worker answered wrongly or was not reaped"),
        Err(_) => {
            // Kill the stuck workers, or they would hold each other's pipes
            // (and this test's output) open forever.
            for &pid in forked.lock().iter().flat_map(|pids| pids.iter()) {
                // SAFETY: SIGKILL to a child this test forked.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            panic!("hang guard: 100 workers forked from 4 threads did not all exit in 60 s");
        }
    }
}

#[test]
fn s09_results_come_back_in_input_order() {
    let pool = s09::Pool::new(3, square).expect("fork");
    let items: Vec<u64> = (0..300).collect();
    let squares = within_60s("map over 3 workers", move || pool.map(&items).ok());
    assert_eq!(squares, Some((0..300).map(square).collect()));
}

#[test]
fn s09_one_poll_loop_keeps_every_worker_busy_and_reaps_them_all() {
    let pool = s09::Pool::new(3, my_pid).expect("fork");
    let pids: Vec<i32> = pool.workers.iter().map(|w| w.pid).collect();
    // The loop hands the first three items to three different workers.
    let ran_in = pool.map(&[0, 0, 0]).expect("map");
    let distinct: HashSet<u64> = ran_in.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{ran_in:?}");
    assert!(!distinct.contains(&u64::from(std::process::id())), "ran in the parent");
    within_60s("drop every worker", move || drop(pool));
    assert!(pids.iter().all(|&pid| gone(pid)), "a worker of {pids:?} was not reaped");
}

#[test]
fn s09_a_dead_worker_fails_the_map_instead_of_hanging_it() {
    let pool = s09::Pool::new(2, square).expect("fork");
    let victim = pool.workers[1].pid;
    // SAFETY: SIGKILL to our own child.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
    let outcome = within_60s("map with a dead worker", move || {
        pool.map(&[1, 2, 3, 4]).map_err(|e| e.to_string())
    });
    assert_eq!(outcome, Err(format!("worker {victim} died")));
}
