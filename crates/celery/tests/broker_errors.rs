//! Error replies from the broker: a Redis that is still loading its data
//! answers every command with `-LOADING`. The worker must wait between
//! attempts instead of re-issuing its fetch in a busy loop.

mod common;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use celery::resp::{read_reply, Reply};
use celery::{Worker, WorkerConfig};
use common::*;

/// A fake Redis that answers the worker's fetch (its script's `EVAL`, or
/// the `BLMOVE` wait, or a `BRPOP`) with `-LOADING` and records when.
struct LoadingRedis {
    port: u16,
    brpops: Arc<Mutex<Vec<Instant>>>,
}

impl LoadingRedis {
    fn start() -> LoadingRedis {
        Self::start_with(FakeState::default())
    }

    /// A fake that is still loading for the first `n` start-up `SADD`s,
    /// then has loaded and has no messages.
    fn loaded_after(n: usize) -> LoadingRedis {
        Self::start_with(FakeState {
            loading_sadds: n,
            loaded: false,
        })
    }

    fn start_with(state: FakeState) -> LoadingRedis {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let brpops = Arc::new(Mutex::new(Vec::new()));
        let seen = brpops.clone();
        let state = Arc::new(Mutex::new(state));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (seen, state) = (seen.clone(), state.clone());
                std::thread::spawn(move || serve(stream, &seen, &state));
            }
        });
        LoadingRedis { port, brpops }
    }

    fn brpops(&self) -> Vec<Instant> {
        self.brpops.lock().unwrap().clone()
    }
}

/// What the fake answers: `-LOADING` to the first `loading_sadds` SADDs;
/// once they are answered (or with none), `loaded` says whether fetches
/// find an empty queue (true) or `-LOADING` (false).
#[derive(Default)]
struct FakeState {
    loading_sadds: usize,
    loaded: bool,
}

const LOADING: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";

/// Answers one client: just enough of Redis for a worker to start.
fn serve(stream: TcpStream, brpops: &Mutex<Vec<Instant>>, state: &Mutex<FakeState>) {
    let mut out = stream.try_clone().unwrap();
    let mut input = BufReader::new(stream);
    while let Ok(Reply::Array(Some(args))) = read_reply(&mut input) {
        let args: Vec<Vec<u8>> = args.into_iter().filter_map(Reply::into_bytes).collect();
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let reply: Vec<u8> = match name.as_str() {
            "BRPOP" | "EVAL" | "BLMOVE" => {
                brpops.lock().unwrap().push(Instant::now());
                if !state.lock().unwrap().loaded {
                    LOADING.to_vec()
                } else if name == "EVAL" {
                    b"$-1\r\n".to_vec() // nothing queued
                } else {
                    // An empty queue's wait: Redis answers nil after it.
                    std::thread::sleep(Duration::from_millis(100));
                    b"$-1\r\n".to_vec()
                }
            }
            "SADD" => {
                let mut state = state.lock().unwrap();
                if state.loading_sadds > 0 {
                    state.loading_sadds -= 1;
                    state.loaded = state.loading_sadds == 0;
                    LOADING.to_vec()
                } else {
                    b":1\r\n".to_vec()
                }
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
    wait_until(LONG, "four fetches", || redis.brpops().len() >= 4);
    let times = redis.brpops();
    // A lower bound only (a loaded machine makes it longer, never shorter):
    // three pauses of at least 100 ms each. A busy loop takes microseconds.
    let spent = times[3] - times[0];
    assert!(
        spent >= Duration::from_millis(300),
        "4 fetches in {spent:?}: the worker fetches again at once on -LOADING"
    );
    stop.store(true, Ordering::SeqCst);
    run.join().unwrap().unwrap();
}

/// A worker started while Redis is loading its data
/// gets `-LOADING` for its start-up `SADD`; it retries (as it does a
/// broker that is not up yet) instead of exiting, and goes on to fetch.
#[test]
fn a_worker_started_while_redis_loads_waits_for_it() {
    let redis = LoadingRedis::loaded_after(3);
    let mut config = WorkerConfig::new(&format!("redis://127.0.0.1:{}/0", redis.port));
    config.concurrency = 1;
    let worker = Worker::new(config, celery::tasks::builtin());
    let stop: Arc<AtomicBool> = worker.stop_flag();
    let run = std::thread::spawn(move || worker.run());
    wait_until(LONG, "the worker to fetch", || {
        if run.is_finished() {
            panic!("the worker stopped instead of retrying");
        }
        !redis.brpops().is_empty()
    });
    stop.store(true, Ordering::SeqCst);
    run.join().unwrap().unwrap();
}
