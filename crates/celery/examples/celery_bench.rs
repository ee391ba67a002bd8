//! The Celery rows of the benchmark report, alone: on one private
//! redis-server, interleaved rounds of (1) the raw LPUSH/BRPOP ping-pong,
//! (2) our client -> our `celery-worker`, (3) Python Celery client -> Python
//! Celery worker (if the virtualenv of `scripts/test` exists).
//!
//! ```sh
//! scripts/test cargo run --release -p celery --example celery_bench -- [ROUNDS] [TASKS]
//! ```

use std::process::{Command, Stdio};
use std::time::Duration;

use celery::bench::{median, raw_ping_pong, round_trip, throughput};
use celery::testing::{python_app_dir, python_worker_command, RedisServer};
use celery::CeleryExecutor;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(300, |a| a.parse().expect("ROUNDS is a number"));
    let tasks: usize = args
        .next()
        .map_or(2000, |a| a.parse().expect("TASKS is a number"));
    let redis = RedisServer::start();
    let url = redis.url(0);
    let worker_bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("celery-worker");
    let mut worker = Command::new(&worker_bin)
        .args(["--broker", &url, "-c", "2", "--pool", "threads"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it: cargo build --release -p celery)",
                worker_bin.display()
            )
        });
    let ex = CeleryExecutor::connect(&url).expect("connect");
    round_trip(&ex, 20).expect("warm up");
    let mut raw = Vec::new();
    let mut ours = Vec::new();
    let mut ours_tput = Vec::new();
    for _ in 0..3 {
        raw.extend(raw_ping_pong(&url, rounds).unwrap());
        ours.extend(round_trip(&ex, rounds).unwrap());
        ours_tput.push(throughput(&ex, tasks).unwrap());
    }
    let _ = worker.kill();
    let _ = worker.wait();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    ours_tput.sort_by(f64::total_cmp);
    println!(
        "raw LPUSH/BRPOP ping-pong          median {:8.0} us",
        us(median(&mut raw))
    );
    println!(
        "our client -> our worker (threads) median {:8.0} us   throughput {:8.0} tasks/s",
        us(median(&mut ours)),
        ours_tput[1]
    );
    match std::env::var_os("CELERY_VENV") {
        Some(venv) => {
            let dir = python_app_dir();
            let mut py_worker = python_worker_command(std::path::Path::new(&venv), &url, "ERROR")
                .stderr(Stdio::null())
                .spawn()
                .expect("python worker");
            let out = Command::new(std::path::Path::new(&venv).join("bin/python"))
                .args(["bench_peer.py", &rounds.to_string(), &tasks.to_string()])
                .current_dir(&dir)
                .env("CELERY_TEST_BROKER", &url)
                .output()
                .expect("python client");
            let _ = py_worker.kill();
            let _ = py_worker.wait();
            let text = String::from_utf8_lossy(&out.stdout);
            let get = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            };
            println!(
                "Python client -> Python worker     median {:8.0} us   throughput {:8.0} tasks/s (solo pool)",
                get("round_trip_us"),
                get("throughput")
            );
        }
        None => println!("Python Celery: skipped, no CELERY_VENV (run through scripts/test)"),
    }
}
