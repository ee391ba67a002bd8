//! `crypto-futures --trace FILE` on every executor it offers (sequential,
//! threads, processes, Celery over a private redis-server): the file is
//! valid trace-event JSON (checked by `future`'s `trace_format`) with one
//! run per job, on the executor's lanes.

#[path = "../../../crates/future/tests/trace_format/mod.rs"]
mod trace_format;

use celery::testing::RedisServer;
use crypto::cli::{parse_futures_args, run_futures};

// SAFETY (ctor's contract): this runs before main, while the process is
// single-threaded; it only forks the process pool's fork server.
#[ctor::ctor]
unsafe fn start_fork_server_before_main() {
    process_pool::start_fork_server();
}

#[test]
fn crypto_futures_traces_every_executor() {
    std::env::set_var(
        "CRYPTO_CELERY_WORKER",
        env!("CARGO_BIN_EXE_crypto-celery-worker"),
    );
    let redis = RedisServer::start();
    let url = redis.url(0);
    let dir = std::env::temp_dir().join(format!("crypto-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (executor, lane) in [
        ("seq", "thread "),
        ("threads", "thread crypto-"),
        ("procs", "process "),
        ("celery", "celery celery "),
    ] {
        let file = dir.join(format!("{executor}.json"));
        let mut argv = vec![
            "crypto-futures",
            "--executor",
            executor,
            "--jobs",
            "4",
            "--size",
            "64K",
        ];
        if executor != "seq" {
            argv.extend(["--workers", "2"]);
        }
        if executor == "celery" {
            argv.extend(["--broker", &url]);
        }
        argv.extend(["--trace", file.to_str().unwrap()]);
        let args = parse_futures_args(argv).unwrap();
        let report = run_futures(&args, &mut Vec::new()).unwrap();
        assert_eq!(report.results.len(), 4, "{executor}");
        let text = std::fs::read_to_string(&file).unwrap();
        let summary = trace_format::check(&text).unwrap_or_else(|e| panic!("{executor}: {e}"));
        assert_eq!(summary.runs, 4, "{executor}");
        assert!(
            summary.lanes.values().any(|l| l.starts_with(lane)),
            "{executor}: no lane starts with {lane:?}: {:?}",
            summary.lanes
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
