//! The worker's reader for one task's argument, straight off the task pipe.
//!
//! The argument is the rest of a `TASK` frame: `remaining` bytes of the
//! pipe. [`ArgReader::read_all`] reads it whole into a buffer kept for the
//! next task: first what the worker's `BufReader` already holds (small
//! pipelined tasks cost no extra system call), then the rest straight from
//! the descriptor into the buffer's spare capacity, uninitialised, so a big
//! argument is copied by the kernel once and never zero-filled. The codec
//! then decodes from that buffer.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;

use crate::sys;

/// Buffers bigger than this are not kept between tasks.
const KEEP_MAX: usize = 64 << 20;

/// Reads at most `remaining` bytes (one argument) from the task pipe.
pub(crate) struct ArgReader<'a> {
    input: &'a mut BufReader<File>,
    remaining: u64,
    buf: &'a mut Vec<u8>,
}

impl<'a> ArgReader<'a> {
    /// A reader of the next `len` bytes of `input`; `buf` is scratch space
    /// kept between tasks.
    pub fn new(input: &'a mut BufReader<File>, len: u64, buf: &'a mut Vec<u8>) -> Self {
        ArgReader {
            input,
            remaining: len,
            buf,
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
        if self.buf.capacity() > KEEP_MAX {
            *self.buf = Vec::new();
        }
        self.buf.clear();
        self.buf.reserve(length);
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
            let want = length - self.buf.len();
            match sys::read_into(fd, self.buf, want)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.remaining -= n as u64,
            }
        }
        Ok(self.buf)
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
