//! The frame format on the pipes between the pool and its workers.
//!
//! A pipe is a byte stream; frames cut it into messages. Every frame is
//!
//! ```text
//! +----------------------+--------+------------------------+
//! | body length: u32 LE  | kind u8| body (length bytes)    |
//! +----------------------+--------+------------------------+
//! ```
//!
//! | kind | direction | body |
//! |---|---|---|
//! | `TASK` (1) | pool -> worker | task id u64, trampoline address u64, function address u64, encoded argument |
//! | `READY` (2) | worker -> pool | empty: the initializer (if any) finished |
//! | `RESULT` (3) | worker -> pool | task id u64, outcome tag u8, the task's cost (41 bytes, see `cost`), outcome data (see `codec`) |
//! | `INIT_FAILED` (4) | worker -> pool | the initializer's panic message, UTF-8 |
//!
//! All integers are little endian. A reader never trusts a header: a length
//! above the configured cap, an unknown kind, or a stream that ends inside a
//! frame is a [`FrameError`], which the pool turns into an error naming the
//! worker. No header can make the reader allocate more than the cap, loop,
//! or block forever.

use std::fmt;
use std::ops::Range;

/// Bytes in a frame header.
pub(crate) const HEADER_LEN: usize = 5;

/// A task for a worker.
pub(crate) const TASK: u8 = 1;
/// The worker is ready (its initializer ran).
pub(crate) const READY: u8 = 2;
/// The outcome of one task.
pub(crate) const RESULT: u8 = 3;
/// The worker's initializer panicked; the worker exits after sending this.
pub(crate) const INIT_FAILED: u8 = 4;

/// The default cap on one frame's body: 1 GiB. Bigger frames are refused on
/// both sides.
pub const DEFAULT_MAX_FRAME: usize = 1 << 30;

/// A malformed or truncated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The header announced a body bigger than the cap.
    TooLarge {
        /// The announced length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The header's kind byte is not a known kind (or not allowed here).
    UnknownKind(u8),
    /// The stream ended inside a frame.
    Truncated {
        /// Bytes of the frame that arrived.
        have: usize,
        /// Bytes the frame needed (at least).
        need: usize,
    },
    /// The body is too short or inconsistent for its kind.
    BadBody(&'static str),
    /// A streamed result's body was not the length its header announced:
    /// the result's `Serialize` impl wrote a different number of bytes than
    /// in its size pass (or failed part-way). Only that task fails.
    LengthMismatch {
        /// The body length the header announced.
        announced: u64,
        /// What the encoder really produced (up to one byte past the
        /// announced length, where the worker stopped it).
        written: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the {max}-byte cap")
            }
            FrameError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::Truncated { have, need } => write!(
                f,
                "stream ended inside a frame ({have} of at least {need} bytes arrived)"
            ),
            FrameError::BadBody(what) => write!(f, "malformed frame body: {what}"),
            FrameError::LengthMismatch { announced, written } => write!(
                f,
                "result length mismatch: the header announced {announced} bytes, \
                 the encoder wrote {written} (a Serialize impl whose output changes between runs)"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Starts a frame of `kind` in `out`: reserves the header, to be completed by
/// [`finish_frame`] once the body is written after it. Returns the frame's
/// start offset.
pub(crate) fn begin_frame(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    start
}

/// Writes the body length into the header started at `start`.
pub(crate) fn finish_frame(out: &mut [u8], start: usize, max: usize) -> Result<(), FrameError> {
    let len = out.len() - start - HEADER_LEN;
    if len > max || len > u32::MAX as usize {
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// A receive buffer that yields whole frames out of a byte stream.
///
/// Bytes are appended at the end (by `sys::read_into`); complete frames are
/// taken from the front. The consumed prefix is dropped lazily so that a
/// stream of small frames costs no copying.
#[derive(Default)]
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
}

/// One complete frame inside a [`FrameBuf`].
pub(crate) struct Frame {
    pub kind: u8,
    pub body: Range<usize>,
}

impl FrameBuf {
    /// The next complete frame, if the buffer holds one. The frame stays in
    /// the buffer until [`FrameBuf::consume`].
    pub fn next_frame(&self, max: usize) -> Result<Option<Frame>, FrameError> {
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > max {
            return Err(FrameError::TooLarge { len, max });
        }
        let kind = avail[4];
        if !(TASK..=INIT_FAILED).contains(&kind) {
            return Err(FrameError::UnknownKind(kind));
        }
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body_start = self.start + HEADER_LEN;
        Ok(Some(Frame {
            kind,
            body: body_start..body_start + len,
        }))
    }

    /// The bytes of a frame returned by `next_frame`.
    pub fn body(&self, frame: &Frame) -> &[u8] {
        &self.buf[frame.body.clone()]
    }

    /// Drops a frame returned by `next_frame` from the front.
    pub fn consume(&mut self, frame: &Frame) {
        self.start = frame.body.end;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// How many bytes to ask the next `read` for: the rest of the frame in
    /// progress when its header is known (so a 16 MiB frame arrives in few,
    /// large reads), else a modest default. Also compacts the buffer.
    pub fn want(&mut self, max: usize) -> usize {
        const DEFAULT: usize = 256 * 1024;
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let avail = &self.buf[self.start..];
        if avail.len() >= HEADER_LEN {
            let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
            let need = (HEADER_LEN + len.min(max)).saturating_sub(avail.len());
            need.max(DEFAULT)
        } else {
            DEFAULT
        }
    }

    /// The vector to read into (see `sys::read_into`).
    pub fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes of an incomplete frame left over (at end of stream: a
    /// truncation), with the size that frame needed.
    pub fn leftover(&self) -> Option<FrameError> {
        let avail = &self.buf[self.start..];
        if avail.is_empty() {
            return None;
        }
        let need = if avail.len() >= HEADER_LEN {
            HEADER_LEN + u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize
        } else {
            HEADER_LEN
        };
        Some(FrameError::Truncated {
            have: avail.len(),
            need,
        })
    }
}

/// Reads little-endian integers off the front of a frame body.
pub(crate) struct BodyReader<'a> {
    rest: &'a [u8],
}

impl<'a> BodyReader<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        BodyReader { rest: body }
    }

    pub fn u64(&mut self) -> Result<u64, FrameError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or(FrameError::BadBody("body shorter than its fixed fields"))?;
        self.rest = rest;
        Ok(u64::from_le_bytes(*head))
    }

    pub fn u8(&mut self) -> Result<u8, FrameError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(FrameError::BadBody("body shorter than its fixed fields"))?;
        self.rest = rest;
        Ok(b)
    }

    /// A u32-length-prefixed UTF-8 string (invalid UTF-8 is replaced).
    pub fn string(&mut self) -> Result<String, FrameError> {
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(FrameError::BadBody("string length missing"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(FrameError::BadBody("string longer than the frame"));
        }
        let (s, rest) = rest.split_at(len);
        self.rest = rest;
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// Bytes of a `TASK` frame before its argument: the header and the three
/// fixed fields.
pub(crate) const TASK_PREFIX_LEN: usize = HEADER_LEN + 24;

/// The fixed part of a `TASK` frame, as the worker reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskHeader {
    /// The task id, with `fd_passing::FDS_BIT` if descriptors go with it.
    pub id: u64,
    /// The trampoline's address.
    pub trampoline: u64,
    /// The task function's address.
    pub function: u64,
    /// Bytes of the encoded argument that follow.
    pub arg_len: u64,
}

/// Reads the fixed part of a `TASK` frame; any other kind, or a body too
/// short for the fixed fields, is an error. The argument's length is the
/// header's u32 minus the fixed fields, so at most 4 GiB (the pool never
/// sends more than its `max_frame_bytes`).
pub(crate) fn parse_task_header(prefix: &[u8; TASK_PREFIX_LEN]) -> Result<TaskHeader, FrameError> {
    let len = u64::from(u32::from_le_bytes([
        prefix[0], prefix[1], prefix[2], prefix[3],
    ]));
    if prefix[4] != TASK {
        return Err(FrameError::UnknownKind(prefix[4]));
    }
    let arg_len = len.checked_sub(24).ok_or(FrameError::BadBody(
        "a task frame shorter than its fixed fields",
    ))?;
    let mut fixed = BodyReader::new(&prefix[HEADER_LEN..]);
    Ok(TaskHeader {
        id: fixed.u64()?,
        trampoline: fixed.u64()?,
        function: fixed.u64()?,
        arg_len,
    })
}

/// Appends a u32-length-prefixed string (the inverse of [`BodyReader::string`]).
pub(crate) fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_frame(&mut out, kind);
        out.extend_from_slice(body);
        finish_frame(&mut out, start, DEFAULT_MAX_FRAME).unwrap();
        out
    }

    #[test]
    fn frames_round_trip_byte_by_byte() {
        let mut stream = frame(RESULT, b"hello");
        stream.extend(frame(READY, b""));
        let mut fb = FrameBuf::default();
        let mut got = Vec::new();
        for &b in &stream {
            fb.vec_mut().push(b);
            while let Some(f) = fb.next_frame(100).unwrap() {
                got.push((f.kind, fb.body(&f).to_vec()));
                fb.consume(&f);
            }
        }
        assert_eq!(got, vec![(RESULT, b"hello".to_vec()), (READY, vec![])]);
        assert!(fb.leftover().is_none());
    }

    #[test]
    fn oversized_unknown_and_truncated_frames_are_errors() {
        let mut fb = FrameBuf::default();
        fb.vec_mut()
            .extend_from_slice(&[0xff, 0xff, 0xff, 0xff, RESULT]);
        assert_eq!(
            fb.next_frame(1024).err(),
            Some(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 1024
            })
        );

        let mut fb = FrameBuf::default();
        fb.vec_mut().extend_from_slice(&[1, 0, 0, 0, 99, 0]);
        assert_eq!(fb.next_frame(1024).err(), Some(FrameError::UnknownKind(99)));

        let mut fb = FrameBuf::default();
        fb.vec_mut().extend_from_slice(&[10, 0, 0, 0, RESULT, 1, 2]);
        assert!(fb.next_frame(1024).unwrap().is_none());
        assert_eq!(
            fb.leftover(),
            Some(FrameError::Truncated { have: 7, need: 15 })
        );
    }

    #[test]
    fn finish_refuses_bodies_over_the_cap() {
        let mut out = Vec::new();
        let start = begin_frame(&mut out, TASK);
        out.extend_from_slice(&[0; 11]);
        assert_eq!(
            finish_frame(&mut out, start, 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn task_headers_are_checked() {
        let mut body = Vec::new();
        for field in [7u64, 8, 9] {
            body.extend_from_slice(&field.to_le_bytes());
        }
        body.extend_from_slice(b"arg");
        let wire = frame(TASK, &body);
        let prefix: &[u8; TASK_PREFIX_LEN] = wire[..TASK_PREFIX_LEN].try_into().unwrap();
        let header = parse_task_header(prefix).unwrap();
        assert_eq!(
            (
                header.id,
                header.trampoline,
                header.function,
                header.arg_len
            ),
            (7, 8, 9, 3)
        );
        let mut short = *prefix;
        short[..4].copy_from_slice(&23u32.to_le_bytes());
        assert!(matches!(
            parse_task_header(&short),
            Err(FrameError::BadBody(_))
        ));
        let mut result = *prefix;
        result[4] = RESULT;
        assert_eq!(
            parse_task_header(&result),
            Err(FrameError::UnknownKind(RESULT))
        );
    }

    #[test]
    fn body_reader_checks_lengths() {
        let mut body = 7u64.to_le_bytes().to_vec();
        body.push(3);
        put_string(&mut body, "héllo");
        let mut r = BodyReader::new(&body);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.u8().unwrap(), 3);
        assert_eq!(r.string().unwrap(), "héllo");
        assert!(r.u8().is_err());
        let mut r = BodyReader::new(&[255, 0, 0, 0, b'x']);
        assert!(r.string().is_err());
    }
}
