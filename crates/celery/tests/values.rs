//! Values a Python Celery client sends arrive exactly at our worker, and a
//! message with a readable task id always gets a result. Each test drives a real Celery 5 client from the test
//! virtualenv (`CELERY_VENV`) against the `celery-worker` binary; the
//! client's `get(timeout=120)` is the hang guard, never a bound on speed.

mod common;

use std::time::Duration;

use celery::message::TaskMessage;
use celery::resp::Reply;
use common::*;

/// Our worker with runner threads, its stderr collected.
const THREADS: &[&str] = &["-c", "2", "--pool", "threads"];

/// Our worker with its default pool, worker processes: the arguments and
/// the result cross the pool's pipe as JSON text, read again on each side.
const PROCESSES: &[&str] = &["-c", "2"];

/// Runs `code` with the test app importable; its stdout.
fn client(url: &str, code: &str) -> String {
    let out = python(url, code);
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{out}");
    out
}

#[test]
fn random_doubles_subnormals_and_extremes_come_back_bit_exact() {
    let (_redis, url, _w) = redis_with_spawned(PROCESSES);
    let out = client(
        &url,
        r#"
import random, struct, sys
from tasks import app
rng = random.Random(20)
# Random bit patterns cover every exponent; NaN and infinities have their own test below.
values = []
while len(values) < 4000:
    f = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
    if f == f and abs(f) != float("inf"):
        values.append(f)
values += [rng.random() for _ in range(1000)]
values += [5e-324, -5e-324, 2.2250738585072009e-308, 2.2250738585072014e-308,
           1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1/3, -0.0, 0.0]
got = app.send_task("rust.echo", args=(values,)).get(timeout=120)
bad = [(a.hex(), b.hex() if isinstance(b, float) else repr(b))
       for a, b in zip(values, got) if not (isinstance(b, float) and a.hex() == b.hex())]
print("sent", len(values), "got", len(got))
print("differing", len(bad), bad[:3])
"#,
    );
    assert!(out.contains("sent 5010 got 5010"), "{out}");
    assert!(out.contains("differing 0 []"), "{out}");
}

#[test]
fn integers_past_64_bits_arrive_exactly_or_fail_with_a_type_error() {
    let (_redis, url, _w) = redis_with_spawned(PROCESSES);
    let out = client(
        &url,
        r#"
from tasks import app
values = [2**64, 2**70, -2**63 - 1, 10**30, -10**30, 2**63 - 1, -2**63]
got = app.send_task("rust.echo", args=(values,)).get(timeout=120)
print("exact", got == values and all(type(v) is int for v in got), got)
try:
    app.send_task("rust.sleep_ms", args=(2**70,)).get(timeout=120)
except Exception as e:
    print("u64", type(e).__name__, e)
"#,
    );
    assert!(out.contains("exact True"), "{out}");
    assert!(out.contains("u64 TypeError"), "{out}");
    assert!(
        out.contains("1180591620717411303424"),
        "the TypeError names the value: {out}"
    );
}

#[test]
fn nan_infinity_lone_surrogates_and_deep_arguments_always_get_a_result() {
    let (_redis, url, w) = redis_with_spawned(THREADS);
    let out = client(
        &url,
        r#"
from tasks import app
deep = 0
for _ in range(200):
    deep = [deep]
cases = {
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "surrogate": "\ud800",
    "deep": deep,
}
# Sent first, then awaited: every result is waited for at once.
sent = {name: app.send_task("rust.echo", args=(v,)) for name, v in cases.items()}
for name, r in sent.items():
    try:
        v = r.get(timeout=120)
        print(name, "SUCCESS", v == cases[name])
    except Exception as e:
        print(name, "FAILURE", type(e).__name__, e)
"#,
    );
    assert!(out.contains("deep SUCCESS True"), "{out}");
    for case in ["nan", "inf", "-inf"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{case} ")))
            .unwrap_or_default();
        assert!(line.contains("FAILURE DecodeError"), "{out}");
        assert!(line.contains("NaN or Infinity"), "says why: {out}");
    }
    assert!(
        out.contains("surrogate FAILURE DecodeError") && out.contains("lone surrogate"),
        "{out}"
    );
    let log = w.stderr();
    assert!(
        log.contains("rust.echo"),
        "the refusals name the task: {log}"
    );
}

#[test]
fn keyword_arguments_map_onto_declared_parameters_and_bad_ones_raise_type_error() {
    let (_redis, url, _w) = redis_with_spawned(THREADS);
    let out = client(
        &url,
        r#"
from tasks import app
print("kw", app.send_task("rust.add", kwargs={"x": 2, "y": 3}).get(timeout=120))
print("mixed", app.send_task("rust.add", args=(2,), kwargs={"y": 3}).get(timeout=120))
for name, args, kwargs in [
    ("unexpected", (1,), {"x": 2}),
    ("twice", (2,), {"x": 3}),
    ("unknown", (2,), {"z": 3}),
    ("missing", (), {"y": 3}),
]:
    task = "rust.echo" if name == "unexpected" else "rust.add"
    try:
        print(name, "SUCCESS", app.send_task(task, args=args, kwargs=kwargs).get(timeout=120))
    except TypeError as e:
        print(name, "TypeError", e)
    except Exception as e:
        print(name, "other", type(e).__name__, e)
"#,
    );
    assert!(out.contains("kw 5"), "{out}");
    assert!(out.contains("mixed 5"), "{out}");
    assert!(
        out.contains("unexpected TypeError") && out.contains("unexpected keyword argument 'x'"),
        "{out}"
    );
    assert!(
        out.contains("twice TypeError") && out.contains("multiple values for argument 'x'"),
        "{out}"
    );
    assert!(
        out.contains("unknown TypeError") && out.contains("unexpected keyword argument 'z'"),
        "{out}"
    );
    assert!(
        out.contains("missing TypeError") && out.contains("missing") && out.contains("'x'"),
        "{out}"
    );
}

#[test]
fn every_refused_message_with_a_readable_id_gets_a_failure_and_a_log_line() {
    let (_redis, url, w) = redis_with_spawned(THREADS);
    let out = client(
        &url,
        r#"
from celery import Celery
from tasks import app, url
app.conf.accept_content = ["json", "pickle"]
old = Celery("old", broker=url, backend=url)
old.conf.task_protocol = 1
sent = {
    "zlib": app.send_task("rust.add", args=(2, 3), compression="zlib"),
    "gzip": app.send_task("rust.add", args=(2, 3), compression="gzip"),
    "bzip2": app.send_task("rust.add", args=(2, 3), compression="bzip2"),
    "lzma": app.send_task("rust.add", args=(2, 3), compression="lzma"),
    # 65 MiB of arguments in about 65 KB of zlib: past the 64 MiB cap.
    "bomb": app.send_task("rust.add", args=("0" * (65 << 20), 3), compression="zlib"),
    "pickle": app.send_task("rust.add", args=(2, 3), serializer="pickle"),
    "protocol1": old.send_task("rust.add", args=(2, 3)),
    "unregistered": app.send_task("rust.nope", args=(1,)),
}
for name, r in sent.items():
    print(name, "id", r.id)
for name, r in sent.items():
    try:
        print(name, "SUCCESS", r.get(timeout=120))
    except Exception as e:
        print(name, "FAILURE", type(e).__module__, type(e).__name__, e)
"#,
    );
    assert!(out.contains("zlib SUCCESS 5"), "{out}");
    assert!(out.contains("gzip SUCCESS 5"), "{out}");
    assert!(out.contains("bzip2 SUCCESS 5"), "{out}");
    assert!(
        out.contains("lzma FAILURE kombu.exceptions ContentDisallowed"),
        "{out}"
    );
    assert!(
        out.contains(
            "bomb FAILURE kombu.exceptions ContentDisallowed the zlib-compressed body \
             decompresses to more than 64 MiB"
        ),
        "{out}"
    );
    assert!(
        out.contains("pickle FAILURE kombu.exceptions ContentDisallowed"),
        "{out}"
    );
    assert!(
        out.contains("protocol1 FAILURE celery.exceptions InvalidTaskError"),
        "{out}"
    );
    assert!(
        out.contains("unregistered FAILURE celery.exceptions NotRegistered"),
        "{out}"
    );
    let log = w.stderr();
    for name in ["lzma", "pickle", "protocol1", "unregistered"] {
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} id ")))
            .expect("the client printed the id");
        assert!(
            log.lines().any(|l| l.contains(id)),
            "{name}: the log names task {id}:\n{log}"
        );
    }
    assert!(
        log.contains("Received unregistered task of type 'rust.nope'"),
        "{log}"
    );
}

#[test]
fn rust_errors_arrive_as_python_builtins_and_add_does_not_wrap() {
    let (_redis, url, _w) = redis_with_spawned(THREADS);
    let out = client(
        &url,
        r#"
from tasks import app
try:
    app.send_task("rust.sleep_ms", args=("soon",)).get(timeout=120)
except TypeError as e:
    print("caught TypeError", type(e).__module__)
except Exception as e:
    print("missed", type(e).__module__, type(e).__name__)
try:
    print("add", app.send_task("rust.add", args=(2**63 - 1, 1)).get(timeout=120))
except OverflowError as e:
    print("caught OverflowError", e)
except Exception as e:
    print("missed", type(e).__module__, type(e).__name__, e)
"#,
    );
    assert!(out.contains("caught TypeError builtins"), "{out}");
    assert!(out.contains("caught OverflowError"), "{out}");
    assert!(!out.contains("add -9223372036854775808"), "{out}");
}

#[test]
fn a_revoked_task_skipped_by_the_worker_is_logged_as_celery_logs_it() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let ex = celery::CeleryExecutor::builder(&url)
        .registry(celery::tasks::builtin())
        .connect()
        .unwrap();
    let revoked = ex.submit_fallible(celery::tasks::add, (1, 2)).unwrap();
    assert!(revoked.cancel());
    // Started after the revoke: the REVOKED record makes it skip the task.
    let w = Spawned::start(&url, || {}, THREADS);
    let after = ex.submit_fallible(celery::tasks::add, (2, 3)).unwrap();
    assert_eq!(after.result_timeout(LONG).unwrap(), 5);
    wait_until(LONG, "the worker to log the revoked task", || {
        w.stderr().contains("Discarding revoked task: rust.add[")
    });
}

/// `HLEN unacked`, `ZCARD unacked_index` and `LLEN celery`.
fn unacked_and_queued(redis: &RedisServer) -> [Reply; 3] {
    let mut c = redis.connect();
    [
        c.command(&[b"HLEN", b"unacked"]).unwrap(),
        c.command(&[b"ZCARD", b"unacked_index"]).unwrap(),
        c.command(&[b"LLEN", b"celery"]).unwrap(),
    ]
}

/// The fetch records every message as unacked as it pops it, refused ones
/// too: a refusal must ack it once its FAILURE is stored (and one without
/// a readable id at once), or it is restored after the visibility timeout
/// and refused again, for ever.
#[test]
fn a_refused_message_is_acked_once_its_failure_is_stored() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let mut c = redis.connect();
    // Refused when read: pickle is not accepted (ContentDisallowed).
    let pickled = TaskMessage::new("rust.add", serde_json::json!([2, 3]), "celery");
    let pickled_raw = pickled.to_json().replace(
        r#""content-type":"application/json""#,
        r#""content-type":"application/x-python-serialize""#,
    );
    assert!(pickled_raw.contains("x-python-serialize"), "{pickled_raw}");
    // Refused when its keyword arguments are bound (TypeError).
    let mut kwargs = TaskMessage::new("rust.add", serde_json::json!([2]), "celery");
    kwargs.kwargs = serde_json::json!({"no_such_parameter": 3});
    // In queue order (LPUSH, popped from the other end): one without a
    // readable id first, so that it was handled when the last FAILURE is in.
    for raw in [
        b"not a message".to_vec(),
        pickled_raw.into_bytes(),
        kwargs.to_json().into_bytes(),
    ] {
        c.command(&[b"LPUSH", b"celery", &raw])
            .unwrap()
            .ok()
            .unwrap();
    }
    let worker = ThreadWorker::start(&url, &["celery"], 1);
    let mut stored = |id: &str| {
        let key = format!("celery-task-meta-{id}");
        let got = c.command(&[b"GET", key.as_bytes()]).unwrap().into_bytes();
        got.is_some_and(|r| String::from_utf8_lossy(&r).contains("FAILURE"))
    };
    wait_until(Duration::from_secs(60), "both FAILUREs stored", || {
        stored(&pickled.id) && stored(&kwargs.id)
    });
    // One runner: each refusal (store, then ack) ends before the next fetch;
    // joined, the worker has finished the last one.
    drop(worker);
    assert_eq!(
        unacked_and_queued(&redis),
        [Reply::Integer(0), Reply::Integer(0), Reply::Integer(0)],
        "HLEN unacked, ZCARD unacked_index, LLEN celery after three refusals"
    );
}
