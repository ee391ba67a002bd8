//! Ctrl-C and the process environment, for the `celery-worker` binary.
//!
//! Ctrl-C in a terminal sends SIGINT to the whole process group: the
//! worker, its fork server and its pool processes. The first Ctrl-C is a
//! warm shutdown (the running tasks finish and their results are stored),
//! the second a cold one (the running tasks are not acked: they go back to
//! their queue for another worker).
//!
//! [`ENVIRONMENTS`] is the environment matrix: the worker's key cases (a
//! task runs and its result is stored; Ctrl-C to the process group is a
//! warm shutdown) under each environment a worker may be started in. A new
//! environment is one line there.

mod common;

use std::path::{Path, PathBuf};

use celery::resp::Reply;
use celery::tasks;
use celery::testing::tasks as test_tasks;
use celery::testing::Proxy;
use common::*;

/// One environment the worker is started in.
struct Env {
    name: &'static str,
    /// Runs in the worker's process between fork and exec (only
    /// async-signal-safe calls).
    setup: fn(),
    /// The environment ignores SIGINT (a background job of a
    /// non-interactive shell): Ctrl-C must leave the worker running, and
    /// SIGTERM is what stops it.
    sigint_ignored: bool,
    /// A terminal hangup (SIGHUP to the process group) comes first.
    hangup: bool,
}

const ENVIRONMENTS: &[Env] = &[
    Env {
        name: "plain, Ctrl-C to the process group",
        setup: || {},
        sigint_ignored: false,
        hangup: false,
    },
    // The hangup is delivered too: the process pool keeps an ignored SIGHUP
    // ignored in its fork server and workers, so neither dies of it.
    Env {
        name: "SIGHUP ignored (nohup), a hangup to the process group",
        setup: || ignore(libc::SIGHUP),
        sigint_ignored: false,
        hangup: true,
    },
    Env {
        name: "SIGINT ignored (background job): Ctrl-C ignored, SIGTERM stops",
        setup: || ignore(libc::SIGINT),
        sigint_ignored: true,
        hangup: false,
    },
    Env {
        name: "every signal blocked",
        setup: block_every_signal,
        sigint_ignored: false,
        hangup: false,
    },
    Env {
        name: "stdin, stdout and stderr closed",
        setup: close_stdio,
        sigint_ignored: false,
        hangup: false,
    },
    Env {
        name: "RLIMIT_NOFILE of 32",
        setup: low_nofile,
        sigint_ignored: false,
        hangup: false,
    },
];

fn ignore(signal: libc::c_int) {
    // SAFETY: signal(2) with SIG_IGN is async-signal-safe; no handler code.
    unsafe { libc::signal(signal, libc::SIG_IGN) };
}

fn block_every_signal() {
    // SAFETY: `set` is initialised by sigfillset before use; sigprocmask only
    // reads it. Both are async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn close_stdio() {
    // SAFETY: close(2) is async-signal-safe; these descriptors belong to the
    // child being set up, and nothing in it uses them before exec.
    unsafe {
        libc::close(0);
        libc::close(1);
        libc::close(2);
    }
}

fn low_nofile() {
    let limit = libc::rlimit {
        rlim_cur: 32,
        rlim_max: 32,
    };
    // SAFETY: setrlimit(2) is async-signal-safe and only reads `limit`.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
}

fn started(gate: &Path) -> PathBuf {
    gate.with_extension("started")
}

fn open_gate(gate: &Path) {
    std::fs::write(gate, b"open").unwrap();
}

fn remove_gate(gate: &Path) {
    let _ = std::fs::remove_file(gate);
    let _ = std::fs::remove_file(started(gate));
}

/// The key cases under `env`; panics with what went wrong.
fn key_cases(env: &Env) {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let ex = test_executor(&url);
    let mut w = Spawned::start(&url, env.setup, &["-c", "1", "--pool", "processes"]);
    // A task runs and its result is stored.
    let sum = ex.submit_fallible(tasks::add, (1, 2)).unwrap();
    assert_eq!(sum.result_timeout(LONG).unwrap(), 3);
    // Ctrl-C while a task runs in a pool process.
    let gate = gate_path();
    let running = ex
        .submit(test_tasks::wait_for, gate.to_string_lossy().into_owned())
        .unwrap();
    wait_until(LONG, "the task to start", || started(&gate).exists());
    if env.hangup {
        w.signal_group(libc::SIGHUP);
    }
    w.signal_group(libc::SIGINT);
    open_gate(&gate);
    let pid = running
        .result_timeout(LONG)
        .expect("the running task finishes and its result is stored");
    assert_ne!(pid as i32, w.pid(), "it ran in a pool process");
    if env.sigint_ignored {
        // Ctrl-C was ignored: the worker still takes tasks; SIGTERM stops it.
        let more = ex.submit_fallible(tasks::add, (2, 2)).unwrap();
        assert_eq!(more.result_timeout(LONG).unwrap(), 4);
        // SAFETY: kill(2) on our unreaped child.
        assert_eq!(unsafe { libc::kill(w.pid(), libc::SIGTERM) }, 0);
    }
    assert_eq!(w.wait_exit(), Some(0), "a warm shutdown exits 0");
    assert_eq!(hlen_unacked(&redis), 0, "every task was acked");
    remove_gate(&gate);
}

#[test]
fn the_workers_key_cases_hold_in_every_environment() {
    let mut failed = Vec::new();
    for env in ENVIRONMENTS {
        eprintln!("--- environment: {}", env.name);
        if let Err(e) = std::panic::catch_unwind(|| key_cases(env)) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {why}", env.name));
        }
    }
    assert!(failed.is_empty(), "failed in:\n{}", failed.join("\n"));
}

#[test]
fn a_second_ctrl_c_is_a_cold_shutdown_that_returns_the_running_task_to_its_queue() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let ex = test_executor(&url);
    let marker = gate_path();
    let mut w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "processes"]);
    // Its first run blocks for ever: the task is running when Ctrl-C comes.
    let f = ex
        .submit(
            test_tasks::block_first_run,
            marker.to_string_lossy().into_owned(),
        )
        .unwrap();
    wait_until(LONG, "the task to start", || {
        marker.with_extension("pid").exists()
    });
    w.signal_group(libc::SIGINT);
    // Two quick signals of one kind may merge into one: send the second
    // once the worker has taken the first.
    wait_until(LONG, "the warm shutdown message", || {
        w.stderr().contains("warm shutdown")
    });
    w.signal_group(libc::SIGINT);
    assert_eq!(w.wait_exit(), Some(130), "a cold shutdown exits 130");
    assert!(w.stderr().contains("cold shutdown"), "{}", w.stderr());
    assert_eq!(
        hlen_unacked(&redis),
        0,
        "the running task's message is no longer held by the dead worker"
    );
    assert_eq!(llen(&redis, "celery"), 1, "it is back on its queue");
    // Another worker runs it (a second run returns its worker's pid).
    let b = rust_worker(&url, &["-c", "1", "--pool", "threads"]);
    assert_eq!(f.result_timeout(LONG).unwrap(), b.pid() as u32);
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(marker.with_extension("pid"));
}

/// A cold shutdown's caller exits the process as soon as `now()` returns.
/// The idle runner may be waiting in its fetch (`BLMOVE`, pipelined with the
/// fetch script) when the running task's message goes back to its queue:
/// it must not take that message (recorded as unacked, or lost) before the
/// process exits; `now()` returns once no fetch is under way.
#[test]
fn a_cold_shutdown_returns_before_an_idle_runner_can_fetch_the_returned_message() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut config = celery::WorkerConfig::new(&url);
    config.concurrency = 2;
    config.pool = celery::PoolKind::Threads;
    let worker = celery::Worker::new(config, test_tasks::registry());
    let cold = worker.cold_shutdown_handle();
    let stop = worker.stop_flag();
    let handle = std::thread::spawn(move || worker.run());
    let gate = gate_path();
    let msg = celery::message::TaskMessage::new(
        "rust.wait_for",
        serde_json::json!([gate.to_string_lossy()]),
        "celery",
    );
    let mut c = redis.connect();
    c.command(&[b"LPUSH", b"celery", msg.to_json().as_bytes()])
        .unwrap()
        .ok()
        .unwrap();
    wait_until(LONG, "the task to start", || started(&gate).exists());
    // The other runner is the leader, blocked in its wait (CLIENT LIST
    // names the command a client is blocked in).
    wait_until(LONG, "the idle runner to wait in BLMOVE", || {
        let list = c.command(&[b"CLIENT", b"LIST"]).unwrap().into_bytes();
        String::from_utf8_lossy(&list.unwrap_or_default()).contains("cmd=blmove")
    });
    assert_eq!(
        cold.now().unwrap(),
        1,
        "the running task's message returned"
    );
    // What a process exiting now leaves behind.
    let unacked = c.command(&[b"HLEN", b"unacked"]).unwrap();
    let queued = c.command(&[b"LLEN", b"celery"]).unwrap();
    open_gate(&gate);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    handle.join().unwrap().unwrap();
    remove_gate(&gate);
    assert_eq!(
        (unacked, queued),
        (Reply::Integer(0), Reply::Integer(1)),
        "(HLEN unacked, LLEN celery) when the cold shutdown returned"
    );
}

/// A third Ctrl-C ends the worker at once, even while its cold shutdown is
/// stuck returning the running task's message to a broker that does not
/// answer (a silent link: no read timeout notices it). The message is still
/// in `unacked`, so the visibility timeout restores it: nothing is lost.
#[test]
fn a_third_ctrl_c_ends_a_worker_whose_cold_shutdown_is_stuck() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = test_executor(&redis.url(0));
    let gate = gate_path();
    let mut w = Spawned::start(&link.url(0), || {}, &["-c", "1", "--pool", "processes"]);
    let _running = ex
        .submit(test_tasks::wait_for, gate.to_string_lossy().into_owned())
        .unwrap();
    wait_until(LONG, "the task to start", || started(&gate).exists());
    w.signal_group(libc::SIGINT);
    wait_until(LONG, "the warm shutdown message", || {
        w.stderr().contains("warm shutdown")
    });
    // The link goes silent; the second Ctrl-C's cold shutdown opens a new
    // connection to return the message, and waits on it for ever.
    link.stall();
    let accepted = link.stats().accepted;
    w.signal_group(libc::SIGINT);
    wait_until(LONG, "the cold shutdown's connection", || {
        link.stats().accepted > accepted
    });
    w.signal_group(libc::SIGINT);
    assert_eq!(w.wait_exit(), Some(130), "a third Ctrl-C exits at once");
    assert_eq!(
        hlen_unacked(&redis),
        1,
        "the running task's message stays unacked, for the visibility timeout to restore"
    );
    link.restore();
    open_gate(&gate);
    remove_gate(&gate);
}

/// SIGTERM to the worker's whole process group (systemd's default
/// `KillMode=control-group` does this; `kill PID` does not) reaches the
/// pool processes too, where SIGTERM is at its default (the process pool
/// keeps it so for `terminate_workers`, and Celery's prefork children reset
/// it the same way): the running task dies with its process and is stored
/// as FAILURE `WorkerLostError`, acked, as Celery does. The worker itself
/// takes it as a warm shutdown and exits 0. docs/cluster.md says so.
#[test]
fn sigterm_to_the_whole_group_ends_the_running_task_as_in_celery() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let ex = test_executor(&url);
    let gate = gate_path();
    let mut w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "processes"]);
    let running = ex
        .submit(test_tasks::wait_for, gate.to_string_lossy().into_owned())
        .unwrap();
    wait_until(LONG, "the task to start", || started(&gate).exists());
    w.signal_group(libc::SIGTERM);
    let err = running
        .result_timeout(LONG)
        .expect_err("the task's process died of the SIGTERM");
    assert!(err.to_string().contains("WorkerLostError"), "{err}");
    assert_eq!(w.wait_exit(), Some(0), "the worker's own shutdown is warm");
    assert_eq!(hlen_unacked(&redis), 0, "acked as a failure");
    remove_gate(&gate);
}
