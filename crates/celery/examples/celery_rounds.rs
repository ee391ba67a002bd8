//! The Celery rows of the benchmark report (`benches`' `report`), in rounds:
//! one private redis-server (persistence off, stopped at the end), our
//! `celery-worker` and, when the virtualenv exists, a Python Celery worker;
//! each round runs, in turn, the raw LPUSH/BRPOP ping-pong (the floor), our
//! client -> our worker (round trip, then tiny-task throughput) and the
//! Python client -> Python worker (`tests/python/bench_peer.py`, both figures).
//!
//! ```sh
//! cargo run --release -p celery --example celery_rounds -- ROUNDS RT TASKS PY_RT PY_TASKS
//! ```
//!
//! Prints one JSON line per figure, with its round: `{"round": 1, "op":
//! "celery/round_trip", "who": "ours", "value": 210.0, "unit": "us"}`
//! (whos: `raw_ping_pong`, `ours`, `python`); each value is the median of the
//! round's round trips, or the round's tasks per second. A Python side that
//! cannot run prints a line `{"note": "..."}` and the rest still runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use celery::bench::{median, raw_ping_pong, round_trip, throughput};
use celery::testing::{python_app_dir, python_worker_command, RedisServer};
use celery::CeleryExecutor;

/// Our worker's queue; the Python worker serves Celery's default `celery` queue, so both
/// run side by side on one server and each takes only its own tasks.
const RUST_QUEUE: &str = "bench-rust";

/// A child process killed and reaped on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn line(round: usize, op: &str, who: &str, value: f64, unit: &str) {
    println!(
        "{}",
        serde_json::json!({"round": round, "op": op, "who": who, "value": value, "unit": unit})
    );
}

fn note(text: &str) {
    println!("{}", serde_json::json!({ "note": text }));
}

fn number(arg: Option<String>, name: &str) -> usize {
    match arg.as_deref().map(str::parse) {
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!(
                "usage: celery_rounds ROUNDS RT TASKS PY_RT PY_TASKS ({name}: a positive number)"
            );
            std::process::exit(2);
        }
    }
}

/// `$CELERY_VENV`, else `target/celery-venv`, if it has a Python.
fn venv() -> Result<PathBuf, String> {
    let venv = std::env::var_os("CELERY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/celery-venv"));
    if venv.join("bin/python").is_file() && venv.join("bin/celery").is_file() {
        Ok(venv)
    } else {
        Err(format!(
            "no Python Celery virtualenv at {} (create it: `scripts/test true`, or set CELERY_VENV)",
            venv.display()
        ))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds = number(args.next(), "ROUNDS");
    let rt = number(args.next(), "RT");
    let tasks = number(args.next(), "TASKS");
    let py_rt = number(args.next(), "PY_RT");
    let py_tasks = number(args.next(), "PY_TASKS");
    match celery::testing::redis_server_binary() {
        Ok(path) if path.is_file() => {}
        Ok(path) => {
            note(&format!(
                "Celery rows not measured: redis-server: {} does not exist (install redis-server, \
                 e.g. `apt-get install redis-server`, or unset REDIS_SERVER)",
                path.display()
            ));
            return;
        }
        Err(e) => {
            note(&format!("Celery rows not measured: {e}"));
            return;
        }
    }
    let redis = RedisServer::start();
    let url = redis.url(0);
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.to_path_buf()))
        .unwrap_or_default();
    let worker_bin = bin_dir.join("celery-worker");
    let _worker = match Command::new(&worker_bin)
        .args([
            "--broker", &url, "-c", "2", "--pool", "threads", "-Q", RUST_QUEUE,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => Reaped(child),
        Err(e) => {
            note(&format!(
                "Celery rows not measured: {}: {e} (build it: cargo build --release -p celery)",
                worker_bin.display()
            ));
            return;
        }
    };
    let ex = CeleryExecutor::builder(&url)
        .queue(RUST_QUEUE)
        .connect()
        .expect("connect to the private redis-server");
    round_trip(&ex, 20).expect("warm up our worker");

    let dir = python_app_dir();
    let python = match venv() {
        Ok(venv) => {
            let worker = python_worker_command(&venv, &url, "ERROR")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match worker {
                Ok(w) => Some((venv, Reaped(w))),
                Err(e) => {
                    note(&format!(
                        "Python Celery not measured: its worker did not start: {e}"
                    ));
                    None
                }
            }
        }
        Err(e) => {
            note(&format!("Python Celery not measured: {e}"));
            None
        }
    };

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for round in 1..=rounds {
        let mut raw = raw_ping_pong(&url, rt).expect("raw ping-pong");
        line(
            round,
            "celery/round_trip",
            "raw_ping_pong",
            us(median(&mut raw)),
            "us",
        );
        let mut ours = round_trip(&ex, rt).expect("our round trips");
        line(
            round,
            "celery/round_trip",
            "ours",
            us(median(&mut ours)),
            "us",
        );
        let rate = throughput(&ex, tasks).expect("our throughput");
        line(round, "celery/throughput", "ours", rate, "tasks/s");
        if let Some((venv, _)) = &python {
            let out = Command::new(venv.join("bin/python"))
                .args(["bench_peer.py", &py_rt.to_string(), &py_tasks.to_string()])
                .current_dir(&dir)
                .env("CELERY_TEST_BROKER", &url)
                .output();
            let (text, err) = match out {
                Ok(o) => (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ),
                Err(e) => {
                    note(&format!("round {round}: bench_peer.py did not run: {e}"));
                    continue;
                }
            };
            let get = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            match (get("round_trip_us"), get("throughput")) {
                (Some(rt_us), Some(rate)) => {
                    line(round, "celery/round_trip", "python", rt_us, "us");
                    line(round, "celery/throughput", "python", rate, "tasks/s");
                }
                _ => {
                    let tail: Vec<&str> = err.lines().rev().take(3).collect();
                    note(&format!(
                        "round {round}: bench_peer.py printed no figures: {text:?} (stderr ends: {:?})",
                        tail
                    ));
                }
            }
        }
    }
    drop(python);
    drop(redis);
}
