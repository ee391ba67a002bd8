//! Protocol 2's `embed` on our worker, driven by a Python client: a chain
//! sends its next task with the result prepended, `link` callbacks run on
//! success, `link_error` errbacks on failure (with the failed task's id,
//! as Celery sends them to a task it cannot call in-process), a failure
//! fails the rest of the chain, and what the worker cannot honour (a group
//! or a chord) fails with a FAILURE that says why, without running the task.

mod common;

use common::*;

#[test]
fn chains_links_and_errbacks_from_a_python_client_run_on_our_worker() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = rust_worker(&url, &["-c", "2", "--pool", "threads"]);
    let marker = std::env::temp_dir().join(format!("celery-canvas-{}", celery::id::new_task_id()));
    let code = r#"
import sys
from celery import chain, group
from tasks import app

def add(*args):
    return app.signature("rust.add", args=args)

print("chain", chain(add(1, 2), add(10), add(100)).apply_async().get(timeout=120))

callback = add(5)
callback.freeze()
r = add(1, 2).apply_async(link=callback)
print("link", r.get(timeout=120), app.AsyncResult(callback.id).get(timeout=120))

errback = app.signature("rust.echo")
errback.freeze()
r = app.signature("rust.fail", args=("boom",)).apply_async(link_error=errback)
try:
    r.get(timeout=120)
except Exception as e:
    print("failed", type(e).__name__, e)
print("errback got the failed task's id", app.AsyncResult(errback.id).get(timeout=120) == r.id)

try:
    chain(app.signature("rust.fail", args=("first",)), add(1)).apply_async().get(timeout=120)
except Exception as e:
    print("chain failed", type(e).__name__, e)

marker = sys.argv[1]
r = app.signature("rust.touch", args=(marker,)).apply_async(link=group(add(1), add(2)))
try:
    r.get(timeout=120)
except Exception as e:
    print("unsupported", type(e).__name__, e)
"#;
    let out = python_with_args(&url, code, &[&marker.to_string_lossy()]);
    let out = String::from_utf8_lossy(&out.stdout);
    println!("{out}");
    assert!(out.contains("chain 113"), "{out}");
    assert!(out.contains("link 3 8"), "{out}");
    assert!(out.contains("failed RustTaskError boom"), "{out}");
    assert!(
        out.contains("errback got the failed task's id True"),
        "{out}"
    );
    assert!(out.contains("chain failed RustTaskError first"), "{out}");
    assert!(out.contains("unsupported NotImplementedError"), "{out}");
    assert!(out.contains("group"), "the failure says why: {out}");
    assert!(
        !marker.exists(),
        "a task the worker cannot honour must not run"
    );
}
