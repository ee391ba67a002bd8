//! The worker's reader for one task's argument, straight off the task pipe.
//!
//! The argument is the rest of a `TASK` frame: `remaining` bytes of the
//! pipe. bincode decodes it through this reader (a `BincodeRead`). Its one
//! trick is its `BincodeRead::get_byte_buffer`, which bincode calls for byte
//! buffers (`serde_bytes::ByteBuf`, `Vec<u8>` with `serde_bytes`): it
//! allocates the buffer at its final size and has the kernel `read` the
//! bytes straight into it, uninitialised. bincode's own reader zero-fills
//! the buffer first, which for a 16 MiB argument is 16 MiB of memory
//! traffic for nothing. Everything else (integers, short strings) goes
//! through the worker's `BufReader`, so small arguments cost no extra
//! system call.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsRawFd;

use serde::de::Visitor;

use crate::sys;

/// Reads at most `remaining` bytes (one argument) from the task pipe.
pub(crate) struct ArgReader<'a> {
    input: &'a mut BufReader<File>,
    remaining: u64,
    /// Scratch space for strings and borrowed byte slices.
    temp: Vec<u8>,
}

impl<'a> ArgReader<'a> {
    pub fn new(input: &'a mut BufReader<File>, len: u64) -> Self {
        ArgReader {
            input,
            remaining: len,
            temp: Vec::new(),
        }
    }

    /// Bytes of the argument not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
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

    /// Reads exactly `len` bytes into `self.temp`.
    fn fill_temp(&mut self, len: usize) -> bincode::Result<()> {
        self.temp.clear();
        self.temp.resize(len, 0);
        let mut temp = std::mem::take(&mut self.temp);
        let r = self.read_exact(&mut temp);
        self.temp = temp;
        r.map_err(Into::into)
    }
}

impl Read for ArgReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.input.read(&mut buf[..max])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl<'de> bincode::BincodeRead<'de> for &mut ArgReader<'_> {
    fn forward_read_str<V: Visitor<'de>>(
        &mut self,
        length: usize,
        visitor: V,
    ) -> bincode::Result<V::Value> {
        self.fill_temp(length)?;
        match std::str::from_utf8(&self.temp) {
            Ok(s) => visitor.visit_str(s),
            Err(e) => Err(bincode::ErrorKind::InvalidUtf8Encoding(e).into()),
        }
    }

    fn get_byte_buffer(&mut self, length: usize) -> bincode::Result<Vec<u8>> {
        if length as u64 > self.remaining {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let mut out = Vec::with_capacity(length);
        // First what the BufReader already holds...
        let buffered = self.input.buffer();
        let k = buffered.len().min(length);
        out.extend_from_slice(&buffered[..k]);
        self.input.consume(k);
        // ...then the rest straight from the pipe, into `out`'s spare,
        // uninitialised capacity (the BufReader's buffer is empty now, so
        // reading the descriptor directly keeps the bytes in order).
        let fd = self.input.get_ref().as_raw_fd();
        while out.len() < length {
            let want = length - out.len();
            match sys::read_into(fd, &mut out, want) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.remaining -= length as u64;
        Ok(out)
    }

    fn forward_read_bytes<V: Visitor<'de>>(
        &mut self,
        length: usize,
        visitor: V,
    ) -> bincode::Result<V::Value> {
        self.fill_temp(length)?;
        visitor.visit_bytes(&self.temp)
    }
}
