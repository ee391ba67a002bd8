//! AES-128 in counter (CTR) mode, built by hand over the `aes` crate's block cipher.
//!
//! # The construction (NIST SP 800-38A, section 6.5)
//!
//! CTR turns a block cipher into a stream cipher. Block number `i` of the stream
//! is encrypted with the *counter block* `T_i = IV + i (mod 2^128)`, read as one
//! 128-bit big-endian integer:
//!
//! ```text
//!   keystream_i = AES_k(T_i)          ciphertext_i = plaintext_i XOR keystream_i
//! ```
//!
//! Decryption is the same operation (XOR twice is the identity), the last block
//! may be short (we use only as many keystream bytes as there is data), and any
//! byte of the stream can be reached directly: byte `n` lives in block `n / 16`
//! at position `n % 16`. That random access is what [`Aes128Ctr::apply_keystream_at`]
//! offers, and what lets a job encrypt a large buffer chunk by chunk
//! ([`CtrStream`] keeps the position for you).
//!
//! # Keeping AES-NI busy
//!
//! One AES-NI round instruction has a latency of several cycles but the CPU can
//! start a new one every cycle, so one block at a time leaves the pipeline mostly
//! idle. The `aes` crate's backends therefore encrypt a group of independent
//! blocks in an interleaved loop (their `ParBlocksSize`: 8 blocks with AES-NI,
//! 64 with VAES-512, which `aes` 0.9 picks when the CPU has it). CTR blocks *are*
//! independent: we fill a group with consecutive counter blocks, have the backend
//! encrypt the group in place, and XOR the keystream blocks into the data as
//! `u128`s. The group size is the backend's, read from its type, so the loop fits
//! whichever backend the CPU gets.
//!
//! We reach the backend through the block cipher's "rank-2 closure" interface
//! ([`BlockCipherEncrypt::encrypt_with_backend`] with our
//! [`BlockCipherEncClosure`]): the crate checks the CPU features once, then runs
//! our whole loop inside a function compiled with the backend's
//! `target_feature`s, so the group routine inlines into it. The simpler
//! `encrypt_blocks(&mut [Block])` per batch works too, but pays the feature
//! check and a call per batch: with `aes` 0.8 it measured 0.62x of the `ctr`
//! crate with 8-block batches and 0.84-0.88x with 32-64, against 0.97x for this
//! loop (docs/crypto.md has the table and the figures on `aes` 0.9).
//!
//! The counter wraps modulo 2^128 like the `ctr` crate's `Ctr128BE` flavour, so
//! both produce the same stream for every IV (tests/ctr_vectors.rs checks this).

use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    Array, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser,
    KeyInit, ParBlocks,
};
use aes::Aes128;

/// The AES block size in bytes.
pub const BLOCK_LEN: usize = 16;

/// One AES block as the `aes` crate wants it.
type Block = Array<u8, U16>;

/// AES-128-CTR with a fixed key and initial counter block.
///
/// The value itself is stateless: [`apply_keystream_at`](Self::apply_keystream_at)
/// takes the stream position explicitly, so one `Aes128Ctr` can be shared by
/// reference between threads. [`CtrStream`] adds a running position.
///
/// ```
/// use crypto::ctr::Aes128Ctr;
///
/// let ctr = Aes128Ctr::new(&[7; 16], &[0; 16]);
/// let mut data = b"attack at dawn, or a little later".to_vec();
/// ctr.apply_keystream(&mut data); // encrypt
/// assert_ne!(&data[..], b"attack at dawn, or a little later");
/// ctr.apply_keystream(&mut data); // decrypt: the same XOR again
/// assert_eq!(&data[..], b"attack at dawn, or a little later");
/// ```
#[derive(Clone)]
pub struct Aes128Ctr {
    cipher: Aes128,
    /// The initial counter block `T_0` as a big-endian integer.
    iv: u128,
}

impl Aes128Ctr {
    /// Expands `key` and remembers the initial counter block `iv`.
    pub fn new(key: &[u8; 16], iv: &[u8; 16]) -> Self {
        Aes128Ctr {
            cipher: Aes128::new(key.into()),
            iv: u128::from_be_bytes(*iv),
        }
    }

    /// XORs the keystream from the start of the stream into `data`
    /// (encrypts plaintext, decrypts ciphertext).
    pub fn apply_keystream(&self, data: &mut [u8]) {
        self.apply_keystream_at(0, data);
    }

    /// XORs the keystream bytes `offset .. offset + data.len()` into `data`.
    ///
    /// Encrypting a buffer in pieces at their offsets gives exactly the bytes
    /// that encrypting it in one call gives.
    pub fn apply_keystream_at(&self, offset: u64, data: &mut [u8]) {
        let mut block_index = offset / BLOCK_LEN as u64;
        let skip = (offset % BLOCK_LEN as u64) as usize;
        let mut rest = data;

        // 1. A stream position inside a block: use the tail of that block's keystream.
        if skip != 0 && !rest.is_empty() {
            let mut block = self.counter_block(block_index);
            self.cipher.encrypt_block(&mut block);
            let take = rest.len().min(BLOCK_LEN - skip);
            let (head, tail) = rest.split_at_mut(take);
            xor_bytes(head, &block[skip..skip + take]);
            rest = tail;
            block_index += 1;
        }

        // 2. Everything from a block boundary on, in the backend (see `KeystreamXor`).
        if !rest.is_empty() {
            let first_counter = self.iv.wrapping_add(u128::from(block_index));
            self.cipher.encrypt_with_backend(KeystreamXor {
                counter: first_counter,
                data: rest,
            });
        }
    }

    /// The counter block `T_i = IV + i mod 2^128`, big-endian.
    fn counter_block(&self, block_index: u64) -> Block {
        let counter = self.iv.wrapping_add(u128::from(block_index));
        Block::from(counter.to_be_bytes())
    }
}

impl std::fmt::Debug for Aes128Ctr {
    /// Never prints the key schedule.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aes128Ctr").finish_non_exhaustive()
    }
}

/// The hot loop, as a closure the block cipher calls with its backend: XOR the
/// keystream that starts at counter block `counter` into `data` (which starts on
/// a block boundary and may end anywhere).
struct KeystreamXor<'a> {
    counter: u128,
    data: &'a mut [u8],
}

impl BlockSizeUser for KeystreamXor<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for KeystreamXor<'_> {
    // `inline(always)`: the cipher calls this from inside its AES-enabled function;
    // inlined there, the group routine inlines into our loop (without it we measured
    // 0.67x of the `ctr` crate, on `aes` 0.8).
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let mut counter = self.counter;
        let mut next_counter = || {
            let block = Block::from(counter.to_be_bytes());
            counter = counter.wrapping_add(1);
            block
        };

        // Groups of ParBlocksSize blocks (8 with AES-NI, 64 with VAES-512), encrypted
        // interleaved.
        let group_len = B::ParBlocksSize::USIZE * BLOCK_LEN;
        let mut keystream = ParBlocks::<B>::default();
        let mut groups = self.data.chunks_exact_mut(group_len);
        for group in &mut groups {
            for block in keystream.iter_mut() {
                *block = next_counter();
            }
            backend.encrypt_par_blocks_inplace(&mut keystream);
            for (chunk, ks) in group.chunks_exact_mut(BLOCK_LEN).zip(keystream.iter()) {
                xor_block(chunk, ks);
            }
        }

        // The tail: fewer than a group, the last block maybe short.
        for chunk in groups.into_remainder().chunks_mut(BLOCK_LEN) {
            let mut ks = next_counter();
            backend.encrypt_block_inplace(&mut ks);
            if chunk.len() == BLOCK_LEN {
                xor_block(chunk, &ks);
            } else {
                xor_bytes(chunk, &ks[..chunk.len()]);
            }
        }
    }
}

/// XORs one keystream block into a 16-byte chunk as one `u128` (one vector XOR).
#[inline(always)]
fn xor_block(chunk: &mut [u8], ks: &Block) {
    let d = u128::from_ne_bytes(chunk.try_into().expect("16-byte chunk"));
    let k = u128::from_ne_bytes((*ks).into());
    chunk.copy_from_slice(&(d ^ k).to_ne_bytes());
}

/// XORs `keystream` into `data` byte by byte (for the short edges).
fn xor_bytes(data: &mut [u8], keystream: &[u8]) {
    for (d, k) in data.iter_mut().zip(keystream) {
        *d ^= k;
    }
}

/// [`Aes128Ctr`] with a running position: successive calls continue the stream,
/// like the `ctr` crate's `StreamCipher::apply_keystream`.
///
/// ```
/// use crypto::ctr::{Aes128Ctr, CtrStream};
///
/// let ctr = Aes128Ctr::new(&[1; 16], &[2; 16]);
/// let mut whole = vec![0u8; 100];
/// ctr.apply_keystream(&mut whole);
///
/// let mut pieces = vec![0u8; 100];
/// let mut stream = CtrStream::new(ctr);
/// let (a, b) = pieces.split_at_mut(37);
/// stream.apply_keystream(a);
/// stream.apply_keystream(b);
/// assert_eq!(pieces, whole);
/// assert_eq!(stream.position(), 100);
/// ```
#[derive(Clone, Debug)]
pub struct CtrStream {
    ctr: Aes128Ctr,
    position: u64,
}

impl CtrStream {
    /// A stream at position 0.
    pub fn new(ctr: Aes128Ctr) -> Self {
        CtrStream { ctr, position: 0 }
    }

    /// XORs the next `data.len()` keystream bytes into `data`.
    pub fn apply_keystream(&mut self, data: &mut [u8]) {
        self.ctr.apply_keystream_at(self.position, data);
        self.position += data.len() as u64;
    }

    /// How many keystream bytes have been used so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Jumps to byte `position` of the stream.
    pub fn seek(&mut self, position: u64) {
        self.position = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_wraps_modulo_2_pow_128() {
        let ctr = Aes128Ctr::new(&[0; 16], &[0xff; 16]);
        assert_eq!(ctr.counter_block(0), Block::from([0xff; 16]));
        assert_eq!(ctr.counter_block(1), Block::from([0; 16]));
        assert_eq!(ctr.counter_block(2)[15], 1);
    }

    #[test]
    fn pieces_at_offsets_match_one_call() {
        let ctr = Aes128Ctr::new(&[9; 16], &[3; 16]);
        let mut whole = vec![0u8; 3 * 128 + 21];
        ctr.apply_keystream(&mut whole);
        for cut in [0, 1, 15, 16, 17, 127, 128, 133, 300] {
            let mut pieces = vec![0u8; whole.len()];
            let (a, b) = pieces.split_at_mut(cut);
            ctr.apply_keystream_at(0, a);
            ctr.apply_keystream_at(cut as u64, b);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }

    #[test]
    fn empty_input_is_fine_at_any_offset() {
        let ctr = Aes128Ctr::new(&[0; 16], &[0; 16]);
        for offset in [0, 1, 16, 1000] {
            ctr.apply_keystream_at(offset, &mut []);
        }
    }
}
