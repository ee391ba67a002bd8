//! Error replies from the broker: a Redis that is still loading its data
//! answers every command with `-LOADING`. The worker must wait between
//! attempts instead of re-issuing `BRPOP` in a busy loop.

mod common;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use celery::resp::{read_reply, Reply};
use celery::{Worker, WorkerConfig};
use common::*;

/// A fake Redis that answers `BRPOP` with `-LOADING` and records when.
struct LoadingRedis {
    port: u16,
    brpops: Arc<Mutex<Vec<Instant>>>,
}

impl LoadingRedis {
    fn start() -> LoadingRedis {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let brpops = Arc::new(Mutex::new(Vec::new()));
        let seen = brpops.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        LoadingRedis { port, brpops }
    }

    fn brpops(&self) -> Vec<Instant> {
        self.brpops.lock().unwrap().clone()
    }
}

/// Answers one client: just enough of Redis for a worker to start.
fn serve(stream: TcpStream, brpops: &Mutex<Vec<Instant>>) {
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    while let Ok(Reply::Array(Some(args))) = read_reply(&mut input) {
        let args: Vec<Vec<u8>> = args.into_iter().filter_map(Reply::into_bytes).collect();
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let reply: Vec<u8> = match name.as_str() {
            "BRPOP" => {
                brpops.lock().unwrap().push(Instant::now());
                b"-LOADING Redis is loading the dataset in memory\r\n".to_vec()
            }
            "SUBSCRIBE" => {
                let ch = &args[1];
                let mut r = format!("*3\r\n$9\r\nsubscribe\r\n${}\r\n", ch.len()).into_bytes();
                r.extend_from_slice(ch);
                r.extend_from_slice(b"\r\n:1\r\n");
                r
            }
            // The restore lock: "another worker is restoring".
            "SET" => b"$-1\r\n".to_vec(),
            _ => b":1\r\n".to_vec(),
        };
        if out.write_all(&reply).is_err() {
            return;
        }
    }
}

#[test]
fn a_loading_broker_is_retried_with_a_pause_not_in_a_busy_loop() {
    let redis = LoadingRedis::start();
    let mut config = WorkerConfig::new(&format!("redis://127.0.0.1:{}/0", redis.port));
    config.concurrency = 1;
    let worker = Worker::new(config, celery::tasks::builtin());
    let stop: Arc<AtomicBool> = worker.stop_flag();
    let run = std::thread::spawn(move || worker.run());
    wait_until(LONG, "four BRPOPs", || redis.brpops().len() >= 4);
    let times = redis.brpops();
    // A lower bound only (a loaded machine makes it longer, never shorter):
    // three pauses of at least 100 ms each. A busy loop takes microseconds.
    let spent = times[3] - times[0];
    assert!(
        spent >= Duration::from_millis(300),
        "4 BRPOPs in {spent:?}: the worker re-issues BRPOP at once on -LOADING"
    );
    stop.store(true, Ordering::SeqCst);
    run.join().unwrap().unwrap();
}
