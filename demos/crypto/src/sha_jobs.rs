//! The SHA-256 jobs: the Rust twin of `sha(size)` in the book's `sha_futures.py`
//! (Fluent Python, Example A-9).
//!
//! The book's job builds a 1 MiB random `bytearray` and returns its SHA-256 hex
//! digest; all twelve jobs have the same size. Ours takes the same
//! [`JobSpec`] as the AES jobs (index, size, seed: a few bytes to cross the pipe),
//! makes the data in the worker from the seed with [`SplitMix64`], hashes it with
//! our [`Sha256`] and returns a [`ShaResult`] holding the
//! 64-character hex digest.
//!
//! The data is made and hashed [`CHUNK_LEN`] bytes at a time, so a job of any
//! size needs one 64 KiB buffer that stays in the core's cache. SplitMix64 fills
//! 8 bytes per number and the chunks are multiples of 8, so the stream is the
//! same bytes as [`make_data`](crate::jobs::make_data) makes in one buffer, and
//! the digest is that buffer's digest (tested).

use serde::{Deserialize, Serialize};

use crate::executors::{run_batch, Batch, ExecutorKind, RunError, RunReport};
use crate::jobs::{JobSpec, SplitMix64, CHUNK_LEN};
use crate::sha256::{hex, Sha256};

/// What a SHA job sends back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShaResult {
    /// The [`JobSpec::index`] of the job.
    pub index: usize,
    /// Bytes hashed.
    pub size: usize,
    /// The SHA-256 of the job's data, as Python's `hexdigest()` prints it.
    pub hex_digest: String,
}

/// Specs for `jobs` jobs of `size` bytes each (the book's jobs are all the same
/// size), job `i` seeded with `seed + i`.
pub fn sha_specs(jobs: usize, size: usize, seed: u64) -> Vec<JobSpec> {
    (0..jobs)
        .map(|index| JobSpec {
            index,
            size,
            seed: seed.wrapping_add(index as u64),
        })
        .collect()
}

/// Runs a SHA job: makes the data from the seed, chunk by chunk, and hashes it.
///
/// A plain `fn` item so it can be sent to a process pool worker.
pub fn run_sha_job(spec: JobSpec) -> ShaResult {
    let mut rng = SplitMix64::new(spec.seed);
    let mut chunk = vec![0u8; CHUNK_LEN.min(spec.size)];
    let mut hasher = Sha256::new();
    let mut left = spec.size;
    while left > 0 {
        let chunk = &mut chunk[..CHUNK_LEN.min(left)];
        rng.fill(chunk);
        hasher.update(chunk);
        left -= chunk.len();
    }
    ShaResult {
        index: spec.index,
        size: spec.size,
        hex_digest: hex(&hasher.finalize()),
    }
}

/// Runs the SHA jobs on `executor` (`workers` ignored by `seq`), the book's way:
/// all submitted up front, `on_done` called with each result as it completes.
/// The elapsed time includes the pool's start and shutdown.
pub fn run_sha(
    executor: ExecutorKind,
    workers: usize,
    specs: &[JobSpec],
    mut on_done: impl FnMut(&ShaResult),
) -> Result<RunReport<ShaResult>, RunError> {
    let batch = Batch::new(executor, workers, specs, |spec| spec, run_sha_job);
    run_batch(&batch, |result| {
        on_done(&result);
        Ok(result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::make_data;

    #[test]
    fn chunked_job_hashes_the_same_bytes_as_one_buffer() {
        // Sizes around the chunk length and not multiples of 8 (the generator's
        // last word is cut short only at the very end).
        for size in [
            0,
            1,
            7,
            8,
            63,
            1000,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            3 * CHUNK_LEN + 13,
        ] {
            let spec = JobSpec {
                index: 5,
                size,
                seed: 99,
            };
            let result = run_sha_job(spec);
            assert_eq!(
                result.hex_digest,
                hex(&Sha256::digest(&make_data(spec))),
                "size {size}"
            );
            assert_eq!((result.index, result.size), (5, size));
            assert_eq!(result.hex_digest.len(), 64);
        }
    }

    #[test]
    fn empty_job_is_the_empty_digest() {
        let spec = JobSpec {
            index: 0,
            size: 0,
            seed: 1,
        };
        assert_eq!(
            run_sha_job(spec).hex_digest,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn specs_have_one_size_and_distinct_seeds() {
        let specs = sha_specs(12, 4096, 2015);
        assert_eq!(specs.len(), 12);
        assert!(specs.iter().all(|s| s.size == 4096));
        let indices: Vec<usize> = specs.iter().map(|s| s.index).collect();
        assert_eq!(indices, (0..12).collect::<Vec<_>>());
        let digests: std::collections::HashSet<String> =
            specs.iter().map(|&s| run_sha_job(s).hex_digest).collect();
        assert_eq!(digests.len(), 12, "every job hashes different data");
    }
}
