//! Our SHA-256 against the RustCrypto `sha2` crate, on random messages of many
//! lengths fed in random pieces (the NIST vectors are unit tests in `src/sha256.rs`).

use crypto::jobs::SplitMix64;
use crypto::sha256::{hex, Sha256};

use sha2::Digest as _;

fn reference(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

fn random_bytes(rng: &mut SplitMix64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rng.fill(&mut data);
    data
}

#[test]
fn every_length_up_to_three_blocks_and_a_bit() {
    let mut rng = SplitMix64::new(1804);
    for len in 0..=200 {
        let data = random_bytes(&mut rng, len);
        assert_eq!(Sha256::digest(&data), reference(&data), "length {len}");
    }
}

#[test]
fn random_lengths_in_random_pieces() {
    let mut rng = SplitMix64::new(2015);
    for case in 0..300 {
        let len = rng.below(20_000) as usize;
        let data = random_bytes(&mut rng, len);
        let mut hasher = Sha256::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let piece = (rng.below(300) as usize).min(rest.len());
            hasher.update(&rest[..piece]);
            rest = &rest[piece..];
        }
        assert_eq!(
            hasher.finalize(),
            reference(&data),
            "case {case}, length {len}"
        );
    }
}

#[test]
fn a_large_message() {
    let mut rng = SplitMix64::new(7);
    let data = random_bytes(&mut rng, 3 << 20);
    assert_eq!(hex(&Sha256::digest(&data)), hex(&reference(&data)));
}
