//! The crypto jobs: the Rust twin of `arcfour_test(size, key)` in the book's
//! `arcfour_futures.py`.
//!
//! A job is described by a tiny [`JobSpec`] (index, size, seed). The worker makes
//! the job's data from the seed, encrypts it with AES-128-CTR, decrypts it again,
//! checks that it got the plaintext back and returns a [`JobResult`]: the size and
//! a 64-bit digest of the ciphertext. So only a few bytes cross the pipe to a
//! process pool worker in each direction. With `--ship-data` the parent makes the
//! data instead ([`make_data`]) and sends it ([`run_job_on_data`]), as a
//! [`SharedBytes`]: a sealed memfd that crosses to a process pool worker as a
//! file descriptor and is mapped there, so the bytes are never copied through
//! the pipe. Both paths produce the same bytes, hence the same digest:
//! the tests compare them across executors.
//!
//! # Chunked, so the cores are not fighting over memory
//!
//! The book builds the whole buffer, a whole encrypted copy and a whole decrypted
//! copy. We walk the stream in [`CHUNK_LEN`] pieces instead: make a chunk of
//! plaintext, encrypt a copy at its stream offset (CTR can start anywhere, see
//! [`crate::ctr`]), fold the ciphertext into the digest, decrypt, compare. The
//! bytes processed are the same, but the working set (two 64 KiB buffers) stays
//! in the core's own cache, so two workers on two cores scale like two cores and
//! not like one shared memory bus, and a 300 MB job needs 128 KiB of memory.
//!
//! # Sizes, as in the book
//!
//! `arcfour_futures.py` makes `JOBS = 12` jobs; job `i` (from 12 down to 1) has
//! `SIZE + int(SIZE / JOBS * (i - JOBS / 2))` bytes: from 1.5x down to 0.58x of
//! `SIZE`, largest first. [`job_sizes`] is that formula.

use process_pool::SharedBytes;
use serde::{Deserialize, Serialize};

use crate::ctr::Aes128Ctr;

/// The first 16 bytes of the book's key, `b"'Twas brillig, and the slithy toves\nDid gyre"`
/// (AES-128 takes exactly 16).
pub const KEY: [u8; 16] = *b"'Twas brillig, a";

/// Bytes of the stream handled per step of a job (a multiple of the 32-byte digest
/// group and of the AES block).
pub const CHUNK_LEN: usize = 64 * 1024;

/// What a worker needs to run a job: a few bytes that cross the pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Position in submission order (0 = first submitted, the largest).
    pub index: usize,
    /// Bytes of data to encrypt and decrypt.
    pub size: usize,
    /// Seed of the data generator; also picks the job's initial counter block.
    pub seed: u64,
}

/// What a job sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobResult {
    /// The [`JobSpec::index`] of the job.
    pub index: usize,
    /// Bytes processed.
    pub size: usize,
    /// A 64-bit digest of the ciphertext ([`Digest`]; not a cryptographic hash).
    pub digest: u64,
}

/// A job that did not complete its round trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobError {
    /// Decrypting the ciphertext did not give back the plaintext.
    RoundTrip {
        /// The job's index.
        index: usize,
        /// Stream offset of the first chunk that differed.
        offset: usize,
    },
    /// The shipped data is not as long as the spec says.
    WrongLength {
        /// The job's index.
        index: usize,
        /// Bytes the spec asks for.
        expected: usize,
        /// Bytes that arrived.
        actual: usize,
    },
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::RoundTrip { index, offset } => write!(
                f,
                "job {index}: decrypting did not give back the plaintext (chunk at byte {offset}); \
                 the CTR code is broken"
            ),
            JobError::WrongLength {
                index,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "job {index}: expected {expected} bytes of data, got {actual}"
                )
            }
        }
    }
}

impl std::error::Error for JobError {}

/// The book's job sizes for `jobs` jobs around `size` bytes, largest first.
///
/// ```
/// let sizes = crypto::jobs::job_sizes(12, 1 << 18);
/// assert_eq!(sizes.first(), Some(&393_216)); // 384.0 KB, as the book prints
/// assert_eq!(sizes.last(), Some(&152_918)); // 149.3 KB
/// ```
pub fn job_sizes(jobs: usize, size: usize) -> Vec<usize> {
    (1..=jobs)
        .rev()
        .map(|i| {
            // The Python expression computes in floats and `int()` truncates toward zero.
            let delta = size as f64 / jobs as f64 * (i as f64 - jobs as f64 / 2.0);
            (size as f64 + delta.trunc()).max(0.0) as usize
        })
        .collect()
}

/// Specs for the book's job sizes, with seeds derived from `seed`.
pub fn job_specs(jobs: usize, size: usize, seed: u64) -> Vec<JobSpec> {
    job_sizes(jobs, size)
        .into_iter()
        .enumerate()
        .map(|(index, size)| JobSpec {
            index,
            size,
            seed: seed.wrapping_add(index as u64),
        })
        .collect()
}

/// Runs a job whose data is made here from the seed (the default mode).
///
/// A plain `fn` item so it can be sent to a process pool worker.
pub fn run_job(spec: JobSpec) -> Result<JobResult, JobError> {
    let mut rng = SplitMix64::new(spec.seed);
    round_trip(spec, |_offset, plain| rng.fill(plain))
}

/// A job with its data, as the parent sends it with `--ship-data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippedJob {
    /// The job.
    pub spec: JobSpec,
    /// Its plaintext: [`make_data`]`(spec)`, for the digest to match [`run_job`]'s.
    /// A [`SharedBytes`]: a process pool worker maps it, nothing is copied.
    pub data: SharedBytes,
}

impl ShippedJob {
    /// The job with the data the parent makes for it, written straight into
    /// the shared buffer.
    ///
    /// # Panics
    ///
    /// If the kernel refuses a memfd of `spec.size` bytes (out of memory, or
    /// at the open-file limit): the message says which.
    pub fn new(spec: JobSpec) -> Self {
        let data = SharedBytes::with_len(spec.size, |buf| SplitMix64::new(spec.seed).fill(buf))
            .unwrap_or_else(|e| {
                panic!(
                    "could not make the {} bytes of job {} in a memfd: {e}",
                    spec.size, spec.index
                )
            });
        ShippedJob { spec, data }
    }
}

/// Runs a job on data made by the parent (`--ship-data`).
///
/// A plain `fn` item so it can be sent to a process pool worker.
pub fn run_job_on_data(ShippedJob { spec, data }: ShippedJob) -> Result<JobResult, JobError> {
    if data.len() != spec.size {
        return Err(JobError::WrongLength {
            index: spec.index,
            expected: spec.size,
            actual: data.len(),
        });
    }
    round_trip(spec, |offset, plain| {
        plain.copy_from_slice(&data[offset..offset + plain.len()])
    })
}

/// The job's plaintext in one buffer, as the parent makes it for `--ship-data`.
pub fn make_data(spec: JobSpec) -> Vec<u8> {
    let mut data = vec![0u8; spec.size];
    SplitMix64::new(spec.seed).fill(&mut data);
    data
}

/// The shared body of a job: for each chunk of the stream, get the plaintext
/// (`fill_plain(offset, buffer)`), encrypt a copy, digest the ciphertext, decrypt,
/// compare with the plaintext.
fn round_trip(
    spec: JobSpec,
    mut fill_plain: impl FnMut(usize, &mut [u8]),
) -> Result<JobResult, JobError> {
    let ctr = Aes128Ctr::new(&KEY, &iv_for(spec.seed));
    let mut plain = vec![0u8; CHUNK_LEN.min(spec.size)];
    let mut work = vec![0u8; CHUNK_LEN.min(spec.size)];
    let mut digest = Digest::new();
    let mut offset = 0;
    while offset < spec.size {
        let len = CHUNK_LEN.min(spec.size - offset);
        let plain = &mut plain[..len];
        fill_plain(offset, plain);
        let work = &mut work[..len];
        work.copy_from_slice(plain);
        ctr.apply_keystream_at(offset as u64, work); // encrypt
        digest.update(work);
        ctr.apply_keystream_at(offset as u64, work); // decrypt
        if work != &*plain {
            return Err(JobError::RoundTrip {
                index: spec.index,
                offset,
            });
        }
        offset += len;
    }
    Ok(JobResult {
        index: spec.index,
        size: spec.size,
        digest: digest.finish(),
    })
}

/// The initial counter block of a job: its seed in the high half, zeros below,
/// so a job's counter never runs into another job's.
fn iv_for(seed: u64) -> [u8; 16] {
    (u128::from(seed) << 64).to_be_bytes()
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", 2014): a tiny, fast generator, plenty for test data.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`; a slight bias is fine for tests).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Fills `buf` with random bytes, 8 at a time (little-endian words). Filling
    /// a buffer in pieces whose lengths are multiples of 8 gives the same bytes as
    /// filling it at once.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let bytes = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&bytes[..tail.len()]);
        }
    }
}

/// A fast 64-bit digest of a byte stream: four multiply-rotate lanes over
/// little-endian words (a word goes to lane `word_index % 4`), the lanes and the
/// length mixed at the end. Not cryptographic: it only has to make a job's
/// result depend on every ciphertext byte, cheaply. Feeding the stream in pieces
/// of any lengths gives the same digest.
#[derive(Clone, Debug)]
pub struct Digest {
    lanes: [u64; 4],
    /// Bytes of an unfinished 32-byte group.
    pending: [u8; 32],
    pending_len: usize,
    total: u64,
}

const DIGEST_MUL: u64 = 0x9fb2_1c65_1e98_df25;

impl Digest {
    /// An empty digest.
    pub fn new() -> Self {
        Digest {
            lanes: [
                0x243f_6a88_85a3_08d3,
                0x1319_8a2e_0370_7344,
                0xa409_3822_299f_31d0,
                0x082e_fa98_ec4e_6c89,
            ],
            pending: [0; 32],
            pending_len: 0,
            total: 0,
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.pending_len > 0 {
            let take = data.len().min(32 - self.pending_len);
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 32 {
                return;
            }
            let group = self.pending;
            self.mix_group(&group);
            self.pending_len = 0;
        }
        let mut groups = data.chunks_exact(32);
        for group in &mut groups {
            self.mix_group(group);
        }
        let tail = groups.remainder();
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
    }

    /// The digest of everything fed so far.
    pub fn finish(mut self) -> u64 {
        if self.pending_len > 0 {
            self.pending[self.pending_len..].fill(0);
            let group = self.pending;
            self.mix_group(&group);
        }
        let mut h = self.total.wrapping_mul(DIGEST_MUL);
        for lane in self.lanes {
            h = (h ^ lane).wrapping_mul(DIGEST_MUL).rotate_left(31);
        }
        h ^ (h >> 29)
    }

    #[inline]
    fn mix_group(&mut self, group: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(group.chunks_exact(8)) {
            let w = u64::from_le_bytes(word.try_into().expect("8-byte word"));
            *lane = (*lane ^ w).wrapping_mul(DIGEST_MUL).rotate_left(29);
        }
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}

/// Formats a job size as the book does: `'{:.1f} KB'.format(size / 2**10)`.
pub fn format_kb(size: usize) -> String {
    format!("{:.1} KB", size as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_sizes_for_the_books_parameters() {
        let sizes = job_sizes(12, 1 << 18);
        assert_eq!(sizes.len(), 12);
        assert_eq!(format_kb(sizes[0]), "384.0 KB");
        assert_eq!(format_kb(sizes[11]), "149.3 KB");
        assert!(
            sizes.windows(2).all(|w| w[0] > w[1]),
            "largest first: {sizes:?}"
        );
    }

    #[test]
    fn digest_is_independent_of_how_the_stream_is_cut() {
        let mut data = vec![0u8; 1000];
        SplitMix64::new(5).fill(&mut data);
        let mut one = Digest::new();
        one.update(&data);
        let one = one.finish();
        for cuts in [[1, 2, 3], [31, 32, 33], [100, 500, 999], [0, 0, 1000]] {
            let mut d = Digest::new();
            let mut start = 0;
            for cut in cuts {
                d.update(&data[start..cut]);
                start = cut;
            }
            d.update(&data[start..]);
            assert_eq!(d.finish(), one, "cuts {cuts:?}");
        }
    }

    #[test]
    fn digest_sees_every_byte_and_the_length() {
        let base = Digest::new().finish();
        let mut zero = Digest::new();
        zero.update(&[0]);
        assert_ne!(zero.finish(), base, "length must count");
        let data = vec![7u8; 100];
        let mut reference = Digest::new();
        reference.update(&data);
        let reference = reference.finish();
        for i in [0, 31, 32, 99] {
            let mut changed = data.clone();
            changed[i] ^= 1;
            let mut d = Digest::new();
            d.update(&changed);
            assert_ne!(d.finish(), reference, "byte {i} ignored");
        }
    }

    #[test]
    fn chunked_fill_matches_one_fill() {
        let mut whole = vec![0u8; 3 * CHUNK_LEN + 5];
        SplitMix64::new(11).fill(&mut whole);
        let mut rng = SplitMix64::new(11);
        let mut pieces = vec![0u8; whole.len()];
        for chunk in pieces.chunks_mut(CHUNK_LEN) {
            rng.fill(chunk);
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn generated_and_shipped_jobs_agree() {
        for size in [
            0,
            1,
            15,
            16,
            17,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            2 * CHUNK_LEN + 3,
        ] {
            let spec = JobSpec {
                index: 3,
                size,
                seed: 42,
            };
            let generated = run_job(spec).unwrap();
            let shipped = run_job_on_data(ShippedJob::new(spec)).unwrap();
            assert_eq!(generated, shipped, "size {size}");
            assert_eq!(generated.size, size);
        }
    }

    #[test]
    fn different_seeds_give_different_digests() {
        let a = run_job(JobSpec {
            index: 0,
            size: 1000,
            seed: 1,
        })
        .unwrap();
        let b = run_job(JobSpec {
            index: 0,
            size: 1000,
            seed: 2,
        })
        .unwrap();
        assert_ne!(a.digest, b.digest);
    }

    #[test]
    fn wrong_length_is_an_error() {
        let spec = JobSpec {
            index: 1,
            size: 10,
            seed: 0,
        };
        let err = run_job_on_data(ShippedJob {
            spec,
            data: SharedBytes::from_slice(&[0; 9]).unwrap(),
        })
        .unwrap_err();
        assert_eq!(
            err,
            JobError::WrongLength {
                index: 1,
                expected: 10,
                actual: 9
            }
        );
        assert!(err.to_string().contains("expected 10 bytes"));
    }
}
