//! The crypto jobs on Celery workers over a private redis-server: the same
//! digests as the process pool, from `crypto-futures --executor celery`, and
//! from a Python Celery client calling `crypto.aes_job` on our worker.

use std::process::Command;

use celery::testing::{celery_venv, RedisServer};
use crypto::cli::{parse_futures_args, run_futures};

#[ctor::ctor]
unsafe fn start_fork_server_before_main() {
    process_pool::start_fork_server();
}

fn digests(executor: &str, broker: &str) -> Vec<(usize, u64)> {
    std::env::set_var(
        "CRYPTO_CELERY_WORKER",
        env!("CARGO_BIN_EXE_crypto-celery-worker"),
    );
    let args = parse_futures_args([
        "crypto-futures",
        "--executor",
        executor,
        "--broker",
        broker,
        "--workers",
        "2",
        "--jobs",
        "4",
        "--size",
        "64K",
    ])
    .unwrap();
    let mut out = Vec::new();
    let report = run_futures(&args, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("2 workers, elapsed time:"), "{text}");
    let mut d: Vec<(usize, u64)> = report.results.iter().map(|r| (r.index, r.digest)).collect();
    d.sort_unstable();
    d
}

#[test]
fn crypto_futures_on_two_local_celery_workers_matches_the_process_pool() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let on_celery = digests("celery", &url);
    assert_eq!(on_celery.len(), 4);
    assert_eq!(on_celery, digests("procs", &url));
}

#[test]
fn executor_celery_without_a_broker_is_a_usage_error() {
    let err = parse_futures_args(["crypto-futures", "--executor", "celery"]).unwrap_err();
    assert!(err.to_string().contains("--broker"), "{err}");
}

/// A child killed and reaped on drop, panic or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_python_client_runs_crypto_aes_job_on_our_worker() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    // Before the worker starts: a missing venv must not leave a worker behind.
    let python = celery_venv().join("bin/python");
    let _worker = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_crypto-celery-worker"))
            .args(["--broker", &url, "-c", "1"])
            .spawn()
            .unwrap(),
    );
    let expected = crypto::jobs::run_job(crypto::jobs::JobSpec {
        index: 0,
        size: 65536,
        seed: 7,
    })
    .unwrap();
    let code = format!(
        r#"
from celery import Celery
app = Celery("client", broker="{url}", backend="{url}")
r = app.send_task("crypto.aes_job", args=({{"index": 0, "size": 65536, "seed": 7}},))
print("digest", r.get(timeout=120)["Ok"]["digest"])
"#
    );
    let out = Command::new(python).args(["-c", &code]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("digest {}", expected.digest)),
        "{text}"
    );
}

/// The shipped crypto worker serves the crypto jobs and
/// harmless demo tasks, never the tests' tasks that write files or park a
/// thread for ever.
#[test]
fn the_crypto_worker_lists_no_test_task() {
    let out = Command::new(env!("CARGO_BIN_EXE_crypto-celery-worker"))
        .arg("--list")
        .output()
        .expect("run crypto-celery-worker --list");
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.lines().any(|l| l == "crypto.aes_job"), "{list}");
    for name in ["rust.touch", "rust.block_first_run", "rust.wait_for"] {
        assert!(!list.lines().any(|l| l == name), "it lists {name}:\n{list}");
    }
}
