//! The process-pool rung, steps s10-s11: workers forked by a fork server
//! that this test binary starts before `main`, while it has one thread.

mod common;

use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::thread;

use common::within_60s;
use learn::s08_process_pool_fork_pipes::{recv, send};
use learn::s10_process_pool_fork_server::ForkServer;
use learn::s11_process_pool_replace_dead::{Pool, WorkerDied};

static SERVER: OnceLock<Option<ForkServer>> = OnceLock::new();

// SAFETY (ctor's contract): runs before main, with a single thread, and
// only forks the fork server (which step s10 requires of its caller).
#[ctor::ctor]
unsafe fn start_the_fork_server_first() {
    SERVER.get_or_init(|| ForkServer::start().ok());
}

fn server() -> &'static ForkServer {
    SERVER.get().and_then(Option::as_ref).expect("the fork server did not start before main")
}

/// True once `pid` names no process at all (not even a zombie).
fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only asks whether `pid` exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Allocates, formats and returns its parent's pid: fine only because the
/// fork server, not this threaded process, forked the worker.
fn parent_of_worker(x: u64) -> u64 {
    let text = format!("{x}:{}", std::os::unix::process::parent_id());
    text.split(':').nth(1).and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// 0: the worker's pid; 3: the worker dies (SIGKILL); else: the square.
fn pid_square_or_die(x: u64) -> u64 {
    match x {
        0 => u64::from(std::process::id()),
        3 => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            unreachable!("SIGKILL cannot be caught")
        }
        x => x * x,
    }
}

#[test]
fn s10_workers_are_children_of_the_server_and_may_allocate() {
    let (pid, task, result) = server().spawn(parent_of_worker).expect("spawn");
    let parent = within_60s("one task", move || {
        send(task.as_raw_fd(), 5).then(|| recv(result.as_raw_fd())).flatten()
    });
    let parent = parent.expect("an answer");
    assert_ne!(parent, u64::from(std::process::id()), "forked by the pool's process");
    assert_ne!(parent, 0);
    // The task pipe closed with the closure above: the worker exits.
    let status = within_60s("WAIT", move || server().wait(pid).ok());
    assert_eq!(status, Some(0));
    assert!(gone(pid), "worker {pid} was not reaped");
}

#[test]
fn s10_several_threads_spawn_at_once() {
    let spawners: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                (0..10u64).all(|x| {
                    let Ok((pid, task, result)) = server().spawn(|x| x + 1) else { return false };
                    let answer =
                        send(task.as_raw_fd(), 100 * t + x).then(|| recv(result.as_raw_fd()));
                    drop((task, result));
                    answer == Some(Some(100 * t + x + 1))
                        && server().wait(pid).ok() == Some(0)
                        && gone(pid)
                })
            })
        })
        .collect();
    let all = within_60s("40 spawns from 4 threads", move || {
        spawners.into_iter().all(|s| s.join().unwrap_or(false))
    });
    assert!(all);
}

#[test]
fn s11_a_worker_killed_mid_map_fails_only_its_item_and_is_replaced() {
    let mut pool = Pool::new(server(), 2, pid_square_or_die).expect("pool");
    let results = within_60s("map with a crash", move || {
        let results = pool.map(&[1, 2, 3, 4, 5]).ok();
        (results, pool)
    });
    let (results, mut pool) = results;
    let results = results.expect("map");
    assert_eq!(results[..2], [Ok(1), Ok(4)]);
    assert_eq!(results[3..], [Ok(16), Ok(25)]);
    let died: &WorkerDied = results[2].as_ref().expect_err("item 2 ran in a dying worker");
    assert_eq!(
        (died.item, libc::WIFSIGNALED(died.status), libc::WTERMSIG(died.status)),
        (2, true, 9)
    );
    assert_eq!(
        died.to_string(),
        "the worker running item 2 was killed by signal 9; the pool replaced it"
    );
    assert_eq!(pool.replaced, 1);
    assert_eq!(pool.map(&[6, 7]).ok(), Some(vec![Ok(36), Ok(49)]), "the pool works on");
}

#[test]
fn s11_every_worker_dying_still_ends_the_map_and_leaves_no_process() {
    let mut pool = Pool::new(server(), 2, pid_square_or_die).expect("pool");
    let (results, pool) = within_60s("map where every item crashes", move || {
        let results = pool.map(&[3; 6]).ok();
        (results, pool)
    });
    let results = results.expect("map");
    assert!(
        results.iter().enumerate().all(|(i, r)| matches!(r, Err(e) if e.item == i)),
        "{results:?}"
    );
    assert_eq!(pool.replaced, 6);
    let mut pool = pool;
    let pids: Vec<i32> =
        pool.map(&[0, 0]).expect("map").into_iter().flatten().map(|p| p as i32).collect();
    assert_eq!(pids.len(), 2);
    within_60s("drop the pool: close and reap every worker", move || drop(pool));
    assert!(pids.iter().all(|&pid| gone(pid)), "a worker of {pids:?} was not reaped");
}
