//! Scheduling and limits a Celery user relies on,
//! each driven by a real Python Celery client against our worker and
//! compared with what Celery's own (prefork) worker does:
//!
//! * `countdown` / `eta`: the message is held, unacked, until due; a warm
//!   shutdown puts a held message back on its queue at once, and a dead
//!   worker's held message is restored.
//! * `expires`: an expired task does not run; REVOKED "expired" is stored,
//!   the record Celery's worker stores.
//! * `time_limit` (hard) and `soft_time_limit`: `TimeLimitExceeded` and
//!   `SoftTimeLimitExceeded`, from `billiard.exceptions` as in Celery.
//! * `--track-started`: STARTED is stored while the task runs.
//! * a chord: its body's result is a FAILURE that says why, at once.
//!
//! No test has a wall-clock upper bound: every wait is a hang guard.

mod common;

use celery::resp::Reply;
use common::*;

/// Sends `rust.add(1, 2)` with a countdown of an hour; prints its id.
const SEND_FAR_COUNTDOWN: &str = r#"
from tasks import app
r = app.send_task("rust.add", args=(1, 2), countdown=3600)
print("id", r.id)
"#;

#[test]
fn a_countdown_task_is_held_unacked_and_a_warm_shutdown_returns_it_to_its_queue() {
    let (redis, url, mut w) = redis_with_spawned(&["-c", "1", "--pool", "threads"]);
    let id = python_line(&url, SEND_FAR_COUNTDOWN, &[], "id ");
    wait_until(LONG, "the worker to fetch the countdown task", || {
        llen(&redis, "celery") == 0
    });
    // Held: fetched, recorded as unacked, not run.
    assert_eq!(hlen_unacked(&redis), 1, "the held message is unacked");
    // The only runner is free: a task sent now runs at once.
    let now = python_line(
        &url,
        "from tasks import app\nprint('sum', app.send_task('rust.add', args=(2, 3)).get(timeout=120))",
        &[],
        "sum ",
    );
    assert_eq!(now, "5");
    assert_eq!(
        result_of(&redis, &id),
        None,
        "a task with a countdown of an hour ran at once"
    );
    assert_eq!(hlen_unacked(&redis), 1, "the held message is still unacked");
    // Warm shutdown: the held message goes back to its queue at once.
    // SAFETY: kill(2) on our unreaped child.
    assert_eq!(unsafe { libc::kill(w.pid(), libc::SIGTERM) }, 0);
    assert_eq!(w.wait_exit(), Some(0), "a warm shutdown exits 0");
    assert_eq!(hlen_unacked(&redis), 0, "nothing is left unacked");
    assert_eq!(llen(&redis, "celery"), 1, "the held message is back");
    assert_eq!(result_of(&redis, &id), None, "and it did not run");
}

#[test]
fn a_killed_workers_held_message_is_restored_and_held_by_the_next_worker() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let fast_restore = [
        "-c",
        "1",
        "--pool",
        "threads",
        "--visibility-timeout",
        "1",
        "--restore-interval",
        "0.2",
        "--lease",
        "2",
    ];
    let mut a = Spawned::start(&url, || {}, &fast_restore);
    let id = python_line(&url, SEND_FAR_COUNTDOWN, &[], "id ");
    // The visibility timeout counts from the task's eta, not from its
    // fetch: a worker holding an eta task an hour ahead is not robbed of it
    // after a second (Celery's visibility-timeout caveat for eta tasks).
    // The fetch script records the time of the pop; the worker sets the eta
    // as the score right after it reads the message: wait for that (a
    // score left at the pop time fails here, when the guard fires).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut c = redis.connect();
    let mut tags = Vec::new();
    let mut score = 0.0;
    wait_until(
        LONG,
        "the first worker to hold the task, its unacked score its eta (an hour ahead)",
        || {
            tags = c
                .command(&[b"ZRANGE", b"unacked_index", b"0", b"-1", b"WITHSCORES"])
                .unwrap()
                .into_array();
            score = tags.get(1).map_or(0.0, |s| {
                let s = s.clone().into_bytes().unwrap();
                String::from_utf8(s).unwrap().parse().unwrap()
            });
            llen(&redis, "celery") == 0 && hlen_unacked(&redis) == 1 && score > now + 3000.0
        },
    );
    assert_eq!(tags.len(), 2, "one held message: {tags:?} (score {score})");
    // SIGKILL: the held message stays in `unacked`, not lost.
    a.child.0.kill().unwrap();
    a.wait_exit();
    assert_eq!(hlen_unacked(&redis), 1, "the dead worker's held message");
    // Nobody renews its lease now (src/lease.rs): once it lapses, the next
    // worker restores it, at once, not after the eta and the visibility
    // timeout.
    let tag = tags[0].clone().into_bytes().unwrap();
    let mut b = Spawned::start(&url, || {}, &fast_restore);
    wait_until(LONG, "the next worker to restore the held message", || {
        b.stderr().contains("ready")
            && c.command(&[b"ZSCORE", b"unacked_index", &tag]).unwrap() == Reply::Bulk(None)
    });
    wait_until(LONG, "the next worker to hold it in turn", || {
        llen(&redis, "celery") == 0 && hlen_unacked(&redis) == 1
    });
    assert_eq!(result_of(&redis, &id), None, "it is not due: not run");
    // SAFETY: kill(2) on our unreaped child.
    assert_eq!(unsafe { libc::kill(b.pid(), libc::SIGTERM) }, 0);
    assert_eq!(b.wait_exit(), Some(0));
    assert_eq!(llen(&redis, "celery"), 1, "back on its queue");
}

#[test]
fn a_held_task_revoked_before_its_eta_does_not_run_as_with_celerys_worker() {
    let (redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    // Long enough that the revoke below comes before the eta even on a
    // loaded machine; the Python side checks that it did.
    let id = python_line(
        &url,
        "from tasks import app\nprint('id', app.send_task('rust.add', args=(1, 2), countdown=20).id)",
        &[],
        "id ",
    );
    wait_until(LONG, "the worker to hold the task", || {
        llen(&redis, "celery") == 0 && hlen_unacked(&redis) == 1
    });
    let out = python_line(
        &url,
        r#"
import sys
from tasks import app
r = app.AsyncResult(sys.argv[1])
app.control.revoke(r.id)  # a broadcast only, as Python's client sends
print("before the eta", r.state)
try:
    print("result", "ran", r.get(timeout=120))
except Exception as e:
    print("result", r.state, type(e).__name__, e)
"#,
        &[&id],
        "result ",
    );
    assert_eq!(out, "REVOKED TaskRevokedError revoked");
    assert_eq!(hlen_unacked(&redis), 0, "the revoked message is acked");
}

#[test]
fn two_hundred_held_tasks_each_run_once_after_their_eta() {
    let (redis, url, mut w) = redis_with_spawned(&["-c", "2", "--pool", "threads"]);
    let out = python_line(
        &url,
        r#"
import datetime
from tasks import app
utc = datetime.timezone.utc
sent = []
for i in range(200):
    t0 = datetime.datetime.now(utc)
    sent.append((i, t0, app.send_task("rust.add", args=(i, 1), countdown=1 + i % 3)))
ok = all(r.get(timeout=120) == i + 1 and
         r.date_done >= t0 + datetime.timedelta(seconds=1 + i % 3) for i, t0, r in sent)
print("all", ok)
"#,
        &[],
        "all ",
    );
    assert_eq!(out, "True", "every result right, none before its eta");
    // SAFETY: kill(2) on our unreaped child.
    assert_eq!(unsafe { libc::kill(w.pid(), libc::SIGTERM) }, 0);
    assert_eq!(w.wait_exit(), Some(0));
    assert!(w.stderr().contains("(200 ran, 0 revoked"), "{}", w.stderr());
    assert_eq!(hlen_unacked(&redis), 0);
    assert_eq!(llen(&redis, "celery"), 0);
}

#[test]
fn countdown_and_eta_tasks_run_no_earlier_than_their_eta() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let out = python_line(
        &url,
        r#"
import datetime
from tasks import app
utc = datetime.timezone.utc
t0 = datetime.datetime.now(utc)
a = app.send_task("rust.add", args=(1, 2), countdown=3)
eta = datetime.datetime.now(utc) + datetime.timedelta(seconds=2)
b = app.send_task("rust.add", args=(3, 4), eta=eta)
print("results", a.get(timeout=120), b.get(timeout=120),
      a.date_done >= t0 + datetime.timedelta(seconds=3), b.date_done >= eta)
"#,
        &[],
        "results ",
    );
    assert_eq!(
        out, "3 7 True True",
        "(a, b, a after its countdown, b after its eta)"
    );
}

#[test]
fn an_expired_task_is_not_run_and_stored_as_revoked_expired_as_celery_does() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let out = python_line(
        &url,
        r#"
import datetime, json
from tasks import app
utc = datetime.timezone.utc
past = datetime.datetime.now(utc) - datetime.timedelta(seconds=5)
gone = app.send_task("rust.add", args=(1, 2), expires=past)
# Expires while held for its countdown: checked again when due.
late = app.send_task("rust.add", args=(1, 2), countdown=2, expires=1)
fresh = app.send_task("rust.add", args=(1, 2), expires=3600)
print("fresh", fresh.get(timeout=120))
for r in (gone, late):
    try:
        r.get(timeout=120)
    except Exception as e:
        print("revoked", r.state, type(e).__module__, type(e).__name__, e)
meta = app.backend.get_task_meta(gone.id)
print("meta", json.dumps({k: meta[k] for k in ("status", "result", "traceback", "children")}, default=repr))
"#,
        &[],
        "meta ",
    );
    // The record Celery 5.7's prefork worker stores for an expired task
    // (captured side by side): status, result, traceback and children; the
    // client rebuilds `TaskRevokedError('expired')` from it.
    let theirs: serde_json::Value = serde_json::json!({
        "status": "REVOKED",
        "result": "TaskRevokedError('expired')",
        "traceback": null,
        "children": [],
    });
    let ours: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn an_expired_tasks_raw_record_matches_the_python_workers_field_by_field() {
    let (redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let id = python_line(
        &url,
        r#"
import datetime
from tasks import app
past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
r = app.send_task("rust.add", args=(1, 2), expires=past)
try:
    r.get(timeout=120)
except Exception:
    pass
print("id", r.id)
"#,
        &[],
        "id ",
    );
    let ours = result_of(&redis, &id).expect("a record");
    // Celery 5.7's prefork worker, for the same message:
    // {"status": "REVOKED", "result": {"exc_type": "TaskRevokedError",
    //  "exc_message": ["expired"], "exc_module": "celery.exceptions"},
    //  "traceback": null, "children": [], "date_done": "2026-...+00:00",
    //  "task_id": "<id>"}
    let mut keys: Vec<&str> = ours
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "children",
            "date_done",
            "result",
            "status",
            "task_id",
            "traceback"
        ]
    );
    assert_eq!(ours["status"], "REVOKED");
    assert_eq!(
        ours["result"],
        serde_json::json!({"exc_type": "TaskRevokedError", "exc_message": ["expired"],
                           "exc_module": "celery.exceptions"})
    );
    assert_eq!(ours["traceback"], serde_json::Value::Null);
    assert_eq!(ours["task_id"], id.as_str());
    assert!(ours["date_done"].as_str().unwrap().ends_with("+00:00"));
}

/// A Python client's time limits on `rust.sleep_ms`: prints one line per
/// case, `<case> <state> <module>.<exception>`.
const TIME_LIMITS: &str = r#"
from tasks import app
def outcome(case, r):
    try:
        print(case, "SUCCESS", r.get(timeout=120))
    except Exception as e:
        print(case, r.state, type(e).__module__ + "." + type(e).__name__)
outcome("hard", app.send_task("rust.sleep_ms", args=(600000,), time_limit=1))
outcome("soft", app.send_task("rust.sleep_ms", args=(3000,), soft_time_limit=1))
outcome("both", app.send_task("rust.sleep_ms", args=(600000,), soft_time_limit=1, time_limit=2))
outcome("within", app.send_task("rust.sleep_ms", args=(10,), soft_time_limit=60, time_limit=120))
outcome("after", app.send_task("rust.add", args=(1, 2)))
"#;

#[test]
fn time_limits_end_a_task_in_a_worker_process_with_celerys_exceptions() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "processes"]);
    let out = python_with_args(&url, TIME_LIMITS, &[]);
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    // What Celery's prefork worker gives for the same messages.
    for line in [
        "hard FAILURE billiard.exceptions.TimeLimitExceeded",
        "soft FAILURE billiard.exceptions.SoftTimeLimitExceeded",
        "both FAILURE billiard.exceptions.TimeLimitExceeded",
        "within SUCCESS 10",
        "after SUCCESS 3",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
}

#[test]
fn on_threads_a_hard_time_limit_is_refused_before_the_task_runs_and_a_soft_one_honoured() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let marker = gate_path();
    let out = python_with_args(
        &url,
        r#"
import sys
from tasks import app
def outcome(case, r):
    try:
        print(case, "SUCCESS", r.get(timeout=120))
    except Exception as e:
        print(case, r.state, type(e).__module__ + "." + type(e).__name__, e)
outcome("hard", app.send_task("rust.touch", args=(sys.argv[1],), time_limit=1))
outcome("soft", app.send_task("rust.sleep_ms", args=(3000,), soft_time_limit=1))
"#,
        &[&marker.to_string_lossy()],
    );
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    assert!(
        out.contains("hard FAILURE builtins.NotImplementedError")
            && out.contains("--pool processes"),
        "{out}"
    );
    assert!(!marker.exists(), "a refused task must not run");
    assert!(
        out.contains("soft FAILURE billiard.exceptions.SoftTimeLimitExceeded"),
        "{out}"
    );
}

/// A task that stops at its soft time limit: it handles it, as a Python
/// task that catches `SoftTimeLimitExceeded`.
fn sleep_until_soft_limit(ms: u64) -> String {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_millis(ms) {
        if celery::soft_time_limit_exceeded() {
            return "stopped at the soft limit".to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    "ran to the end".to_string()
}

#[test]
fn a_task_that_checks_its_soft_time_limit_handles_it_and_its_own_result_is_stored() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut tasks = celery::tasks::builtin();
    tasks.register("test.sleep_until_soft_limit", sleep_until_soft_limit);
    let mut config = celery::WorkerConfig::new(&url);
    config.concurrency = 1;
    let worker = celery::Worker::new(config, tasks);
    let stop = worker.stop_flag();
    let running = std::thread::spawn(move || worker.run().expect("the worker runs"));
    let out = python_line(
        &url,
        r#"
from tasks import app
r = app.send_task("test.sleep_until_soft_limit", args=(600000,), soft_time_limit=1)
print("result", r.get(timeout=120))
"#,
        &[],
        "result ",
    );
    assert_eq!(out, "stopped at the soft limit");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    running.join().unwrap();
}

/// Starts `rust.wait_for(gate)`, waits for it to run, prints its state
/// and stored record, opens the gate and prints its result.
const TRACK_STARTED: &str = r#"
import json, os, sys, time
from tasks import app
gate = sys.argv[1]
r = app.send_task("rust.wait_for", args=(gate,))
deadline = time.monotonic() + 120  # hang guard only
while not os.path.exists(gate + ".started"):
    assert time.monotonic() < deadline, "the task did not start"
    time.sleep(0.02)
want = sys.argv[2]
while r.state != want:
    assert time.monotonic() < deadline, "state %s, never %s" % (r.state, want)
    time.sleep(0.02)
meta = app.backend.get_task_meta(r.id)
print("running", r.state, json.dumps(meta.get("result"), sort_keys=True), meta.get("date_done"))
open(gate, "w").close()
print("done", r.get(timeout=120) > 0, r.state)
"#;

#[test]
fn track_started_stores_started_while_the_task_runs_as_celery_does() {
    let (_redis, url, w) = redis_with_worker(&["-c", "1", "--pool", "threads", "--track-started"]);
    let gate = gate_path();
    let out = python_with_args(&url, TRACK_STARTED, &[&gate.to_string_lossy(), "STARTED"]);
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    // Celery's record: {"pid": <the process running it>, "hostname": "celery@<host>"}
    // and no date_done.
    let host = celery::message::hostname();
    let want = format!(
        r#"running STARTED {{"hostname": "celery@{host}", "pid": {}}} None"#,
        w.pid()
    );
    assert!(out.lines().any(|l| l == want), "no {want:?} in:\n{out}");
    assert!(out.contains("done True SUCCESS"), "{out}");
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(gate.with_extension("started"));
}

#[test]
fn without_track_started_a_running_task_stays_pending_as_celerys_default() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let gate = gate_path();
    let out = python_with_args(&url, TRACK_STARTED, &[&gate.to_string_lossy(), "PENDING"]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("running PENDING null None"), "{out}");
    assert!(out.contains("done True SUCCESS"), "{out}");
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(gate.with_extension("started"));
}

/// A Python client's chords, run by Celery's Redis chord counter (the
/// `.j`/`.s`/`.d`/`.c` keys of `celery-taskset-meta-<group>`): prints the
/// body's result, the error of a chord with a failing header task, and
/// the result of a chord whose body is a group.
const CHORDS: &str = r#"
import time
from celery import chord, group
from tasks import app
add = lambda *a: app.signature("rust.add", args=a)
print("sum", chord([add(1, 2), add(3, 4), add(5, 6)])(app.signature("rust.echo")).get(timeout=120))
bad = chord([add(1, 2), app.signature("rust.fail", args=("boom",))])(app.signature("rust.echo"))
try:
    print("failed chord", bad.get(timeout=120))
except Exception as e:
    # The header's error (through the body's parents) or the body's.
    print("failed chord", type(e).__name__, e)
deadline = time.monotonic() + 120  # hang guard only
while app.backend.get_task_meta(bad.id)["status"] == "PENDING":
    assert time.monotonic() < deadline, "the chord's body never failed"
    time.sleep(0.02)
meta = app.backend.get_task_meta(bad.id)
print("failed body", meta["status"], type(meta["result"]).__name__, meta["result"])
try:
    print("group body", chord([add(1, 2)])(group(app.signature("rust.echo"))).get(timeout=120))
except Exception as e:
    print("group body", type(e).__module__ + "." + type(e).__name__, e)
"#;

#[test]
fn a_python_clients_chord_runs_its_body_with_the_headers_results_in_order() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "2", "--pool", "threads"]);
    let out = python_with_args(&url, CHORDS, &[]);
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    // What Celery's prefork worker gives for the same chords.
    assert!(out.lines().any(|l| l == "sum [3, 7, 11]"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("failed chord") && l.contains("boom")),
        "{out}"
    );
    assert!(
        out.lines().any(
            |l| l.starts_with("failed body FAILURE ChordError Dependency")
                && l.contains("RustTaskError")
                && l.contains("boom")
        ),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "group body [[3]]"), "{out}");
}

#[test]
fn a_chord_whose_header_task_was_revoked_or_expired_fails_its_body_with_a_chord_error() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // Sent before any worker runs: the header task `revoked` is cancelled
    // the way our executor cancels (a REVOKED record), `expired` expires.
    let ids = python_line(
        &url,
        r#"
import datetime
from celery import chord
from tasks import app
past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
revoked = app.signature("rust.add", args=(1, 2))
revoked.freeze()
a = chord([revoked, app.signature("rust.add", args=(3, 4))])(app.signature("rust.echo"))
b = chord([app.signature("rust.add", args=(1, 2)).set(expires=past)])(app.signature("rust.echo"))
print("ids", revoked.id, a.id, b.id)
"#,
        &[],
        "ids ",
    );
    let ids: Vec<&str> = ids.split(' ').collect();
    let key = format!("celery-task-meta-{}", ids[0]);
    let record = celery::meta::Outcome::Revoked.to_json(ids[0]);
    redis
        .connect()
        .command(&[b"SET", key.as_bytes(), record.as_bytes()])
        .unwrap();
    let _w = rust_worker(&url, &["-c", "1", "--pool", "threads"]);
    let out = python_with_args(
        &url,
        r#"
import sys, time
from tasks import app
for name, body in (("revoked", sys.argv[1]), ("expired", sys.argv[2])):
    deadline = time.monotonic() + 120  # hang guard only
    while app.backend.get_task_meta(body)["status"] == "PENDING":
        assert time.monotonic() < deadline, "the chord's body never failed"
        time.sleep(0.02)
    meta = app.backend.get_task_meta(body)
    print(name, meta["status"], type(meta["result"]).__name__, meta["result"])
"#,
        &[ids[1], ids[2]],
    );
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    for name in ["revoked", "expired"] {
        assert!(
            out.lines().any(
                |l| l.starts_with(&format!("{name} FAILURE ChordError Dependency"))
                    && l.contains("TaskRevokedError")
            ),
            "{name}: {out}"
        );
    }
}

/// A second SIGTERM (a supervisor's, to the
/// worker alone) is a cold shutdown, as a second Ctrl-C is: the running
/// task and the held countdown task both go back to their queue.
#[test]
fn a_second_sigterm_is_a_cold_shutdown_that_returns_running_and_held_messages() {
    let (redis, url, mut w) = redis_with_spawned(&["-c", "2", "--pool", "processes"]);
    python_line(&url, SEND_FAR_COUNTDOWN, &[], "id ");
    wait_until(LONG, "the worker to hold the countdown task", || {
        llen(&redis, "celery") == 0 && hlen_unacked(&redis) == 1
    });
    let marker = gate_path();
    python_with_args(
        &url,
        "import sys\nfrom tasks import app\napp.send_task('rust.block_first_run', args=(sys.argv[1],))",
        &[&marker.to_string_lossy()],
    );
    wait_until(LONG, "the blocking task to run", || {
        marker.with_extension("pid").exists()
    });
    let sigterm = || {
        // SAFETY: kill(2) on our unreaped child.
        assert_eq!(unsafe { libc::kill(w.pid(), libc::SIGTERM) }, 0);
    };
    sigterm();
    // Two quick signals of one kind may merge into one: send the second
    // once the worker has taken the first.
    wait_until(LONG, "the warm shutdown message", || {
        w.stderr().contains("warm shutdown")
    });
    sigterm();
    assert_eq!(w.wait_exit(), Some(130), "a cold shutdown exits 130");
    assert_eq!(hlen_unacked(&redis), 0, "nothing is left unacked");
    assert_eq!(
        llen(&redis, "celery"),
        2,
        "the running and the held task are back"
    );
    let _ = std::fs::remove_file(&marker);
    let _ = std::fs::remove_file(marker.with_extension("pid"));
}

/// A chord whose header result nests deeper than
/// serde_json's default limit of 128 (the worker reads arguments up to
/// `celery::json::MAX_DEPTH` levels, so such a task runs) still completes:
/// its body gets the result whole. Before the fix the worker could not
/// re-read the part it reports to the chord, left the message unacked
/// and the body was never sent (the hang guard fired).
#[test]
fn a_chord_whose_header_result_nests_200_deep_runs_its_body_with_it() {
    let (_redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let out = python_with_args(
        &url,
        r#"
import time
from celery import chord
from tasks import app
nested = []
for _ in range(200):
    nested = [nested]
body = chord([app.signature("rust.echo", args=(nested,))])(app.signature("rust.echo"))
deadline = time.monotonic() + 60  # hang guard only
while app.backend.get_task_meta(body.id)["status"] == "PENDING":
    assert time.monotonic() < deadline, "the chord's body never ran"
    time.sleep(0.02)
meta = app.backend.get_task_meta(body.id)
print("deep", meta["status"], meta["result"] == [nested])
"#,
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l == "deep SUCCESS True"), "{text}");
}

/// A held task runs when it is due, not when the fetch's blocking wait
/// (`BLMOVE`, a second) happens to end: the leader's wait is cut to the
/// soonest held eta. Read from the server's `MONITOR` feed: some fetch
/// waits less than a second while the task is held (with no task held,
/// every wait is Redis's whole second). No clock is compared.
#[test]
fn the_fetch_waits_no_longer_than_the_soonest_held_eta() {
    let (redis, url, _w) = redis_with_worker(&["-c", "1", "--pool", "threads"]);
    let mut monitor = redis.connect();
    monitor.command(&[b"MONITOR"]).unwrap().ok().unwrap();
    let id = python_line(
        &url,
        r#"
from tasks import app
print("id", app.send_task("rust.add", args=(2, 3), countdown=2.5).id)
"#,
        &[],
        "id ",
    );
    let stored = format!("\"celery-task-meta-{id}\"");
    let mut waits: Vec<String> = Vec::new();
    // Every command the server runs, up to the task's result (the read
    // timeout of the connection is the hang guard).
    loop {
        let line = match monitor.read_reply().unwrap() {
            Reply::Status(line) => line,
            other => panic!("MONITOR sent {other:?}"),
        };
        if line.contains(&stored) && line.contains("\"SETEX\"") {
            break;
        }
        if let Some(args) = line.split_once("\"BLMOVE\" ").map(|(_, a)| a) {
            waits.push(
                args.rsplit(' ')
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    let short = waits
        .iter()
        .filter(|w| w.parse::<f64>().unwrap() < 1.0)
        .count();
    assert!(
        short >= 1,
        "every fetch wait was a whole second ({waits:?}): the held task waited for the \
         fetch's timeout, not its eta"
    );
    let record = result_of(&redis, &id).expect("the task's result");
    assert_eq!(record["result"], 5, "{record}");
}

/// An `eta` or `expires` that no ISO 8601 date can say (NaN, infinite,
/// past year 9999) is refused by `send`, with the header named, and
/// nothing is queued: it used to go out as another date (NaN as
/// 1970-01-01, so a NaN eta ran at once and a NaN expires was never run),
/// or as one the worker refuses.
#[test]
fn send_refuses_an_eta_or_expires_no_date_can_say_and_queues_nothing() {
    let redis = RedisServer::start();
    let ex = celery::CeleryExecutor::connect(&redis.url(0)).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e12, -1e12] {
        for header in ["eta", "expires"] {
            let mut m =
                celery::message::TaskMessage::new("rust.add", serde_json::json!([1, 2]), "celery");
            match header {
                "eta" => m.timing.eta = Some(bad),
                _ => m.timing.expires = Some(bad),
            }
            match ex.send::<i64>(m) {
                Err(celery::CeleryError::Protocol(why)) => {
                    assert!(why.contains(header), "{header} = {bad}: {why}")
                }
                Err(e) => panic!("{header} = {bad}: {e:?}"),
                Ok(_) => panic!("{header} = {bad}: sent"),
            }
            assert_eq!(llen(&redis, "celery"), 0, "{header} = {bad}: queued");
        }
    }
    assert_eq!(ex.pending(), 0, "a refused message is not pending");
}

/// A time limit of NaN went out as `null` (no limit at all) in the
/// `timelimit` header: `send` refuses it, naming it, and queues nothing.
#[test]
fn send_refuses_a_nan_time_limit_and_queues_nothing() {
    let redis = RedisServer::start();
    let ex = celery::CeleryExecutor::connect(&redis.url(0)).unwrap();
    for which in ["time_limit", "soft_time_limit"] {
        let mut m =
            celery::message::TaskMessage::new("rust.add", serde_json::json!([1, 2]), "celery");
        match which {
            "time_limit" => m.limits.hard = Some(f64::NAN),
            _ => m.limits.soft = Some(f64::NAN),
        }
        match ex.send::<i64>(m) {
            Err(celery::CeleryError::Protocol(why)) => assert!(why.contains(which), "{why}"),
            Err(e) => panic!("{which} = NaN: {e:?}"),
            Ok(_) => panic!("{which} = NaN: sent"),
        }
        assert_eq!(llen(&redis, "celery"), 0, "{which} = NaN: queued");
    }
    assert_eq!(ex.pending(), 0, "a refused message is not pending");
}
