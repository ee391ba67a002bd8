//! The shipped `celery-worker` serves only harmless demo tasks: the test
//! tasks that write files or park a thread for ever
//! (`rust.touch`, `rust.block_first_run`, `rust.wait_for`) live in the test
//! worker (`celery-test-worker`, built for tests only) and are refused by
//! the shipped one with Celery's `NotRegistered`, running nothing.

mod common;

use std::process::{Command, Stdio};

use celery::CeleryExecutor;
use common::*;
use future::{FutureError, TaskError};

/// The test tasks, each with an argument that would leave a file behind.
const TEST_TASKS: [&str; 3] = ["rust.touch", "rust.block_first_run", "rust.wait_for"];

#[test]
fn the_shipped_worker_refuses_the_test_tasks_as_not_registered() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _w = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_celery-worker"))
            .args(["--broker", &url, "-c", "2", "--pool", "threads"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the shipped celery-worker"),
    );
    let ex = CeleryExecutor::connect(&url).unwrap();
    for name in TEST_TASKS {
        let path =
            std::env::temp_dir().join(format!("celery-shipped-{}", celery::id::new_task_id()));
        let f = ex
            .submit_named::<_, serde_json::Value>(name, (path.to_string_lossy().into_owned(),))
            .unwrap();
        match f.result_timeout(LONG) {
            Err(FutureError::Task(TaskError::Failed(e))) => {
                assert_eq!(e.type_name(), "NotRegistered", "{name}: {e}")
            }
            other => panic!("{name}: the shipped worker ran it: {other:?}"),
        }
        assert!(!path.exists(), "{name} wrote {}", path.display());
    }
    // The demo tasks are still there.
    let f = ex.submit_named::<_, i64>("rust.add", (2, 3)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
}

#[test]
fn the_shipped_worker_lists_no_test_task() {
    let out = Command::new(env!("CARGO_BIN_EXE_celery-worker"))
        .arg("--list")
        .output()
        .expect("run celery-worker --list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("rust.add"), "{list}");
    for name in TEST_TASKS {
        assert!(
            !list.lines().any(|l| l == name),
            "the shipped worker lists {name}:\n{list}"
        );
    }
}
