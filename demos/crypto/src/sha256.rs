//! SHA-256 by hand, following FIPS 180-4 ("Secure Hash Standard", sections 4.1.2,
//! 4.2.2, 5.1.1, 5.3.3 and 6.2), in one file to read from top to bottom.
//!
//! SHA-256 turns a message of any length into a 32-byte digest. It works in three
//! steps:
//!
//! 1. **Padding** (5.1.1). The message is extended to a whole number of 64-byte
//!    blocks: a single `1` bit (the byte `0x80`), then zero bytes, then the
//!    message length *in bits* as a 64-bit big-endian number in the last 8 bytes.
//!    So a message of 55 bytes still fits one block (55 + 1 + 8 = 64) and one of
//!    56 bytes needs two.
//! 2. **The message schedule** (6.2.2 step 1). Each block becomes 64 words of 32
//!    bits: the first 16 are the block read as big-endian words, each later one
//!    mixes four earlier ones with the small sigma functions.
//! 3. **Compression** (6.2.2 steps 2-4). Eight working words `a..h` start as the
//!    current hash value and go through 64 rounds, one per schedule word and round
//!    constant; the results are added (mod 2^32) back into the hash value. After
//!    the last block, the eight words written big-endian are the digest.
//!
//! The streaming API, [`Sha256::new`], [`Sha256::update`] (as often as you like,
//! with pieces of any length) and [`Sha256::finalize`], buffers at most one
//! partial block, so hashing a stream of any size takes 64 bytes of buffer plus
//! the 32-byte state.
//!
//! ```
//! use crypto::sha256::{hex, Sha256};
//!
//! let mut hasher = Sha256::new();
//! hasher.update(b"ab");
//! hasher.update(b"c");
//! assert_eq!(
//!     hex(&hasher.finalize()),
//!     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
//! );
//! ```
//!
//! This is a teaching implementation: portable, no SIMD or SHA-NI instructions,
//! no `unsafe`. The tests check it against the NIST vectors and, for random
//! messages, against the RustCrypto `sha2` crate.

/// Bytes in a block: the unit the compression function consumes.
pub const BLOCK_LEN: usize = 64;

/// Bytes in a digest.
pub const DIGEST_LEN: usize = 32;

/// The initial hash value H(0) (FIPS 180-4, 5.3.3): the first 32 bits of the
/// fractional parts of the square roots of the first 8 primes, 2..19. Constants
/// derived from simple numbers show that nobody chose them to hide a weakness
/// ("nothing up my sleeve").
const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The round constants K (FIPS 180-4, 4.2.2): the first 32 bits of the fractional
/// parts of the cube roots of the first 64 primes, 2..311. Round `t` adds `K[t]`.
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

// The six logical functions of FIPS 180-4, 4.1.2. All arithmetic is on 32-bit
// words; `rotate_right` is the standard's ROTR and `>>` its SHR.

/// Ch ("choose"): each bit of `x` picks the bit of `y` (if 1) or of `z` (if 0).
#[inline(always)]
fn ch(x: u32, y: u32, z: u32) -> u32 {
    (x & y) ^ (!x & z)
}

/// Maj ("majority"): each result bit is the value held by at least two of the inputs.
#[inline(always)]
fn maj(x: u32, y: u32, z: u32) -> u32 {
    (x & y) ^ (x & z) ^ (y & z)
}

/// Σ0 (capital sigma zero), applied to the working word `a` in each round.
#[inline(always)]
fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

/// Σ1 (capital sigma one), applied to the working word `e` in each round.
#[inline(always)]
fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

/// σ0 (small sigma zero), used by the message schedule.
#[inline(always)]
fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

/// σ1 (small sigma one), used by the message schedule.
#[inline(always)]
fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// Folds one 64-byte block into the hash value `state` (FIPS 180-4, 6.2.2).
fn compress(state: &mut [u32; 8], block: &[u8; BLOCK_LEN]) {
    // Step 1, the message schedule W[0..64]. The first 16 words are the block
    // itself, read big-endian; each later word is
    // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]  (mod 2^32),
    // which spreads every input bit over the later rounds.
    let mut w = [0u32; 64];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for t in 16..64 {
        w[t] = small_sigma1(w[t - 2])
            .wrapping_add(w[t - 7])
            .wrapping_add(small_sigma0(w[t - 15]))
            .wrapping_add(w[t - 16]);
    }

    // Step 2: the working words start as the current hash value.
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;

    // Step 3: 64 rounds. Each computes two temporaries from the words, the round
    // constant and the schedule word, then shifts the eight words along by one:
    // a new `a` and a new `e` come in, `h` (and the old `d`, into `e`) drop out.
    for t in 0..64 {
        let t1 = h
            .wrapping_add(big_sigma1(e))
            .wrapping_add(ch(e, f, g))
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }

    // Step 4: add the working words into the hash value (the Davies-Meyer
    // feed-forward: without it the rounds could be run backwards).
    for (word, worked) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *word = word.wrapping_add(worked);
    }
}

/// A SHA-256 computation in progress: feed it bytes with [`update`](Self::update),
/// get the digest with [`finalize`](Self::finalize).
#[derive(Clone, Debug)]
pub struct Sha256 {
    /// The hash value after the blocks compressed so far.
    state: [u32; 8],
    /// The start of a block not yet complete.
    buffer: [u8; BLOCK_LEN],
    /// How many bytes of `buffer` are filled (always less than a block).
    buffered: usize,
    /// Bytes fed so far: the padding needs the message length.
    length: u64,
}

impl Sha256 {
    /// A hasher that has seen no bytes yet.
    pub fn new() -> Self {
        Sha256 {
            state: H0,
            buffer: [0; BLOCK_LEN],
            buffered: 0,
            length: 0,
        }
    }

    /// Feeds `data`, the next bytes of the message. Feeding a message in pieces of
    /// any lengths gives the same digest as feeding it at once.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);

        // First complete a block left partly filled by the previous call.
        if self.buffered > 0 {
            let take = data.len().min(BLOCK_LEN - self.buffered);
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < BLOCK_LEN {
                return; // still not a whole block, and `data` is used up
            }
            compress(&mut self.state, &self.buffer);
            self.buffered = 0;
        }

        // Then whole blocks straight from `data`, without copying them.
        let mut blocks = data.chunks_exact(BLOCK_LEN);
        for block in &mut blocks {
            compress(&mut self.state, block.try_into().expect("64-byte block"));
        }

        // Keep the tail for the next call (or for the padding).
        let tail = blocks.remainder();
        self.buffer[..tail.len()].copy_from_slice(tail);
        self.buffered = tail.len();
    }

    /// Pads the message (FIPS 180-4, 5.1.1), compresses the last block or two and
    /// returns the digest: the hash value's eight words, big-endian.
    pub fn finalize(mut self) -> [u8; DIGEST_LEN] {
        let bit_length = self.length.wrapping_mul(8);

        // The `1` bit right after the message, as the byte 0x80 (messages here are
        // whole bytes, so the bit always starts a byte).
        self.buffer[self.buffered] = 0x80;
        self.buffer[self.buffered + 1..].fill(0);

        // The length takes the last 8 bytes of a block. If the 0x80 landed past
        // byte 55 there is no room left: this block ends in zeros and the length
        // goes into one more block of zeros.
        if self.buffered + 1 > BLOCK_LEN - 8 {
            compress(&mut self.state, &self.buffer);
            self.buffer = [0; BLOCK_LEN];
        }
        self.buffer[BLOCK_LEN - 8..].copy_from_slice(&bit_length.to_be_bytes());
        compress(&mut self.state, &self.buffer);

        let mut digest = [0u8; DIGEST_LEN];
        for (bytes, word) in digest.chunks_exact_mut(4).zip(self.state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    /// The digest of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; DIGEST_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(data);
        hasher.finalize()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

/// Lower-case hexadecimal, two digits per byte: Python's `hexdigest()`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * bytes.len());
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha_hex(data: &[u8]) -> String {
        hex(&Sha256::digest(data))
    }

    // FIPS 180-2, Appendix B (also NIST's "SHA256.pdf" examples), and the empty
    // message from NIST's CAVP byte-oriented test vectors.
    #[test]
    fn nist_empty_message() {
        assert_eq!(
            sha_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn nist_abc_one_block() {
        assert_eq!(
            sha_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn nist_448_bits_two_blocks() {
        // 56 bytes: the padding does not fit after it, so a second block holds the length.
        let message = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(message.len(), 56);
        assert_eq!(
            sha_hex(message),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn nist_one_million_a() {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
        assert_eq!(sha_hex(&vec![b'a'; 1_000_000]), expected);
        // And fed in pieces of 1000, as a stream.
        let mut hasher = Sha256::new();
        for _ in 0..1000 {
            hasher.update(&[b'a'; 1000]);
        }
        assert_eq!(hex(&hasher.finalize()), expected);
    }

    #[test]
    fn padding_boundaries() {
        // Messages of 0x61 ('a') bytes around the block and padding boundaries:
        // 55 is the longest one-block message, 56 the shortest needing two blocks
        // for the padding, 63/64/65 straddle a whole block. Digests from
        // `printf 'a%.0s' $(seq N) | sha256sum` (GNU coreutils).
        for (len, expected) in [
            (
                55,
                "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            ),
            (
                56,
                "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            ),
            (
                63,
                "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            ),
            (
                64,
                "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
            ),
            (
                65,
                "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0",
            ),
        ] {
            assert_eq!(sha_hex(&vec![b'a'; len]), expected, "{len} bytes");
        }
    }

    #[test]
    fn split_at_every_position_gives_the_same_digest() {
        // 200 bytes: three blocks and a tail, so splits land inside the buffer,
        // exactly on block edges, and in the whole-block fast path.
        let message: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = Sha256::digest(&message);
        for cut in 0..=message.len() {
            let mut hasher = Sha256::new();
            hasher.update(&message[..cut]);
            hasher.update(&message[cut..]);
            assert_eq!(hasher.finalize(), whole, "cut at {cut}");
        }
        // And byte by byte.
        let mut hasher = Sha256::new();
        for byte in &message {
            hasher.update(std::slice::from_ref(byte));
        }
        assert_eq!(hasher.finalize(), whole);
    }

    #[test]
    fn every_bit_matters() {
        let message = b"The quick brown fox jumps over the lazy dog".to_vec();
        let base = Sha256::digest(&message);
        for i in 0..message.len() {
            let mut flipped = message.clone();
            flipped[i] ^= 1;
            assert_ne!(Sha256::digest(&flipped), base, "byte {i}");
        }
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}
