//! The process pool's frames (`crates/process-pool/src/wire/frame.rs`,
//! `reader.rs`, and the dispatcher's `RESULT` body parser), read on both
//! ends of the pipes: the first byte picks the reader and its read size.
//!
//! * Even first byte: the pool reads a worker's result pipe.
//! * Odd first byte: a worker reads its task pipe (from a real descriptor);
//!   with the high bit set, with small argument-buffer limits, so that the
//!   buffer's growth and drop are reached by inputs of a few KiB.
//!
//! Promises checked beyond "no panic": the frames read, written back, are
//! exactly the bytes they were read from; no frame is bigger than the cap;
//! a stream that is read to its end without an error was read whole; a
//! truncation reports the bytes that were left over; a task's argument read
//! as a whole `Vec<u8>` straight into its vector (`ArgReader::read_vec`)
//! is what serde decodes from the same bytes, or both refuse it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use process_pool::fuzz_api::{self, encode_frame, TASK};
use process_pool::FrameError;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let read_size = 1usize << ((mode >> 1) & 15);
    if mode & 1 == 0 {
        let max = if mode & 0x80 != 0 {
            64
        } else {
            process_pool::DEFAULT_MAX_FRAME
        };
        check_pool(stream, read_size, max);
    } else {
        // The high bit: small argument-buffer limits, which inputs this
        // size can reach (see `fuzz_api::worker_read`).
        check_worker(stream, read_size, mode & 0x80 != 0);
    }
});

fn check_pool(stream: &[u8], read_size: usize, max: usize) {
    let (frames, error) = fuzz_api::pool_read(stream, read_size, max);
    let mut written = Vec::new();
    for f in &frames {
        assert!(f.body.len() <= max, "a frame over the cap was taken");
        written.extend(encode_frame(f.kind, &f.body));
        if let Some((_, _, Ok(value))) = &f.result {
            // The value follows the id, the outcome tag and the cost block.
            assert!(f.body[9 + fuzz_api::RESULT_COST_LEN..].starts_with(value));
        }
    }
    assert_eq!(
        &stream[..written.len()],
        &written[..],
        "frames differ from their bytes"
    );
    match error {
        None => assert_eq!(written.len(), stream.len(), "bytes left without an error"),
        Some(FrameError::Truncated { have, need }) => {
            assert_eq!(have, stream.len() - written.len());
            assert!(have < need);
        }
        Some(FrameError::TooLarge { len, max: m }) => assert!(len > m && m == max),
        Some(_) => {}
    }
}

fn check_worker(stream: &[u8], buffer: usize, small_limits: bool) {
    let (tasks, stopped) = fuzz_api::worker_read(stream, buffer, small_limits).expect("a memfd");
    let mut written = Vec::new();
    for t in &tasks {
        let mut body = Vec::new();
        for field in [t.id, t.trampoline, t.function] {
            body.extend_from_slice(&field.to_le_bytes());
        }
        body.extend_from_slice(&t.arg);
        written.extend(encode_frame(TASK, &body));
        let (ours, serde) = fuzz_api::byte_vector_arg(&t.arg, buffer).expect("a memfd");
        assert_eq!(
            ours.as_ref().ok(),
            serde.as_ref().ok(),
            "read_vec and serde disagree: {ours:?} / {serde:?}"
        );
    }
    assert_eq!(
        &stream[..written.len()],
        &written[..],
        "tasks differ from their bytes"
    );
    if stopped.is_none() {
        assert_eq!(written.len(), stream.len(), "bytes left without an error");
    }
}
