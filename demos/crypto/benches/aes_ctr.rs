//! AES-128-CTR throughput: our hand-built mode (`ours`) against the RustCrypto
//! `ctr` crate (`ctr_crate`) over the same `aes` block cipher, on a 1 MiB buffer,
//! one core. Target: ours >= 0.9x ctr_crate.
//!
//! Run: `cargo bench -p crypto --bench aes_ctr` (settings and round order:
//! `benches/support/harness.rs`).

#[path = "../../../benches/support/harness.rs"]
mod harness;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ctr::cipher::{KeyIvInit, StreamCipher};

use crypto::ctr::Aes128Ctr;

const LEN: usize = 1 << 20;
const KEY: [u8; 16] = [0x2b; 16];
const IV: [u8; 16] = [0xf0; 16];

fn aes_ctr(c: &mut Criterion) {
    let Some(mut group) = harness::group(
        c,
        "crypto/aes_ctr",
        harness::Settings::from_env(),
        Throughput::Bytes(LEN as u64),
    ) else {
        return;
    };
    let mut ours_buf = vec![0u8; LEN];
    let mut peer_buf = vec![0u8; LEN];

    // Key expansion is inside the loop for both: it is ~100 ns against ~200 us of data.
    let entries: Vec<harness::Entry<'_>> = vec![
        (
            "ours",
            Box::new(|b| {
                b.iter(|| {
                    Aes128Ctr::new(&KEY, &IV).apply_keystream(black_box(&mut ours_buf));
                })
            }),
        ),
        (
            "ctr_crate",
            Box::new(|b| {
                b.iter(|| {
                    ctr::Ctr128BE::<aes::Aes128>::new(&KEY.into(), &IV.into())
                        .apply_keystream(black_box(&mut peer_buf));
                })
            }),
        ),
    ];
    harness::run_in_round_order(&mut group, entries);
    group.finish();
}

criterion_group!(benches, aes_ctr);
criterion_main!(benches);
