//! Leases instead of re-runs (`celery::lease`): a live worker renews the
//! lease of each task it runs, so a task longer than any timeout runs once;
//! a dead worker's lease lapses and its task is delivered again; the
//! client sees how many times a task was delivered (`attempts`); a Python
//! worker on the same queue works as before.
//!
//! No test here bounds wall-clock time: each waits on Redis's clock (a
//! lease lapses by Redis's `TIME`), on log lines or on counters, with the
//! 120 s hang guard.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use celery::resp::{Connection, Reply};
use celery::testing::tasks as test_tasks;
use celery::testing::Proxy;
use celery::{tasks, CeleryError, CeleryExecutor, Worker, WorkerConfig};
use common::*;

/// Redis's clock, in seconds: the clock leases lapse by.
fn redis_time(c: &mut Connection) -> f64 {
    let parts = c.command(&[b"TIME"]).unwrap().into_array();
    let field = |i: usize| -> f64 {
        let b = parts[i].clone().into_bytes().unwrap();
        String::from_utf8(b).unwrap().parse().unwrap()
    };
    field(0) + field(1) / 1e6
}

/// One message is unacked and its `unacked_index` score is ahead of
/// Redis's clock: the worker recorded its eta there (the fetch records the
/// time of the pop, already past).
fn eta_recorded(c: &mut Connection) -> bool {
    let tags = c.command(&[b"HKEYS", b"unacked"]).unwrap().into_array();
    let [tag] = tags.as_slice() else {
        return false;
    };
    let tag = tag.clone().into_bytes().unwrap();
    let score = c.command(&[b"ZSCORE", b"unacked_index", &tag]).unwrap();
    let score: Option<f64> = score
        .into_bytes()
        .and_then(|b| String::from_utf8(b).ok()?.parse().ok());
    score.is_some_and(|s| s > redis_time(c))
}

fn int(c: &mut Connection, args: &[&[u8]]) -> i64 {
    match c.command(args).unwrap() {
        Reply::Integer(n) => n,
        Reply::Bulk(None) => 0,
        Reply::Bulk(Some(b)) => String::from_utf8(b).unwrap().parse().unwrap(),
        other => panic!("{args:?}: {other:?}"),
    }
}

/// The leases recorded now: (delivery tag, when it lapses).
fn leases(c: &mut Connection) -> Vec<(String, f64)> {
    let all = c
        .command(&[b"ZRANGE", b"rust:leases", b"0", b"-1", b"WITHSCORES"])
        .unwrap()
        .into_array();
    all.chunks(2)
        .map(|p| {
            let tag = String::from_utf8(p[0].clone().into_bytes().unwrap()).unwrap();
            let s = p[1].clone().into_bytes().unwrap();
            (tag, String::from_utf8(s).unwrap().parse().unwrap())
        })
        .collect()
}

fn temp_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("celery-lease-{what}-{}", celery::id::new_task_id()))
}

/// What another worker's heartbeat does to a lapsed lease (its restore
/// script), and that worker's fetch: the one delivery leaves `unacked`,
/// this worker's no more.
fn take_the_delivery_away(c: &mut Connection) {
    let tags = c.command(&[b"HKEYS", b"unacked"]).unwrap().into_array();
    assert_eq!(tags.len(), 1, "one delivery: {tags:?}");
    let tag = tags[0].clone().into_bytes().unwrap();
    int(c, &[b"ZREM", b"rust:leases", &tag]);
    int(c, &[b"ZREM", b"unacked_index", &tag]);
    assert_eq!(int(c, &[b"HDEL", b"unacked", &tag]), 1);
}

/// Waits until task `id` (a `count_then_wait` on `key` and `gate`) runs on
/// worker `w`, takes its delivery away, lets it end, and waits for its
/// result (1) and for the worker to say it may have run twice.
fn take_away_while_it_runs(
    c: &mut Connection,
    w: &Spawned,
    (key, gate): (&str, &Path),
    f: &future::Future<i64>,
    id: &str,
) {
    wait_until(LONG, "the task to start", || {
        int(c, &[b"GET", key.as_bytes()]) >= 1
    });
    take_the_delivery_away(c);
    std::fs::write(gate, b"").unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 1);
    wait_until(
        LONG,
        "the worker to say the task may have run twice",
        || {
            w.stderr()
                .lines()
                .any(|l| l.contains(id) && l.contains("twice"))
        },
    );
}

#[test]
fn a_task_running_three_lease_periods_runs_once() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // The old emulation's setting that ran such a task twice: a visibility
    // timeout of 2 s, looked at every 0.2 s. The lease is 2 s too.
    let _w = Spawned::start(
        &url,
        || {},
        &[
            "-c",
            "2",
            "--pool",
            "threads",
            "--visibility-timeout",
            "2",
            "--restore-interval",
            "0.2",
            "--lease",
            "2",
        ],
    );
    let ex = test_executor(&url);
    let gate = temp_path("gate");
    let key = format!("runs:{}", celery::id::new_task_id());
    let args = (
        url.clone(),
        key.clone(),
        gate.to_string_lossy().into_owned(),
    );
    let f = ex
        .submit_fallible(test_tasks::count_then_wait, args)
        .unwrap();
    let id = ex.task_id(&f).expect("pending: its id is known");
    let mut c = redis.connect();
    wait_until(LONG, "the task to start", || {
        int(&mut c, &[b"GET", key.as_bytes()]) >= 1
    });
    let started = redis_time(&mut c);
    // Three lease periods by Redis's clock; a second runner is idle all
    // along, ready to take the task if it were restored.
    wait_until(LONG, "three lease periods to pass", || {
        redis_time(&mut c) >= started + 6.0
    });
    let held = leases(&mut c);
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 1, "the run that finished");
    assert_eq!(
        int(&mut c, &[b"GET", key.as_bytes()]),
        1,
        "a task running three lease periods ran more than once"
    );
    assert_eq!(ex.attempts(&id).unwrap(), Some(1), "delivered once");
    // Its lease was renewed while it ran: it lapses after the fetch plus a
    // period would have.
    assert_eq!(held.len(), 1, "one lease while it ran: {held:?}");
    assert!(
        held[0].1 > started + 4.0,
        "renewed: {held:?} (started {started})"
    );
    // The ack forgot the lease with the message; nothing was queued again.
    wait_until(LONG, "the ack", || {
        int(&mut c, &[b"HLEN", b"unacked"]) == 0 && int(&mut c, &[b"LLEN", b"celery"]) == 0
    });
    assert_eq!(int(&mut c, &[b"GET", key.as_bytes()]), 1, "ran again");
    assert_eq!(int(&mut c, &[b"ZCARD", b"rust:leases"]), 0);
    let _ = std::fs::remove_file(&gate);
}

#[test]
fn a_killed_workers_task_is_delivered_again_once_its_lease_lapses() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // The visibility timeout stays an hour (the default): a redelivery
    // within this test is the lease's doing.
    let args = ["-c", "1", "--pool", "threads", "--lease", "2"];
    let mut a = Spawned::start(&url, || {}, &args);
    let ex = test_executor(&url);
    let marker = temp_path("block");
    let f = ex
        .submit(
            test_tasks::block_first_run,
            marker.to_string_lossy().into_owned(),
        )
        .unwrap();
    let id = ex.task_id(&f).unwrap();
    wait_until(LONG, "worker A to start the task", || marker.exists());
    a.child.0.kill().unwrap();
    a.wait_exit();
    let b = Spawned::start(&url, || {}, &args);
    let pid = f.result_timeout(LONG).unwrap();
    assert_eq!(pid, b.pid() as u32, "the second run happened on worker B");
    assert_eq!(ex.attempts(&id).unwrap(), Some(2), "delivered twice");
    let mut c = redis.connect();
    wait_until(LONG, "the ack", || int(&mut c, &[b"HLEN", b"unacked"]) == 0);
    assert_eq!(int(&mut c, &[b"ZCARD", b"rust:leases"]), 0, "no lease left");
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(marker.with_extension("pid"));
}

/// A Python `celery worker` (solo pool, one message prefetched at most).
fn python_worker_prefetch_one(broker: &str) -> ChildGuard {
    let venv = celery_venv();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let child = Command::new(venv.join("bin/celery"))
        .args(["-A", "tasks", "worker", "--pool", "solo"])
        .args(["--loglevel", "WARNING", "--prefetch-multiplier", "1"])
        .args([
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ])
        .current_dir(dir)
        .env("CELERY_TEST_BROKER", broker)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the Python celery worker");
    ChildGuard(child)
}

#[test]
fn a_python_worker_and_ours_share_a_queue_and_every_task_runs_once() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _py = python_worker_prefetch_one(&url);
    let ex = test_executor(&url);
    // Only the Python worker knows tasks.add: its answer says it is up.
    let probe = ex.submit_named::<_, i64>("tasks.add", (1, 2)).unwrap();
    assert_eq!(probe.result_timeout(LONG).unwrap(), 3);
    let mut c = redis.connect();
    // Each task works for three of our lease periods (2 s).
    let task = |n: usize| {
        let key = format!("runs:{n}");
        let f = ex
            .submit_named::<_, String>("tasks.count_run", (url.clone(), key.clone(), 6.0))
            .unwrap();
        let id = ex.task_id(&f).unwrap();
        (key, id, f)
    };
    // The first one to the Python worker (ours is not up yet).
    let mut all = vec![task(0)];
    wait_until(LONG, "the Python worker to start task 0", || {
        int(&mut c, &[b"GET", b"runs:0"]) == 1
    });
    // Acked late, it is unacked while it runs, with no lease of ours: a
    // restore by age alone would take it from the Python worker.
    assert_eq!(int(&mut c, &[b"HLEN", b"unacked"]), 1, "task 0 unacked");
    assert_eq!(
        int(&mut c, &[b"ZCARD", b"rust:leases"]),
        0,
        "and not leased"
    );
    let ours = Spawned::start(
        &url,
        || {},
        &["-c", "2", "--pool", "threads", "--lease", "2"],
    );
    all.extend((1..6).map(task));
    let mut by = Vec::new();
    for (key, id, f) in &all {
        let who = f.result_timeout(LONG).unwrap();
        assert_eq!(
            int(&mut c, &[b"GET", key.as_bytes()]),
            1,
            "{key} ran more than once (last by {who})"
        );
        // Deliveries are counted by our worker's fetch only: a Python
        // worker's fetch leaves no trace.
        let expected = if who == "rust" { Some(1) } else { None };
        assert_eq!(ex.attempts(id).unwrap(), expected, "{key} run by {who}");
        by.push(who);
    }
    assert!(by.iter().any(|w| w == "python"), "{by:?}");
    assert!(by.iter().any(|w| w == "rust"), "{by:?}");
    assert!(
        !ours.stderr().contains("no longer unacked"),
        "{}",
        ours.stderr()
    );
    // A copy restored meanwhile would run after its first result came:
    // once nothing is queued or unacked, count again.
    wait_until(LONG, "every ack", || {
        int(&mut c, &[b"HLEN", b"unacked"]) == 0 && int(&mut c, &[b"LLEN", b"celery"]) == 0
    });
    for (key, _, _) in &all {
        assert_eq!(int(&mut c, &[b"GET", key.as_bytes()]), 1, "{key} ran again");
    }
    assert_eq!(int(&mut c, &[b"ZCARD", b"rust:leases"]), 0);
}

#[test]
fn after_redis_was_out_of_reach_a_live_workers_task_is_not_taken_by_another() {
    // Redis out of reach of both workers for longer than a lease: by Redis's
    // clock the running task's lease lapsed. The worker that reaches Redis
    // first must not restore it at once: the live worker renews first.
    let redis = RedisServer::start();
    let (pa, pb) = (Proxy::start(redis.port()), Proxy::start(redis.port()));
    // A visibility timeout of 1 s, looked at every 0.2 s: a leased message
    // is left to the heartbeats (and their wait of a whole period) even
    // when it is older than that. A's lease is 10 s (it lapses during the
    // cut); B's is 30 s, so B waits 30 s after it is back before it may
    // restore anything: A has that long to renew, on a loaded machine too.
    let args = |lease| {
        [
            "-c",
            "1",
            "--pool",
            "threads",
            "--lease",
            lease,
            "--visibility-timeout",
            "1",
            "--restore-interval",
            "0.2",
        ]
    };
    let a = Spawned::start(&pa.url(0), || {}, &args("10"));
    let ex = test_executor(&redis.url(0));
    let mut c = redis.connect();
    let gate = temp_path("gate");
    let key = format!("runs:{}", celery::id::new_task_id());
    let url = redis.url(0);
    let args_of_task = (url, key.clone(), gate.to_string_lossy().into_owned());
    let f = ex
        .submit_fallible(test_tasks::count_then_wait, args_of_task)
        .unwrap();
    wait_until(LONG, "worker A to start the task", || {
        int(&mut c, &[b"GET", key.as_bytes()]) == 1
    });
    // B is idle: a restored message would be its to run.
    let b = Spawned::start(&pb.url(0), || {}, &args("30"));
    wait_until(LONG, "worker B to be ready", || {
        b.stderr().contains("ready")
    });
    let held = leases(&mut c);
    assert_eq!(held.len(), 1, "{held:?}");
    pa.cut();
    pb.cut();
    wait_until(LONG, "both heartbeats to fail", || {
        a.stderr().contains("cannot renew the leases")
            && b.stderr().contains("cannot renew the leases")
    });
    wait_until(LONG, "the lease to lapse by Redis's clock", || {
        let lapses = leases(&mut c).first().map_or(f64::MAX, |l| l.1);
        redis_time(&mut c) > lapses + 0.5
    });
    pb.restore();
    wait_until(LONG, "worker B to reach Redis again", || {
        b.stderr().contains("renewing leases again")
    });
    pa.restore();
    wait_until(LONG, "worker A to renew its lease", || {
        let lapses = leases(&mut c).first().map_or(0.0, |l| l.1);
        lapses > redis_time(&mut c)
    });
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 1);
    assert_eq!(
        int(&mut c, &[b"GET", key.as_bytes()]),
        1,
        "the task ran twice: B restored a live worker's task. B said:\n{}",
        b.stderr()
    );
    assert!(!a.stderr().contains("no longer unacked"), "{}", a.stderr());
    wait_until(LONG, "the ack", || {
        int(&mut c, &[b"HLEN", b"unacked"]) == 0 && int(&mut c, &[b"LLEN", b"celery"]) == 0
    });
    assert_eq!(int(&mut c, &[b"GET", key.as_bytes()]), 1, "ran again");
    let _ = std::fs::remove_file(&gate);
}

#[test]
fn renewals_racing_acks_leave_no_lease_behind() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // A visibility timeout of 30 ms makes the heartbeat renew every 10 ms
    // (a third of it), through every ack; the lease (30 s) never lapses.
    let w = Spawned::start(
        &url,
        || {},
        &[
            "-c",
            "2",
            "--pool",
            "threads",
            "--visibility-timeout",
            "0.03",
            "--lease",
            "30",
        ],
    );
    let ex = test_executor(&url);
    let futures: Vec<_> = (0..300i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 1)).unwrap())
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 1);
    }
    let mut c = redis.connect();
    wait_until(LONG, "every ack", || {
        int(&mut c, &[b"HLEN", b"unacked"]) == 0
    });
    assert_eq!(
        int(&mut c, &[b"ZCARD", b"rust:leases"]),
        0,
        "a renewal gave an acked message its lease back: {:?}",
        leases(&mut c)
    );
    assert!(!w.stderr().contains("no longer unacked"), "{}", w.stderr());
}

#[test]
fn a_stopping_worker_joins_its_heartbeat_without_waiting_out_its_period() {
    let redis = RedisServer::start();
    let mut config = WorkerConfig::new(&redis.url(0));
    config.concurrency = 1;
    // Renewals every 20 minutes: a heartbeat that slept instead of waiting
    // on its condvar would hold the stop that long (the hang guard fires).
    config.lease = Duration::from_secs(3600);
    let worker = Worker::new(config, tasks::builtin());
    let stop = worker.stop_flag();
    let run = std::thread::spawn(move || worker.run());
    wait_until(LONG, "the heartbeat to start", || {
        threads_named("celery-lease") == 1
    });
    stop.store(true, Ordering::SeqCst);
    wait_until(LONG, "the worker to stop", || run.is_finished());
    run.join().unwrap().unwrap();
    assert_eq!(threads_named("celery-lease"), 0, "the heartbeat is joined");
}

#[test]
fn a_lease_under_a_second_is_refused_with_what_to_give() {
    let redis = RedisServer::start();
    // Shorter than a renewal's round trip under load: the worker would
    // restore its own running tasks. Refused, not run.
    for lease in [Duration::ZERO, Duration::from_millis(500)] {
        let mut config = WorkerConfig::new(&redis.url(0));
        config.lease = lease;
        let run = std::thread::spawn(move || Worker::new(config, tasks::builtin()).run());
        wait_until(LONG, "the worker to refuse the lease", || run.is_finished());
        match run.join().unwrap() {
            Err(e @ CeleryError::Config(_)) => {
                assert!(e.to_string().contains("at least a second"), "{e}")
            }
            other => panic!("lease {lease:?}: expected a Config error, got {other:?}"),
        }
    }
    for bad in ["0", "0.5", "-2", "NaN", "1e30", "soon"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_celery-test-worker"))
            .args(["--broker", &redis.url(0), "--lease", bad])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut status = None;
        wait_until(LONG, "the worker to refuse --lease", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.unwrap().code(), Some(2), "--lease {bad}: {err}");
        assert!(err.contains("--lease"), "--lease {bad}: {err}");
    }
}

/// A worker whose lease lapsed (paused, cut off from Redis) while its
/// task ran, and whose message another worker restored and took, finishes
/// the task before its heartbeat renews again: the task ran twice, and the
/// worker must say so when its ack finds the message no longer unacked
/// (the heartbeat, which would have said so, is told an ack is under way).
#[test]
fn a_task_whose_delivery_was_taken_away_says_it_may_run_twice_when_acked() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // A long lease: the heartbeat renews every 20 s, not in the few
    // milliseconds between the restore below and the ack.
    let w = Spawned::start(
        &url,
        || {},
        &["-c", "1", "--pool", "threads", "--lease", "60"],
    );
    let ex = test_executor(&url);
    let gate = temp_path("gate");
    let key = format!("runs:{}", celery::id::new_task_id());
    let args = (
        url.clone(),
        key.clone(),
        gate.to_string_lossy().into_owned(),
    );
    let f = ex
        .submit_fallible(test_tasks::count_then_wait, args)
        .unwrap();
    let id = ex.task_id(&f).unwrap();
    let mut c = redis.connect();
    take_away_while_it_runs(&mut c, &w, (&key, &gate), &f, &id);
    let _ = std::fs::remove_file(&gate);
}

/// A worker paused (SIGSTOP) longer than its lease while it held a task
/// for its eta: another worker restored the message and holds it now.
/// Resumed, the first worker must not run the task at its eta (it no
/// longer has the message: the other one runs it), and says why.
#[test]
fn a_resumed_worker_does_not_run_a_held_task_another_worker_took() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "threads"]);
    let ex = test_executor(&url);
    let mut c = redis.connect();
    let gate = temp_path("gate");
    std::fs::write(&gate, b"").unwrap(); // the task ends as soon as it counts
                                         // The worker must be stopped while it holds the task: an eta it
                                         // reaches first (a slow machine) is tried again, further away.
    let mut ahead = 10.0;
    let (key, id) = loop {
        let key = format!("runs:{}", celery::id::new_task_id());
        let args = (
            url.clone(),
            key.clone(),
            gate.to_string_lossy().into_owned(),
        );
        let mut m = celery::message::TaskMessage::new(
            "rust.count_then_wait",
            serde_json::json!([args]),
            "celery",
        );
        m.timing.eta = Some(redis_time(&mut c) + ahead);
        let id = m.id.clone();
        let f = ex.send::<i64>(m).unwrap();
        // Held: fetched, and its eta recorded as its unacked score (before
        // that, the worker still checks that the message is its own, and a
        // message taken away then is dropped, not held).
        wait_until(LONG, "the worker to hold the task", || {
            int(&mut c, &[b"LLEN", b"celery"]) == 0 && eta_recorded(&mut c)
        });
        w.signal_group(libc::SIGSTOP);
        if int(&mut c, &[b"GET", key.as_bytes()]) == 0 {
            drop(f);
            break (key, id);
        }
        // It ran before the stop: let it finish, try with a later eta.
        w.signal_group(libc::SIGCONT);
        assert_eq!(f.result_timeout(LONG).unwrap(), 1);
        wait_until(LONG, "its ack", || int(&mut c, &[b"HLEN", b"unacked"]) == 0);
        ahead *= 4.0;
    };
    // Another worker took it once the lease lapsed (it is held over there
    // now).
    take_the_delivery_away(&mut c);
    w.signal_group(libc::SIGCONT);
    wait_until(LONG, "the worker to run the task or to give it up", || {
        int(&mut c, &[b"GET", key.as_bytes()]) >= 1
            || w.stderr()
                .lines()
                .any(|l| l.contains(&id) && l.contains("not running it"))
    });
    assert_eq!(
        int(&mut c, &[b"GET", key.as_bytes()]),
        0,
        "the resumed worker ran a held task whose message another worker took"
    );
    let _ = std::fs::remove_file(&gate);
}

/// As above, with a chain after the task: the worker whose delivery was
/// taken away must not send the chain's next task, since the restored copy
/// sends it when it runs (the task itself may run twice, at least once; the
/// rest of the chain must not run twice more because of it).
#[test]
fn a_worker_whose_delivery_was_taken_away_does_not_send_the_chains_next_task() {
    taken_away_with_a_chain(None);
}

/// The same with the results on a server of their own, where sending what
/// follows is a step of its own on the broker.
#[test]
fn with_a_separate_backend_a_taken_away_delivery_does_not_send_the_chains_next_task() {
    let backend = RedisServer::start();
    taken_away_with_a_chain(Some(&backend));
}

fn taken_away_with_a_chain(backend: Option<&RedisServer>) {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut args = vec!["-c", "1", "--pool", "threads", "--lease", "60"];
    let backend_url = backend.map(|b| b.url(0));
    let mut builder = CeleryExecutor::builder(&url).registry(test_tasks::registry());
    if let Some(b) = &backend_url {
        args.extend(["--backend", b]);
        builder = builder.backend(b);
    }
    // A long lease, as above: no renewal between the restore and the ack.
    let w = Spawned::start(&url, || {}, &args);
    let ex = builder.connect().unwrap();
    let gate = temp_path("gate");
    let key = format!("runs:{}", celery::id::new_task_id());
    let args = (
        url.clone(),
        key.clone(),
        gate.to_string_lossy().into_owned(),
    );
    // The chain's next task goes to a queue no worker reads, so it stays
    // there to be counted.
    let elsewhere = format!("elsewhere-{}", celery::id::new_task_id());
    let mut m = celery::message::TaskMessage::new(
        "rust.count_then_wait",
        serde_json::json!([args]),
        "celery",
    );
    m.embed = serde_json::json!({
        "callbacks": null,
        "errbacks": null,
        "chain": [{
            "task": "rust.add",
            "args": [1],
            "kwargs": {},
            "options": {"queue": elsewhere},
            "subtask_type": null,
            "immutable": false,
        }],
        "chord": null,
    });
    let id = m.id.clone();
    let f = ex.send::<i64>(m).unwrap();
    let mut c = redis.connect();
    take_away_while_it_runs(&mut c, &w, (&key, &gate), &f, &id);
    assert_eq!(
        int(&mut c, &[b"LLEN", elsewhere.as_bytes()]),
        0,
        "the worker whose delivery was taken away sent the chain's next task \
         (the restored copy sends it too: the rest of the chain runs twice)"
    );
    let _ = std::fs::remove_file(&gate);
}

/// The fetch script reads the task id (for the delivery count) inside
/// Redis, and must not decode the whole message to do so: cjson builds all
/// of it as Lua values in Redis's memory, about 17 times the message's
/// size for a JSON array (a hostile 16 MiB message took Lua's heap to
/// 272 MB; one of a few hundred MiB would exhaust the server). Shown with a
/// message whose headers name its id and whose rest is not JSON (a huge
/// array cut short): read without decoding, its delivery is counted.
#[test]
fn the_fetch_finds_the_task_id_without_decoding_the_message() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut c = redis.connect();
    let id = celery::id::new_task_id();
    let hostile = format!(
        r#"{{"headers": {{"lang": "py", "id": "{id}"}}, "rest": [{}"#,
        "0,".repeat(1 << 20)
    );
    int(&mut c, &[b"LPUSH", b"celery", hostile.as_bytes()]);
    let _w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "threads"]);
    wait_until(LONG, "the worker to fetch the message", || {
        int(&mut c, &[b"LLEN", b"celery"]) == 0
    });
    let key = celery::lease::attempts_key(&id);
    assert_eq!(
        int(&mut c, &[b"GET", key.as_bytes()]),
        1,
        "the delivery of a message that is not JSON as a whole was not counted: \
         the fetch script decoded it whole"
    );
}
