//! Interoperation with real Celery 5 (the pinned virtualenv of
//! `scripts/test`) over a private redis-server, both ways.

mod common;

use celery::{tasks, CeleryExecutor};
use common::*;
use future::{FutureError, TaskError};

#[test]
fn a_python_client_runs_tasks_on_our_worker_and_gets_results_and_errors() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = rust_worker(&url, &["-c", "2"]);
    let out = python(
        &url,
        r#"
from tasks import app
r = app.send_task("rust.add", args=(2, 3))
print("add", r.get(timeout=120))
print("id", r.id)
try:
    app.send_task("rust.panic", args=("the sky fell",)).get(timeout=120)
except Exception as e:
    print("panic", type(e).__name__, e)
try:
    app.send_task("rust.fail", args=("bad input",)).get(timeout=120)
except Exception as e:
    print("fail", type(e).__name__, e)
"#,
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("add 5"), "{out}");
    // It read a record with our worker's figures in it (an extra key).
    let id = out.lines().find_map(|l| l.strip_prefix("id ")).expect(&out);
    let record = result_of(&redis, id).expect("the record of rust.add");
    assert!(
        record[celery::task_figures::KEY]["pid"].is_u64(),
        "{record}"
    );
    assert!(out.contains("panic TaskPanicked the sky fell"), "{out}");
    assert!(out.contains("fail RustTaskError bad input"), "{out}");
}

#[test]
fn our_executor_runs_tasks_on_a_python_worker() {
    let redis = RedisServer::start();
    let (_py, ex, _sum) = python_worker_and_a_sum(&redis.url(0));
    let e = ex
        .submit_named::<_, ()>("tasks.fail", ("no such thing",))
        .unwrap();
    match e.result_timeout(LONG) {
        Err(FutureError::Task(TaskError::Failed(err))) => {
            assert_eq!(err.type_name(), "ValueError");
            assert_eq!(err.to_string(), "ValueError: no such thing");
        }
        other => panic!("expected ValueError, got {other:?}"),
    }
}

#[test]
fn python_and_rust_workers_on_their_own_queues_each_take_only_their_tasks() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _py = python_worker(&url, "py");
    let _rs = rust_worker(&url, &["-Q", "rs", "-c", "2", "--pool", "threads"]);
    let to_py = CeleryExecutor::builder(&url).queue("py").connect().unwrap();
    let to_rs = CeleryExecutor::builder(&url)
        .queue("rs")
        .registry(tasks::builtin())
        .connect()
        .unwrap();
    let py: Vec<_> = (0..10i64)
        .map(|i| to_py.submit_named::<_, i64>("tasks.add", (i, 100)).unwrap())
        .collect();
    let rs: Vec<_> = (0..10i64)
        .map(|i| to_rs.submit(tasks::pid, ()).map(|f| (i, f)).unwrap())
        .collect();
    for (i, f) in py.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 100);
    }
    for (_, f) in &rs {
        assert_eq!(f.result_timeout(LONG).unwrap(), _rs.pid() as u32);
    }
}
