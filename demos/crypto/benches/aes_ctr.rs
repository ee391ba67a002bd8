//! AES-128-CTR throughput: our hand-built mode (`ours`) against the RustCrypto
//! `ctr` crate (`ctr_crate`) over the same `aes` block cipher, on a 1 MiB buffer,
//! one core. Target: ours >= 0.9x ctr_crate.
//!
//! Run: `cargo bench -p crypto --bench aes_ctr`

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ctr::cipher::{KeyIvInit, StreamCipher};

use crypto::ctr::Aes128Ctr;

const LEN: usize = 1 << 20;
const KEY: [u8; 16] = [0x2b; 16];
const IV: [u8; 16] = [0xf0; 16];

fn aes_ctr(c: &mut Criterion) {
    let mut group = c.benchmark_group("crypto/aes_ctr");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(3));
    let mut buf = vec![0u8; LEN];

    // Key expansion is inside the loop for both: it is ~100 ns against ~200 us of data.
    group.bench_function("ours", |b| {
        b.iter(|| {
            Aes128Ctr::new(&KEY, &IV).apply_keystream(black_box(&mut buf));
        })
    });
    group.bench_function("ctr_crate", |b| {
        b.iter(|| {
            ctr::Ctr128BE::<aes::Aes128>::new(&KEY.into(), &IV.into())
                .apply_keystream(black_box(&mut buf));
        })
    });
    group.finish();
}

criterion_group!(benches, aes_ctr);
criterion_main!(benches);
