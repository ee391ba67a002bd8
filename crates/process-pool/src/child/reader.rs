//! The worker's reader for one task's argument, straight off the task pipe.
//!
//! The argument is the rest of a `TASK` frame: `remaining` bytes of the
//! pipe. [`ArgReader::read_all`] reads it whole into a buffer kept for the
//! next task: first what the worker's `BufReader` already holds (small
//! pipelined tasks cost no extra system call), then the rest straight from
//! the descriptor into the buffer's spare capacity, uninitialised, so a big
//! argument is copied by the kernel once and never zero-filled. The buffer
//! grows as the bytes arrive, not to the length the frame announces (which
//! may be 4 GiB from a broken or hostile peer). The codec then decodes from
//! that buffer.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;

use crate::sys;
use crate::wire::byte_buffer;

/// Buffers bigger than this are not kept between tasks.
const KEEP_MAX: usize = 64 << 20;

/// How much is reserved ahead of the bytes that arrived (see
/// [`ArgReader::read_all`]).
const RESERVE_AHEAD: usize = 1 << 20;

/// How the argument buffer grows, and how big a buffer is kept for the
/// next task. The worker's are [`BufferLimits::WORKER`]; the fuzz target
/// picks small ones, so that its inputs of a few KiB reach the growth past
/// the first reserve and the drop of a big buffer (`fuzz_api::worker_read`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BufferLimits {
    /// How much is reserved ahead of the bytes that arrived.
    pub reserve_ahead: usize,
    /// Buffers bigger than this are not kept between tasks.
    pub keep_max: usize,
}

impl BufferLimits {
    /// The worker's.
    pub(crate) const WORKER: BufferLimits = BufferLimits {
        reserve_ahead: RESERVE_AHEAD,
        keep_max: KEEP_MAX,
    };
}

/// The most a byte-buffer argument's length prefix reserves before its
/// bytes arrive (see [`ArgReader::read_vec`]).
const VEC_RESERVE_MAX: usize = 64 << 20;

/// Reads at most `remaining` bytes (one argument) from the task pipe.
pub(crate) struct ArgReader<'a> {
    input: &'a mut BufReader<File>,
    remaining: u64,
    buf: &'a mut Vec<u8>,
    limits: BufferLimits,
}

impl<'a> ArgReader<'a> {
    /// A reader of the next `len` bytes of `input`; `buf` is scratch space
    /// kept between tasks.
    pub fn new(input: &'a mut BufReader<File>, len: u64, buf: &'a mut Vec<u8>) -> Self {
        Self::with_limits(input, len, buf, BufferLimits::WORKER)
    }

    /// The same, with other [`BufferLimits`] (the fuzz target's).
    pub fn with_limits(
        input: &'a mut BufReader<File>,
        len: u64,
        buf: &'a mut Vec<u8>,
        limits: BufferLimits,
    ) -> Self {
        ArgReader {
            input,
            remaining: len,
            buf,
            limits,
        }
    }

    /// Bytes of the argument not read yet.
    #[cfg(test)]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Reads the whole argument and returns it.
    pub fn read_all(&mut self) -> io::Result<&[u8]> {
        let length = usize::try_from(self.remaining)
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let BufferLimits {
            reserve_ahead,
            keep_max,
        } = self.limits;
        if self.buf.capacity() > keep_max {
            *self.buf = Vec::new();
        }
        self.buf.clear();
        // Not `length`: a header may announce up to 4 GiB and then send
        // nothing. The buffer grows as the bytes arrive (below).
        self.buf.reserve(length.min(reserve_ahead));
        // First what the BufReader already holds...
        let buffered = self.input.buffer();
        let k = buffered.len().min(length);
        self.buf.extend_from_slice(&buffered[..k]);
        self.input.consume(k);
        self.remaining -= k as u64;
        // ...then the rest straight from the pipe, into the spare,
        // uninitialised capacity (the BufReader's buffer is empty now, so
        // reading the descriptor directly keeps the bytes in order).
        let fd = self.input.get_ref().as_raw_fd();
        while self.buf.len() < length {
            // At most as much again as arrived (at least `reserve_ahead`):
            // the buffer doubles, so a big argument costs few copies, and
            // it never holds more than twice what was sent.
            let step = self.buf.len().max(reserve_ahead);
            let want = (length - self.buf.len()).min(step);
            match sys::read_into(fd, self.buf, want)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.remaining -= n as u64,
            }
        }
        Ok(self.buf)
    }

    /// Reads an argument that is a byte buffer (see `wire::byte_buffer`):
    /// its length prefix, then its bytes straight into the vector the task
    /// gets (what the `BufReader` holds first, then from the descriptor into
    /// the spare capacity): no scratch buffer, no copy in user space. The
    /// vector is reserved for the announced length up to [`VEC_RESERVE_MAX`]
    /// (untouched memory until the bytes arrive), beyond that it doubles as
    /// they do, so a lying prefix costs no more than the bytes sent. Bytes
    /// after the buffer are left to `skip_rest`, as the decoder leaves them.
    pub fn read_vec(&mut self) -> Result<Vec<u8>, String> {
        let len = byte_buffer::take_len(|| self.next_byte())?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n as u64 <= self.remaining)
            .ok_or_else(|| byte_buffer::too_long(len, self.remaining))?;
        let mut vec = Vec::new();
        vec.try_reserve_exact(len.min(VEC_RESERVE_MAX))
            .map_err(|e| format!("reserving {len} bytes for the argument: {e}"))?;
        let buffered = self.input.buffer();
        let k = buffered.len().min(len);
        vec.extend_from_slice(&buffered[..k]);
        self.input.consume(k);
        self.remaining -= k as u64;
        let fd = self.input.get_ref().as_raw_fd();
        while vec.len() < len {
            let want = (len - vec.len()).min(vec.capacity().max(RESERVE_AHEAD));
            match sys::read_into(fd, &mut vec, want).map_err(|e| e.to_string())? {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).to_string()),
                n => self.remaining -= n as u64,
            }
        }
        Ok(vec)
    }

    /// The argument's next byte (None: the argument or the pipe ended).
    fn next_byte(&mut self) -> Option<u8> {
        if self.remaining == 0 {
            return None;
        }
        let mut byte = [0u8; 1];
        self.input.read_exact(&mut byte).ok()?;
        self.remaining -= 1;
        Some(byte[0])
    }

    /// Skips what the decoder left of the argument (after a decoding
    /// error), to stay in step with the frames.
    pub fn skip_rest(&mut self) -> io::Result<()> {
        let copied = io::copy(
            &mut self.input.by_ref().take(self.remaining),
            &mut io::sink(),
        )?;
        self.remaining -= copied;
        if self.remaining == 0 {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read end of a pipe that held `bytes` and was then closed.
    fn closed_pipe_with(bytes: &[u8]) -> BufReader<File> {
        let (r, w) = crate::sys::pipe_cloexec().unwrap();
        let mut w = File::from(w);
        std::io::Write::write_all(&mut w, bytes).unwrap();
        drop(w);
        BufReader::with_capacity(16, File::from(r))
    }

    #[test]
    fn a_huge_announced_length_is_not_reserved_before_its_bytes_arrive() {
        // A frame header may announce up to 4 GiB; 100 bytes arrive, then
        // the pipe closes.
        let mut input = closed_pipe_with(&[7; 100]);
        let mut buf = Vec::new();
        let mut arg = ArgReader::new(&mut input, u64::from(u32::MAX) - 24, &mut buf);
        let err = arg.read_all().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            buf.capacity() <= 2 * RESERVE_AHEAD,
            "reserved {} bytes for 100 that arrived",
            buf.capacity()
        );
    }

    /// The fuzz target's small limits reach what the worker's reach only
    /// past 1 MiB and 64 MiB: the growth in steps, and the drop of a buffer
    /// too big to keep.
    #[test]
    fn small_limits_grow_in_steps_and_drop_a_big_buffer() {
        let limits = BufferLimits {
            reserve_ahead: 16,
            keep_max: 256,
        };
        let big: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut input = closed_pipe_with(&[&big[..], &[9; 10]].concat());
        let mut buf = Vec::new();
        let mut arg = ArgReader::with_limits(&mut input, 300, &mut buf, limits);
        assert_eq!(arg.read_all().unwrap(), &big[..]);
        assert!(buf.capacity() > limits.keep_max);
        let mut arg = ArgReader::with_limits(&mut input, 10, &mut buf, limits);
        assert_eq!(arg.read_all().unwrap(), &[9; 10]);
        assert!(
            buf.capacity() <= limits.keep_max,
            "a {}-byte buffer was kept past the limit",
            buf.capacity()
        );
    }

    /// `read_vec` parses the length prefix itself: on the edges of the
    /// varint and of the length it agrees with serde's decoding of a
    /// `Vec<u8>` (the fuzz target `pool_frames` checks the same on any
    /// bytes).
    #[test]
    fn read_vec_agrees_with_serde_on_the_edges() {
        let mut longest_ok = vec![0x80u8; 9];
        longest_ok.push(0); // ten bytes, value 0: postcard accepts it
        let mut too_big = vec![0xffu8; 9];
        too_big.push(2); // past 64 bits
        let cases: [&[u8]; 8] = [
            &[0],
            &[3, 1, 2, 3],
            &[3, 1, 2],
            &[2, 9, 9, 7, 7],
            &[0x80],
            &[0x80, 0x01, 5],
            &longest_ok,
            &too_big,
        ];
        for arg in cases {
            for buffer in [1, 2, 64] {
                let (ours, serde) = crate::fuzz_api::byte_vector_arg(arg, buffer).unwrap();
                assert_eq!(
                    ours.ok(),
                    serde.ok(),
                    "{arg:?} through a {buffer}-byte buffer"
                );
            }
        }
    }

    #[test]
    fn an_argument_bigger_than_the_reserve_step_is_read_whole() {
        let bytes: Vec<u8> = (0..3 * RESERVE_AHEAD + 5).map(|i| i as u8).collect();
        let mut input = closed_pipe_with(&[]);
        let (r, w) = crate::sys::pipe_cloexec().unwrap();
        let writer = std::thread::spawn({
            let bytes = bytes.clone();
            move || std::io::Write::write_all(&mut File::from(w), &bytes).unwrap()
        });
        *input.get_mut() = File::from(r);
        let mut buf = Vec::new();
        let mut arg = ArgReader::new(&mut input, bytes.len() as u64, &mut buf);
        assert_eq!(arg.read_all().unwrap(), &bytes[..]);
        assert_eq!(arg.remaining(), 0);
        writer.join().unwrap();
    }
}
