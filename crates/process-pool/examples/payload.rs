//! Times round trips of a 16 MiB byte buffer through one worker (argument
//! in, result out; a profiling aid:
//! `cargo run --release -p process-pool --example payload`). With the
//! argument `vec`, the buffer is a plain `Vec<u8>` instead of a `ByteBuf`.

use std::time::Instant;

use serde::{de::DeserializeOwned, Serialize};

fn echo(v: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    v
}

fn echo_vec(v: Vec<u8>) -> Vec<u8> {
    v
}

const SIZE: usize = 16 << 20;

fn main() {
    process_pool::start_fork_server();
    if std::env::args().nth(1).as_deref() == Some("vec") {
        time_round_trips("Vec<u8>", echo_vec, vec![7u8; SIZE], 20);
    } else {
        let data = serde_bytes::ByteBuf::from(vec![7u8; SIZE]);
        time_round_trips("ByteBuf", echo, data, 60);
    }
}

/// Five warm-up round trips of `data` through `echo`, then `n` timed ones.
fn time_round_trips<B>(label: &str, echo: fn(B) -> B, data: B, n: u32)
where
    B: Serialize + DeserializeOwned + Clone + AsRef<[u8]> + Send + 'static,
{
    let pool = process_pool::ProcessPoolExecutor::new(1).expect("pool");
    let round_trip = || {
        pool.submit(echo, data.clone())
            .expect("submit")
            .result()
            .expect("result")
    };
    for _ in 0..5 {
        round_trip();
    }
    let start = Instant::now();
    for _ in 0..n {
        assert_eq!(round_trip().as_ref().len(), SIZE);
    }
    let each = start.elapsed() / n;
    let gib_s = 2.0 * SIZE as f64 / each.as_secs_f64() / (1u64 << 30) as f64;
    println!("16 MiB {label} round trip: {each:?} ({gib_s:.2} GiB/s both ways)");
}
