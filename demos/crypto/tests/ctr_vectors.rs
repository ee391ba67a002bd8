//! Our AES-128-CTR against the standard's test vectors and against the `ctr` crate.

use crypto::ctr::{Aes128Ctr, CtrStream};
use crypto::jobs::SplitMix64;

use ::ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

type ReferenceCtr = ::ctr::Ctr128BE<aes::Aes128>;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn arr16(v: &[u8]) -> [u8; 16] {
    v.try_into().unwrap()
}

// NIST SP 800-38A, Appendix F.5.1 (CTR-AES128.Encrypt) and F.5.2 (CTR-AES128.Decrypt).
const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const INIT_COUNTER: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const PLAINTEXT: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                         30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const CIPHERTEXT: &str = "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
                          5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee";

fn nist() -> Aes128Ctr {
    Aes128Ctr::new(&arr16(&hex(KEY)), &arr16(&hex(INIT_COUNTER)))
}

#[test]
fn nist_f_5_1_encrypt() {
    let mut data = hex(PLAINTEXT);
    nist().apply_keystream(&mut data);
    assert_eq!(data, hex(CIPHERTEXT));
}

#[test]
fn nist_f_5_2_decrypt() {
    let mut data = hex(CIPHERTEXT);
    nist().apply_keystream(&mut data);
    assert_eq!(data, hex(PLAINTEXT));
}

#[test]
fn nist_vectors_block_by_block_and_at_odd_offsets() {
    let plain = hex(PLAINTEXT);
    let cipher = hex(CIPHERTEXT);
    // The counter passes 0x...ff -> 0x...00 in the low byte between blocks 0 and 1: a
    // carry that a wrong counter increment gets wrong.
    for cut in 0..=plain.len() {
        let mut data = plain.clone();
        let mut stream = CtrStream::new(nist());
        let (a, b) = data.split_at_mut(cut);
        stream.apply_keystream(a);
        stream.apply_keystream(b);
        assert_eq!(data, cipher, "cut at {cut}");
    }
}

#[test]
fn agrees_with_the_ctr_crate_on_random_inputs() {
    let mut rng = SplitMix64::new(0x5eed);
    for round in 0..300 {
        let mut key = [0u8; 16];
        let mut iv = [0u8; 16];
        rng.fill(&mut key);
        rng.fill(&mut iv);
        if round % 10 == 0 {
            iv[8..].fill(0xff); // counters that carry into the high half, or wrap
        }
        let len = match round {
            0 => 0,
            1..=50 => rng.below(64) as usize,
            _ => rng.below(5000) as usize,
        };
        let mut ours = vec![0u8; len];
        rng.fill(&mut ours);
        let mut theirs = ours.clone();

        Aes128Ctr::new(&key, &iv).apply_keystream(&mut ours);
        ReferenceCtr::new(&key.into(), &iv.into()).apply_keystream(&mut theirs);
        assert_eq!(ours, theirs, "round {round}, length {len}");
    }
}

#[test]
fn agrees_with_the_ctr_crate_when_seeking() {
    let mut rng = SplitMix64::new(77);
    for round in 0..100 {
        let mut key = [0u8; 16];
        rng.fill(&mut key);
        let iv = [0xffu8; 16]; // wraps after the first block
        let offset = rng.below(3000);
        let len = rng.below(2000) as usize;
        let mut ours = vec![0u8; len];
        rng.fill(&mut ours);
        let mut theirs = ours.clone();

        Aes128Ctr::new(&key, &iv).apply_keystream_at(offset, &mut ours);
        let mut reference = ReferenceCtr::new(&key.into(), &iv.into());
        reference.seek(offset);
        reference.apply_keystream(&mut theirs);
        assert_eq!(ours, theirs, "round {round}, offset {offset}, length {len}");
    }
}

#[test]
fn round_trip_of_random_lengths() {
    let mut rng = SplitMix64::new(3);
    for _ in 0..100 {
        let len = rng.below(3000) as usize;
        let mut plain = vec![0u8; len];
        rng.fill(&mut plain);
        let ctr = Aes128Ctr::new(&[0x42; 16], &[0x17; 16]);
        let mut data = plain.clone();
        ctr.apply_keystream(&mut data);
        if len >= 16 {
            assert_ne!(data, plain, "encryption changed nothing");
        }
        ctr.apply_keystream(&mut data);
        assert_eq!(data, plain);
    }
}
