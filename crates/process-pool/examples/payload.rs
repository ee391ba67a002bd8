//! Times round trips of a 16 MiB byte buffer through one worker (argument
//! in, result out; a profiling aid:
//! `cargo run --release -p process-pool --example payload`). With the
//! argument `vec`, the buffer is a plain `Vec<u8>` instead of a `ByteBuf`.

use std::time::Instant;

fn echo(v: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    v
}

fn echo_vec(v: Vec<u8>) -> Vec<u8> {
    v
}

fn main() {
    process_pool::start_fork_server();
    if std::env::args().nth(1).as_deref() == Some("vec") {
        return vec_main();
    }
    let pool = process_pool::ProcessPoolExecutor::new(1).expect("pool");
    let size = 16 << 20;
    let data = serde_bytes::ByteBuf::from(vec![7u8; size]);
    for _ in 0..5 {
        pool.submit(echo, data.clone())
            .expect("submit")
            .result()
            .expect("result");
    }
    let n = 60u32;
    let start = Instant::now();
    for _ in 0..n {
        let back = pool
            .submit(echo, data.clone())
            .expect("submit")
            .result()
            .expect("result");
        assert_eq!(back.len(), size);
    }
    let each = start.elapsed() / n;
    let gib_s = 2.0 * size as f64 / each.as_secs_f64() / (1u64 << 30) as f64;
    println!("16 MiB round trip: {each:?} ({gib_s:.2} GiB/s both ways)");
}

/// The same with `Vec<u8>`.
fn vec_main() {
    let pool = process_pool::ProcessPoolExecutor::new(1).expect("pool");
    let size = 16 << 20;
    let data = vec![7u8; size];
    for _ in 0..5 {
        pool.submit(echo_vec, data.clone())
            .expect("submit")
            .result()
            .expect("result");
    }
    let n = 20u32;
    let start = Instant::now();
    for _ in 0..n {
        let back = pool
            .submit(echo_vec, data.clone())
            .expect("submit")
            .result()
            .expect("result");
        assert_eq!(back.len(), size);
    }
    let each = start.elapsed() / n;
    let gib_s = 2.0 * size as f64 / each.as_secs_f64() / (1u64 << 30) as f64;
    println!("16 MiB Vec<u8> round trip: {each:?} ({gib_s:.2} GiB/s both ways)");
}
