//! The CPU-bound job: "render" a country's flag into a pixel buffer, again
//! and again, and fold every pass into a checksum.
//!
//! Deterministic (the same code and settings give the same checksum on any
//! executor), pure computation, and plain data in and out, so it can run in
//! a process pool worker (a plain `fn`, serde arguments) as well as on a
//! thread.

use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What to render.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// Two-letter country code, e.g. `BR`.
    pub cc: String,
    /// Width of the flag in pixels (height is two thirds of it).
    pub width: u32,
    /// Rendering passes: the amount of work.
    pub passes: u32,
    /// Fail this job on purpose, to show how a task error arrives.
    pub fail: bool,
}

/// What a rendered flag reports back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub cc: String,
    /// FNV-1a over every pass's pixels.
    pub checksum: u64,
    /// Pixels per pass.
    pub pixels: u64,
    /// Rendering passes.
    pub passes: u32,
    /// Process id of whoever rendered it (a worker process, or this process).
    pub pid: u32,
    /// Time spent rendering, in milliseconds.
    pub millis: u64,
}

/// Why a job failed.
#[derive(Debug)]
pub struct RenderError {
    pub cc: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the renderer refused {} (asked to with --fail)", self.cc)
    }
}

impl std::error::Error for RenderError {}

/// Renders `job.passes` passes of a three-stripe flag whose colours come
/// from the country code, and checksums them.
pub fn render_flag(job: Job) -> Result<Rendered, RenderError> {
    if job.fail {
        return Err(RenderError { cc: job.cc });
    }
    let start = Instant::now();
    let (width, height) = (
        job.width.max(3) as usize,
        (job.width.max(3) * 2 / 3) as usize,
    );
    let colours = stripe_colours(&job.cc);
    let mut row = vec![0u8; width * 3];
    let mut checksum = FNV_OFFSET;
    for pass in 0..job.passes {
        for y in 0..height {
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let [r, g, b] = colours[x * 3 / width];
                // A little shading that varies by row and pass, so the
                // compiler cannot hoist the work out of the loops.
                let shade = ((x ^ y) as u32).wrapping_add(pass) as u8 & 7;
                px.copy_from_slice(&[r ^ shade, g ^ shade, b ^ shade]);
            }
            checksum = fnv1a(checksum, &row);
        }
    }
    Ok(Rendered {
        cc: job.cc,
        checksum,
        pixels: (width * height) as u64,
        passes: job.passes,
        pid: std::process::id(),
        millis: start.elapsed().as_millis() as u64,
    })
}

/// Three RGB colours derived from the letters of `cc`.
fn stripe_colours(cc: &str) -> [[u8; 3]; 3] {
    let seed = fnv1a(FNV_OFFSET, cc.as_bytes());
    let byte = |i: u32| (seed >> (i * 8)) as u8;
    [
        [byte(0), byte(1), byte(2)],
        [255, 255, 255],
        [byte(3), byte(4), byte(5)],
    ]
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The book's twenty most populous countries (`POP20_CC` in flags.py).
pub const POP20_CC: [&str; 20] = [
    "CN", "IN", "US", "ID", "BR", "PK", "NG", "BD", "RU", "JP", "MX", "PH", "VN", "ET", "EG", "DE",
    "IR", "TR", "CD", "FR",
];

/// Every two-letter code from AA to ZZ (flags2's `--every`).
pub fn every_code() -> Vec<String> {
    let letters = b'A'..=b'Z';
    letters
        .clone()
        .flat_map(|a| {
            letters
                .clone()
                .map(move |b| String::from_utf8(vec![a, b]).unwrap())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(cc: &str) -> Job {
        Job {
            cc: cc.into(),
            width: 30,
            passes: 2,
            fail: false,
        }
    }

    #[test]
    fn rendering_is_deterministic_and_depends_on_the_code() {
        let a = render_flag(job("BR")).unwrap();
        assert_eq!(a.checksum, render_flag(job("BR")).unwrap().checksum);
        assert_ne!(a.checksum, render_flag(job("JP")).unwrap().checksum);
        assert_eq!(a.pixels, 30 * 20);
    }

    #[test]
    fn a_job_asked_to_fail_fails_with_its_code() {
        let err = render_flag(Job {
            fail: true,
            ..job("XX")
        })
        .unwrap_err();
        assert!(err.to_string().contains("XX"));
    }

    #[test]
    fn every_code_runs_from_aa_to_zz() {
        let codes = every_code();
        assert_eq!(codes.len(), 676);
        assert_eq!((codes[0].as_str(), codes[675].as_str()), ("AA", "ZZ"));
    }
}
