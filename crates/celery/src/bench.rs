//! Measurements for the benchmark report: our client to our worker, and the
//! floor, a raw LPUSH/BRPOP ping-pong between two connections.
//!
//! The report (`benches/`) calls these with a running Redis and worker;
//! `examples/celery_bench.rs` runs them alone, with Python Celery beside.

use std::time::{Duration, Instant};

use crate::error::CeleryError;
use crate::executor::CeleryExecutor;
use crate::resp::Connection;
use crate::url::RedisUrl;

/// `rounds` LPUSH/BRPOP ping-pongs between two threads with one connection
/// each (the floor a task round trip cannot beat). Returns each round's time.
pub fn raw_ping_pong(url: &str, rounds: usize) -> Result<Vec<Duration>, CeleryError> {
    let url = RedisUrl::parse(url)?;
    let key = format!("bench-ping-{}", crate::id::new_task_id());
    let (ping, pong) = (format!("{key}:ping"), format!("{key}:pong"));
    let mut echo = Connection::open(&url)?;
    let mut me = Connection::open(&url)?;
    let (p2, q2) = (ping.clone(), pong.clone());
    let echoer = std::thread::spawn(move || -> Result<(), CeleryError> {
        for _ in 0..rounds {
            echo.command(&[b"BRPOP", p2.as_bytes(), b"0"])?.ok()?;
            echo.command(&[b"LPUSH", q2.as_bytes(), b"x"])?.ok()?;
        }
        Ok(())
    });
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        me.command(&[b"LPUSH", ping.as_bytes(), b"x"])?.ok()?;
        me.command(&[b"BRPOP", pong.as_bytes(), b"0"])?.ok()?;
        times.push(t.elapsed());
    }
    echoer.join().expect("echo thread")?;
    Ok(times)
}

/// `rounds` sequential `rust.add` round trips (submit, wait for the result)
/// through `executor` to whatever worker serves its queue.
pub fn round_trip(executor: &CeleryExecutor, rounds: usize) -> Result<Vec<Duration>, CeleryError> {
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds as i64 {
        let t = Instant::now();
        let f = executor.submit_named::<_, i64>("rust.add", (i, 1))?;
        let v = f
            .result_timeout(Duration::from_secs(120))
            .map_err(|e| CeleryError::Protocol(e.to_string()))?;
        assert_eq!(v, i + 1);
        times.push(t.elapsed());
    }
    Ok(times)
}

/// Submits `n` tiny `rust.add` tasks at once and waits for every result;
/// returns tasks per second.
pub fn throughput(executor: &CeleryExecutor, n: usize) -> Result<f64, CeleryError> {
    let t = Instant::now();
    let futures = (0..n as i64)
        .map(|i| executor.submit_named::<_, i64>("rust.add", (i, 1)))
        .collect::<Result<Vec<_>, _>>()?;
    for f in &futures {
        f.result_timeout(Duration::from_secs(300))
            .map_err(|e| CeleryError::Protocol(e.to_string()))?;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// The median of `times`.
pub fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
