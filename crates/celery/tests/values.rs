//! Values a Python Celery client sends arrive exactly at our worker (issue
//! 20, items 1 and 2), and a Rust error arrives as the Python exception of
//! that name (item 6). Each test drives a real Celery 5 client from the test
//! virtualenv (`CELERY_VENV`) against the `celery-worker` binary; the
//! client's `get(timeout=120)` is the hang guard, never a bound on speed.

mod common;

use common::*;

/// The worker's setup between fork and exec: nothing.
fn plain() {}

/// Our worker on `url`, its stderr collected.
fn worker(url: &str) -> Spawned {
    Spawned::start(url, plain, &["-c", "2", "--pool", "threads"])
}

/// Runs `code` with the test app importable; its stdout.
fn client(url: &str, code: &str) -> String {
    let out = python(url, code);
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{out}");
    out
}

#[test]
fn random_doubles_subnormals_and_extremes_come_back_bit_exact() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = worker(&url);
    let out = client(
        &url,
        r#"
import random, struct, sys
from tasks import app
rng = random.Random(20)
# Random bit patterns cover every exponent; NaN and infinities are item 3's.
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
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = worker(&url);
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
fn rust_errors_arrive_as_python_builtins_and_add_does_not_wrap() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = worker(&url);
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
