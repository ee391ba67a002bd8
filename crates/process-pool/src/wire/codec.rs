//! What crosses the pipe: encoded values, and the trampolines that turn bytes
//! into a call of a plain `fn(A) -> R` and back.
//!
//! # Functions as addresses
//!
//! Workers are `fork()`ed (never `exec()`ed) from the fork server, which is
//! itself a fork of this process: every worker runs the *same program image at
//! the same addresses*. So a function pointer of the parent is a valid
//! function pointer in the worker, and the pool sends a task as two addresses:
//!
//! * the user's function `f: fn(A) -> R`, and
//! * a *trampoline* `run_plain::<A, R>`, monomorphised for the task's types:
//!   it knows how to decode an `A`, call `f`, and encode the outcome.
//!
//! The worker calls the trampoline with `f`'s address and a reader over the
//! argument's bytes (see `reader`); the trampoline writes the result frame
//! through a [`ResultWriter`].
//! Both addresses come from the parent, over a pipe only the parent can write
//! to, and both were produced by casting real `fn` items: that is the whole
//! safety argument (see [`Trampoline`]). Functions of a library loaded with
//! `dlopen` *after* the fork server started do not exist in the workers:
//! don't submit those.
//!
//! # Values
//!
//! Arguments and results are encoded with serde and `postcard` 1 (varint
//! integers and lengths, a documented, stable wire format; `bincode` 1.3,
//! used before, is unmaintained: RUSTSEC-2025-0141). The same code runs on
//! both ends. An outcome travels as a tag byte and its data:
//!
//! | tag | meaning | data |
//! |---|---|---|
//! | `OK` (0) | the task returned a value | the encoded `R` |
//! | `FAILED` (1) | the task returned `Err(e)` | `e`'s type name, `e.to_string()` |
//! | `PANICKED` (2) | the task panicked | the panic message |
//! | `DECODE_ARGS` (3) | the argument did not decode in the worker | the decoder's message |
//! | `ENCODE_RESULT` (4) | the result did not encode in the worker | the encoder's message |
//! | `OK_STREAMED` (5) | the task returned a big value, streamed | the encoded `R`, then a status byte and the length really written (u64) |
//!
//! Every step in the worker runs under `catch_unwind`, so a panicking
//! `Deserialize` or `Serialize` impl is reported like any other failure and
//! the worker lives on.
//!
//! In the worker, the argument is read whole into a reused buffer (the
//! kernel writes it there directly) and decoded from it; a result over
//! 256 KiB is encoded straight into the pipe after a size pass, with a trailer that says whether the two runs of its
//! `Serialize` agreed (see [`ResultWriter`]). The parent encodes into and
//! decodes from whole frames.

use std::io::Write;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use future::{panic_message, DynError, TaskError};
use serde::de::{DeserializeOwned, DeserializeSeed};
use serde::Serialize;

use crate::child::reader::ArgReader;
use crate::error::CodecStage;
use crate::parent::task::codec_error;
use crate::wire::byte_buffer;
use crate::wire::cost::{Cost, Meter, COST_LEN};
use crate::wire::fd_passing;
use crate::wire::frame::{self, put_string, BodyReader, FrameError};
use crate::wire::keep_message::{capture, Seed, Val};

/// The task returned a value.
pub(crate) const OK: u8 = 0;
/// The task returned an error.
pub(crate) const FAILED: u8 = 1;
/// The task panicked.
pub(crate) const PANICKED: u8 = 2;
/// The argument could not be decoded in the worker.
pub(crate) const DECODE_ARGS: u8 = 3;
/// The result could not be encoded in the worker.
pub(crate) const ENCODE_RESULT: u8 = 4;
/// The task returned a value, streamed: the encoded `R`, then a trailer
/// (see [`ResultWriter`]).
pub(crate) const OK_STREAMED: u8 = 5;

/// A monomorphised task runner, executed in the worker:
/// `(address of the user's fn, the argument's bytes, where the result goes)`.
/// It reads the argument from the reader (exactly the argument's bytes are
/// available) and writes exactly one result frame through the writer.
///
/// # Safety
///
/// The `usize` must be the address of a function whose type is exactly the
/// one the trampoline was instantiated for (`fn(A) -> R` for `run_plain::<A,
/// R>`), in this same program image. The pool guarantees it by building both
/// addresses together, in `submit`, from typed `fn` pointers.
pub(crate) type Trampoline = unsafe fn(usize, &mut ArgReader<'_>, &mut ResultWriter<'_>);

/// Encodes `value` at the end of `out`. A failing `Serialize` impl's error
/// is its own message (see `keep_message`). A byte buffer is copied in
/// whole (see `byte_buffer`).
pub(crate) fn encode<T: Serialize + 'static>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    if let Some(bytes) = byte_buffer::as_bytes(value) {
        byte_buffer::put_len(out, bytes.len());
        out.extend_from_slice(bytes);
        return Ok(());
    }
    let (encoded, custom) = capture(|| postcard::to_io(&Val(value), out).map(|_| ()));
    encoded.map_err(|e| message(e, custom))
}

/// Decodes a `T` from `bytes` (trailing bytes are ignored). A length
/// prefix longer than the bytes left is an error, never an allocation. A
/// failing `Deserialize` impl's error is its own message. A byte buffer is
/// copied out whole (see `byte_buffer`).
pub(crate) fn decode<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<T, String> {
    if byte_buffer::is_byte_buffer::<T>() {
        return byte_buffer::decode(bytes);
    }
    let (decoded, custom) = capture(|| {
        let mut de = postcard::Deserializer::from_bytes(bytes);
        Seed(PhantomData::<T>).deserialize(&mut de)
    });
    decoded.map_err(|e| message(e, custom))
}

/// The text of a codec error: a user's impl's own message when it raised a
/// custom error (postcard's own text for that is only "Serde
/// (De)Serialization Error"), else postcard's.
fn message(error: postcard::Error, custom: Option<String>) -> String {
    match (error, custom) {
        (postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom, Some(m)) => m,
        (error, _) => error.to_string(),
    }
}

/// Decodes a `T` from the argument reader: the argument is read whole into
/// the reader's buffer (the kernel writes it there directly), then decoded.
/// A byte buffer is read straight into its own vector instead (see
/// `byte_buffer`).
pub(crate) fn decode_from<T: DeserializeOwned + 'static>(
    input: &mut ArgReader<'_>,
) -> Result<T, String> {
    if byte_buffer::is_byte_buffer::<T>() {
        return byte_buffer::from_vec(input.read_vec()?).ok_or_else(byte_buffer::not_a_byte_buffer);
    }
    let bytes = input.read_all().map_err(|e| e.to_string())?;
    decode(bytes)
}

/// The encoded size of `value`: a pass of its `Serialize` that writes nothing.
fn encoded_size<T: Serialize + ?Sized>(value: &T) -> Result<u64, String> {
    let (size, custom) = capture(|| {
        postcard::serialize_with_flavor(&Val(value), postcard::ser_flavors::Size::default())
    });
    size.map(|n: usize| n as u64)
        .map_err(|e| message(e, custom))
}

/// Results up to this size are encoded into a buffer and written with one
/// `write`; bigger ones are streamed to the pipe as they are encoded, so the
/// bytes of a large buffer go from the value's own memory to the pipe.
const STREAM_MIN: u64 = 256 * 1024;

/// The trailer of a streamed result: a status byte and the number of bytes
/// the encoder really produced (u64 LE).
pub(crate) const TRAILER_LEN: usize = 9;
/// Trailer status: the body is exactly the value, as announced.
pub(crate) const STREAM_OK: u8 = 0;
/// Trailer status: the encoder wrote a different length than its size pass
/// said (the body was padded or cut to the announced length).
pub(crate) const STREAM_MISMATCH: u8 = 1;
/// Trailer status: the encoder failed or panicked part-way (after a
/// successful size pass); the body was padded to the announced length.
pub(crate) const STREAM_FAILED: u8 = 2;

/// Writes one `RESULT` frame per task to the worker's result pipe.
///
/// # The length sent is the length written
///
/// A frame's header carries its body length, so a result must be sized
/// before it is sent. A small result is encoded into a buffer first and
/// the header is patched from what was really written. A big one is
/// streamed: its size comes from a size pass and the body from a second
/// run of the `Serialize` impl, which is user code and may produce a
/// different length. So a streamed body goes through a [`Bounded`] writer
/// that stops it at the announced length and pads it if it falls short,
/// and a trailer after it says whether the two runs agreed ([`STREAM_OK`],
/// [`STREAM_MISMATCH`], [`STREAM_FAILED`]). The frame is always exactly as
/// long as announced, the stream stays in step, and the pool fails that one
/// task (a `ProtocolError` naming the worker for a mismatch).
pub(crate) struct ResultWriter<'a> {
    sink: &'a mut dyn Write,
    buf: Vec<u8>,
    id: u64,
    /// The clock and CPU readings taken when the task began.
    meter: Meter,
    /// Writing failed: the pool is gone.
    pub broken: bool,
}

/// The outcome of [`ResultWriter::value`].
pub(crate) enum Sent {
    /// The frame was written (or the pipe is broken: see `broken`).
    Done,
    /// Encoding failed before anything was written: report it instead.
    Refused(String),
}

/// A writer that passes at most `left` bytes on and counts what it was given.
struct Bounded<W: Write> {
    inner: W,
    left: u64,
    /// Bytes the encoder produced (counting one past the limit, at most).
    written: u64,
    /// The encoder tried to write past the announced length.
    overflow: bool,
    /// The pipe itself failed.
    io_failed: bool,
}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if data.len() as u64 > self.left {
            self.overflow = true;
            self.written += self.left + 1;
            return Err(std::io::Error::other("past the announced length"));
        }
        match self.inner.write_all(data) {
            Ok(()) => {
                self.left -= data.len() as u64;
                self.written += data.len() as u64;
                Ok(data.len())
            }
            Err(e) => {
                self.io_failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().inspect_err(|_| self.io_failed = true)
    }
}

impl<'a> ResultWriter<'a> {
    pub fn new(sink: &'a mut dyn Write) -> Self {
        ResultWriter {
            sink,
            buf: Vec::new(),
            id: 0,
            meter: Meter::default(),
            broken: false,
        }
    }

    /// Sets the id of the task whose result comes next.
    /// Also starts measuring the task (see `cost`); its CPU times and
    /// peak RSS too if `measure`.
    pub fn begin(&mut self, id: u64, measure: bool) {
        self.id = id;
        self.meter = Meter::start(measure);
    }

    /// Starts the frame: header, id, tag and the task's cost, measured
    /// now (after the task and the size pass of its result).
    fn start(&mut self, tag: u8, body_len: usize) {
        let cost = self.meter.finish();
        self.buf.clear();
        self.buf
            .extend_from_slice(&((body_len + 9 + COST_LEN) as u32).to_le_bytes());
        self.buf.push(frame::RESULT);
        self.buf.extend_from_slice(&self.id.to_le_bytes());
        self.buf.push(tag);
        cost.write(&mut self.buf);
    }

    fn send(&mut self) {
        if self.sink.write_all(&self.buf).is_err() {
            self.broken = true;
        }
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
    }

    /// An outcome made of strings (errors, panics).
    pub fn strings(&mut self, tag: u8, strings: &[&str]) {
        let len = strings.iter().map(|s| 4 + s.len()).sum();
        self.start(tag, len);
        for s in strings {
            put_string(&mut self.buf, s);
        }
        self.send();
    }

    /// The task's value.
    pub fn value<R: Serialize + 'static>(&mut self, value: &R) -> Sent {
        if let Some(bytes) = byte_buffer::as_bytes(value) {
            return self.bytes(bytes);
        }
        // A size pass first: it runs the Serialize impl once without
        // writing, so that most failures are known before the header is,
        // and it picks buffered or streamed.
        let size = match encoded_size(value) {
            Ok(size) => size,
            Err(e) => return Sent::Refused(e),
        };
        let limit = u32::MAX as u64 - (9 + COST_LEN + TRAILER_LEN) as u64;
        if size > limit {
            return Sent::Refused(format!(
                "the encoded result ({size} bytes) exceeds the 4 GiB frame limit"
            ));
        }
        if size <= STREAM_MIN {
            self.start(OK, 0);
            if let Err(e) = encode(value, &mut self.buf) {
                return Sent::Refused(e);
            }
            // The header says what was written, whatever the size pass said.
            let body = self.buf.len() - frame::HEADER_LEN;
            if body as u64 > u32::MAX as u64 {
                return Sent::Refused(format!(
                    "the encoded result ({body} bytes) exceeds the 4 GiB frame limit"
                ));
            }
            self.buf[..4].copy_from_slice(&(body as u32).to_le_bytes());
            self.send();
            return Sent::Done;
        }
        self.stream(value, size);
        Sent::Done
    }

    /// A byte buffer (see `byte_buffer`): its length is known exactly and
    /// no user code runs, so it goes out as a plain `OK` frame: the header
    /// and the length prefix, then the bytes from the value's own memory
    /// in one write (no size pass, no buffer, no trailer).
    fn bytes(&mut self, bytes: &[u8]) -> Sent {
        let mut prefix = Vec::with_capacity(byte_buffer::MAX_VARINT);
        byte_buffer::put_len(&mut prefix, bytes.len());
        let body = (9 + COST_LEN + prefix.len()) as u64 + bytes.len() as u64;
        if body > u32::MAX as u64 {
            return Sent::Refused(format!(
                "the encoded result ({body} bytes) exceeds the 4 GiB frame limit"
            ));
        }
        self.start(OK, prefix.len() + bytes.len());
        self.buf.extend_from_slice(&prefix);
        self.send();
        if !self.broken && self.sink.write_all(bytes).is_err() {
            self.broken = true;
        }
        Sent::Done
    }

    /// Streams a big value as an `OK_STREAMED` frame of exactly `size`
    /// body bytes plus the trailer (see the type's docs).
    fn stream<R: Serialize>(&mut self, value: &R, size: u64) {
        self.start(OK_STREAMED, size as usize + TRAILER_LEN);
        self.send();
        if self.broken {
            return;
        }
        let mut out = Bounded {
            inner: std::io::BufWriter::with_capacity(64 * 1024, &mut *self.sink),
            left: size,
            written: 0,
            overflow: false,
            io_failed: false,
        };
        // The encoder runs user code: a panic part-way is reported like an
        // error, after the frame is completed.
        let encoded = catch_unwind(AssertUnwindSafe(|| {
            postcard::to_io(&Val(value), &mut out).map(|_| ())
        }));
        let status = match encoded {
            Ok(Ok(())) if out.written == size => STREAM_OK,
            Ok(Ok(())) => STREAM_MISMATCH,
            Ok(Err(_)) if out.overflow => STREAM_MISMATCH,
            Ok(Err(_)) | Err(_) => STREAM_FAILED,
        };
        if out.io_failed {
            self.broken = true;
            return;
        }
        // Pad to the announced length, then the trailer.
        let zeros = [0u8; 4096];
        while out.left > 0 {
            let n = out.left.min(zeros.len() as u64) as usize;
            if out.inner.write_all(&zeros[..n]).is_err() {
                self.broken = true;
                return;
            }
            out.left -= n as u64;
        }
        let mut trailer = [0u8; TRAILER_LEN];
        trailer[0] = status;
        trailer[1..].copy_from_slice(&out.written.to_le_bytes());
        if out.inner.write_all(&trailer).is_err() || out.inner.flush().is_err() {
            self.broken = true;
        }
    }
}

/// The trampoline for `fn(A) -> R`.
///
/// # Safety
///
/// `f` must be the address of a `fn(A) -> R` (see [`Trampoline`]).
pub(crate) unsafe fn run_plain<A, R>(
    f: usize,
    input: &mut ArgReader<'_>,
    out: &mut ResultWriter<'_>,
) where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    // SAFETY: the caller guarantees `f` is the address of a `fn(A) -> R`;
    // fn pointers and usize have the same size on every supported target.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    run_task(input, out, |a: A| Ok(f(a)));
}

/// The trampoline for `fn(A) -> Result<R, E>`: `Err(e)` travels as `e`'s type
/// name and message.
///
/// # Safety
///
/// `f` must be the address of a `fn(A) -> Result<R, E>` (see [`Trampoline`]).
pub(crate) unsafe fn run_fallible<A, R, E>(
    f: usize,
    input: &mut ArgReader<'_>,
    out: &mut ResultWriter<'_>,
) where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    // SAFETY: as in `run_plain`, for the type `fn(A) -> Result<R, E>`.
    let f: fn(A) -> Result<R, E> =
        unsafe { std::mem::transmute::<usize, fn(A) -> Result<R, E>>(f) };
    run_task(input, out, |a: A| {
        f(a).map_err(|e| {
            let message = e.to_string();
            (DynError::new(e).type_name().to_string(), message)
        })
    });
}

/// The trampoline for a `map` chunk: `Vec<A>` in, `Vec<R>` out, `f` applied
/// to each item in order. A panic anywhere fails the whole chunk (as a
/// Python exception does).
///
/// # Safety
///
/// `f` must be the address of a `fn(A) -> R` (see [`Trampoline`]).
pub(crate) unsafe fn run_chunk<A, R>(
    f: usize,
    input: &mut ArgReader<'_>,
    out: &mut ResultWriter<'_>,
) where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    // SAFETY: as in `run_plain`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    run_task(input, out, |items: Vec<A>| {
        Ok(items.into_iter().map(f).collect::<Vec<R>>())
    });
}

/// Decode, call, encode; every step under `catch_unwind`; exactly one result
/// frame is written.
fn run_task<A, R, F>(input: &mut ArgReader<'_>, out: &mut ResultWriter<'_>, call: F)
where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
    F: FnOnce(A) -> Result<R, (String, String)>,
{
    let args = match catch_unwind(AssertUnwindSafe(|| decode_from::<A>(input))) {
        Ok(Ok(args)) => args,
        Ok(Err(msg)) => return out.strings(DECODE_ARGS, &[&msg]),
        Err(p) => {
            let msg = format!("panicked while decoding: {}", panic_message(&*p));
            return out.strings(DECODE_ARGS, &[&msg]);
        }
    };
    let outcome = match catch_unwind(AssertUnwindSafe(move || call(args))) {
        Ok(outcome) => outcome,
        Err(p) => return out.strings(PANICKED, &[&panic_message(&*p)]),
    };
    match outcome {
        Ok(value) => {
            // Encoding and dropping the value run user code too.
            let sent = catch_unwind(AssertUnwindSafe(|| {
                // SharedBytes in the value attach their descriptors to
                // the frame (see `fd_passing`; only here, not in the task).
                let sent = crate::wire::fd_passing::collecting(|| out.value(&value));
                drop(value);
                sent
            }));
            match sent {
                Ok(Sent::Done) => {}
                Ok(Sent::Refused(msg)) => out.strings(ENCODE_RESULT, &[&msg]),
                // Not part-way through a frame: `stream` catches its own.
                Err(p) => {
                    let msg = format!("panicked while encoding: {}", panic_message(&*p));
                    out.strings(ENCODE_RESULT, &[&msg]);
                }
            }
        }
        Err((type_name, message)) => out.strings(FAILED, &[&type_name, &message]),
    }
}

/// A `RESULT` frame's body, decoded (the layout is in the table above).
pub(crate) struct ResultBody<'a> {
    /// The task id, without `fd_passing::FDS_BIT`.
    pub id: u64,
    /// Descriptors were sent with this result (`fd_passing::FDS_BIT`).
    pub has_fds: bool,
    /// What the task cost, as its worker measured it (see `cost`).
    pub cost: Cost,
    /// The encoded value, or the task's error.
    pub outcome: Result<&'a [u8], TaskError>,
}

/// Decodes a `RESULT` frame's body (the parent's side of
/// [`ResultWriter`]). A pure function of the bytes, so the fuzz target
/// (`fuzz/`, through `fuzz_api`) reaches the same code the dispatcher runs.
pub(crate) fn decode_result(body: &[u8]) -> Result<ResultBody<'_>, FrameError> {
    let mut body = BodyReader::new(body);
    let id = body.u64()?;
    let has_fds = id & fd_passing::FDS_BIT != 0;
    let id = id & !fd_passing::FDS_BIT;
    let tag = body.u8()?;
    let cost = Cost::read(&mut body)?;
    let outcome: Result<&[u8], TaskError> = match tag {
        OK => Ok(body.rest()),
        OK_STREAMED => decode_streamed(body.rest())?,
        FAILED => {
            let type_name = body.string()?;
            let message = body.string()?;
            Err(TaskError::Failed(DynError::from_parts(type_name, message)))
        }
        PANICKED => Err(TaskError::Panicked(body.string()?)),
        DECODE_ARGS => Err(codec_error(CodecStage::DecodeArgs, body.string()?)),
        ENCODE_RESULT => Err(codec_error(CodecStage::EncodeResult, body.string()?)),
        _ => return Err(FrameError::BadBody("unknown outcome tag")),
    };
    Ok(ResultBody {
        id,
        has_fds,
        cost,
        outcome,
    })
}

/// An `OK_STREAMED` outcome: the value, then the trailer that says whether
/// the two runs of the result's `Serialize` agreed (see [`ResultWriter`]).
fn decode_streamed(rest: &[u8]) -> Result<Result<&[u8], TaskError>, FrameError> {
    let Some(at) = rest.len().checked_sub(TRAILER_LEN) else {
        return Err(FrameError::BadBody("a streamed result without its trailer"));
    };
    let (value, trailer) = rest.split_at(at);
    let mut written = [0u8; 8];
    written.copy_from_slice(&trailer[1..]);
    let written = u64::from_le_bytes(written);
    match trailer[0] {
        STREAM_OK => Ok(Ok(value)),
        STREAM_MISMATCH => Err(FrameError::LengthMismatch {
            announced: value.len() as u64,
            written,
        }),
        STREAM_FAILED => Ok(Err(codec_error(
            CodecStage::EncodeResult,
            format!(
                "the result's Serialize failed or panicked after {written} of \
                 {} bytes, on its second run (its size pass had succeeded)",
                value.len()
            ),
        ))),
        _ => Err(FrameError::BadBody("unknown streamed-result status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{BodyReader, FrameBuf};

    fn square(x: u64) -> u64 {
        x * x
    }

    fn parse(s: String) -> Result<u64, std::num::ParseIntError> {
        s.parse()
    }

    fn boom(_: u8) -> u8 {
        panic!("boom")
    }

    fn echo(v: Vec<u8>) -> serde_bytes::ByteBuf {
        serde_bytes::ByteBuf::from(v)
    }

    /// A buffered reader over a pipe holding `bytes` (as a worker's task
    /// pipe would), closed at the far end.
    fn pipe_with(bytes: &[u8]) -> std::io::BufReader<std::fs::File> {
        let (r, w) = crate::sys::pipe_cloexec().unwrap();
        let mut w = std::fs::File::from(w);
        std::io::Write::write_all(&mut w, bytes).unwrap();
        std::io::BufReader::new(std::fs::File::from(r))
    }

    /// Runs a trampoline in-process; returns (tag, data after the tag).
    fn run(t: Trampoline, f: usize, input: &[u8]) -> (u8, Vec<u8>) {
        let mut sink = Vec::new();
        let mut out = ResultWriter::new(&mut sink);
        out.begin(77, true);
        let mut pipe = pipe_with(input);
        let mut buf = Vec::new();
        let mut arg = ArgReader::new(&mut pipe, input.len() as u64, &mut buf);
        // SAFETY: every call below pairs a trampoline with a fn of its type.
        unsafe { t(f, &mut arg, &mut out) };
        arg.skip_rest().unwrap();
        assert!(!out.broken);
        let mut fb = FrameBuf::default();
        fb.vec_mut().extend_from_slice(&sink);
        let frame = fb.next_frame(usize::MAX).unwrap().expect("one whole frame");
        assert_eq!(frame.kind, frame::RESULT);
        assert_eq!(frame.body.end, sink.len(), "exactly one frame");
        let mut body = BodyReader::new(fb.body(&frame));
        assert_eq!(body.u64().unwrap(), 77);
        let tag = body.u8().unwrap();
        crate::wire::cost::Cost::read(&mut body).unwrap();
        (tag, body.rest().to_vec())
    }

    #[test]
    fn plain_fallible_and_panicking_tasks() {
        let mut arg = Vec::new();
        encode(&7u64, &mut arg).unwrap();
        let (tag, data) = run(
            run_plain::<u64, u64>,
            square as fn(u64) -> u64 as usize,
            &arg,
        );
        assert_eq!(tag, OK);
        assert_eq!(decode::<u64>(&data).unwrap(), 49);

        let mut arg = Vec::new();
        encode(&"x1".to_string(), &mut arg).unwrap();
        let f = parse as fn(String) -> Result<u64, std::num::ParseIntError>;
        let (tag, data) = run(
            run_fallible::<String, u64, std::num::ParseIntError>,
            f as usize,
            &arg,
        );
        assert_eq!(tag, FAILED);
        let mut r = BodyReader::new(&data);
        assert_eq!(r.string().unwrap(), "ParseIntError");
        assert_eq!(r.string().unwrap(), "invalid digit found in string");

        let (tag, data) = run(run_plain::<u8, u8>, boom as fn(u8) -> u8 as usize, &[1]);
        assert_eq!(tag, PANICKED);
        assert_eq!(BodyReader::new(&data).string().unwrap(), "boom");
    }

    #[test]
    fn undecodable_arguments_are_reported() {
        let (tag, data) = run(
            run_plain::<u64, u64>,
            square as fn(u64) -> u64 as usize,
            &[0xff, 0xff], // a varint that never ends
        );
        assert_eq!(tag, DECODE_ARGS);
        assert!(!BodyReader::new(&data).string().unwrap().is_empty());
    }

    #[test]
    fn a_huge_length_prefix_is_refused_not_allocated() {
        // A Vec<u8> claiming 2^60 bytes in a 17-byte argument.
        let mut arg = Vec::new();
        encode(&(1u64 << 60), &mut arg).unwrap();
        arg.extend_from_slice(&[0; 8]);
        let f = echo as fn(Vec<u8>) -> serde_bytes::ByteBuf;
        let (tag, _) = run(run_plain::<Vec<u8>, serde_bytes::ByteBuf>, f as usize, &arg);
        assert_eq!(tag, DECODE_ARGS);
    }

    #[test]
    fn byte_buffers_are_read_whole_past_the_reader_buffer() {
        // Larger than the pipe's reader buffer, smaller than the pipe.
        let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut arg = Vec::new();
        encode(&serde_bytes::ByteBuf::from(payload.clone()), &mut arg).unwrap();
        let mut pipe = pipe_with(&arg);
        let mut buf = Vec::new();
        let mut reader = ArgReader::new(&mut pipe, arg.len() as u64, &mut buf);
        let got: serde_bytes::ByteBuf = decode_from(&mut reader).unwrap();
        assert_eq!(got.into_vec(), payload);
        assert_eq!(reader.remaining(), 0);
    }

    /// A big value that is not itself a byte buffer (a byte buffer skips
    /// serde and streaming, see `byte_buffer`): a one-element tuple.
    fn expand(n: u64) -> (serde_bytes::ByteBuf,) {
        (serde_bytes::ByteBuf::from(
            (0..n).map(|i| i as u8).collect::<Vec<u8>>(),
        ),)
    }

    #[test]
    fn big_results_are_streamed_in_one_well_formed_frame() {
        // 1 MB: above STREAM_MIN, so encoded straight into the sink.
        let mut arg = Vec::new();
        encode(&1_000_000u64, &mut arg).unwrap();
        let f = expand as fn(u64) -> (serde_bytes::ByteBuf,);
        let (tag, data) = run(run_plain::<u64, (serde_bytes::ByteBuf,)>, f as usize, &arg);
        assert_eq!(tag, OK_STREAMED);
        let (value, trailer) = data.split_at(data.len() - TRAILER_LEN);
        assert_eq!(trailer[0], STREAM_OK);
        assert_eq!(
            u64::from_le_bytes(trailer[1..].try_into().unwrap()),
            value.len() as u64
        );
        assert_eq!(
            decode::<(serde_bytes::ByteBuf,)>(value).unwrap(),
            expand(1_000_000)
        );
    }

    /// Fails on its second run, part-way through the bytes.
    struct FailsLate(std::cell::Cell<u32>);

    impl Serialize for FailsLate {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeTuple;
            let run = self.0.get();
            self.0.set(run + 1);
            let mut t = s.serialize_tuple(2)?;
            t.serialize_element(&serde_bytes::ByteBuf::from(vec![1u8; 300_000]))?;
            if run > 0 {
                return Err(serde::ser::Error::custom("second run"));
            }
            t.serialize_element(&serde_bytes::ByteBuf::from(vec![2u8; 300_000]))?;
            t.end()
        }
    }

    #[test]
    fn a_streamed_result_that_fails_part_way_is_padded_and_flagged() {
        let mut sink = Vec::new();
        let mut out = ResultWriter::new(&mut sink);
        out.begin(5, false);
        assert!(matches!(
            out.value(&FailsLate(Default::default())),
            Sent::Done
        ));
        assert!(!out.broken);
        let mut fb = FrameBuf::default();
        fb.vec_mut().extend_from_slice(&sink);
        let frame = fb.next_frame(usize::MAX).unwrap().expect("one whole frame");
        assert_eq!(frame.body.end, sink.len(), "exactly as long as announced");
        let mut body = BodyReader::new(fb.body(&frame));
        assert_eq!(body.u64().unwrap(), 5);
        assert_eq!(body.u8().unwrap(), OK_STREAMED);
        crate::wire::cost::Cost::read(&mut body).unwrap();
        let rest = body.rest();
        assert_eq!(rest[rest.len() - TRAILER_LEN], STREAM_FAILED);
    }

    #[test]
    fn chunks_apply_the_function_in_order() {
        let mut arg = Vec::new();
        encode(&vec![1u64, 2, 3], &mut arg).unwrap();
        let (tag, data) = run(
            run_chunk::<u64, u64>,
            square as fn(u64) -> u64 as usize,
            &arg,
        );
        assert_eq!(tag, OK);
        assert_eq!(decode::<Vec<u64>>(&data).unwrap(), vec![1, 4, 9]);
    }

    fn length(v: Vec<u8>) -> u64 {
        v.len() as u64 + u64::from(v.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
    }

    /// A `Vec<u8>` argument is the commonest big payload: the kernel reads
    /// it into the vector the task gets, not into the worker's scratch
    /// buffer first (which the decoder would then copy out of).
    #[test]
    fn a_byte_vector_argument_is_read_straight_into_its_own_allocation() {
        // Smaller than the pipe, which `pipe_with` fills before anyone reads.
        let payload: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut arg = Vec::new();
        encode(&payload, &mut arg).unwrap();
        let mut sink = Vec::new();
        let mut out = ResultWriter::new(&mut sink);
        out.begin(1, false);
        let mut pipe = pipe_with(&arg);
        let mut scratch = Vec::new();
        let mut reader = ArgReader::new(&mut pipe, arg.len() as u64, &mut scratch);
        let f = length as fn(Vec<u8>) -> u64;
        // SAFETY: the trampoline is instantiated for exactly `f`'s type.
        unsafe { run_plain::<Vec<u8>, u64>(f as usize, &mut reader, &mut out) };
        assert_eq!(reader.remaining(), 0);
        assert_eq!(
            scratch.capacity(),
            0,
            "the argument was staged in the scratch buffer, then copied"
        );
        let expected = length(payload);
        let body = &sink[frame::HEADER_LEN..];
        let mut r = BodyReader::new(body);
        assert_eq!(r.u64().unwrap(), 1);
        assert_eq!(r.u8().unwrap(), OK);
        crate::wire::cost::Cost::read(&mut r).unwrap();
        assert_eq!(decode::<u64>(r.rest()).unwrap(), expected);
    }

    /// Records the size of every write it is given.
    #[derive(Default)]
    struct Writes(Vec<usize>, Vec<u8>);

    impl Write for Writes {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.push(data.len());
            self.1.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A big `Vec<u8>` result goes to the pipe from the vector's own memory
    /// in one write, not byte by byte through an encoder and a buffer.
    #[test]
    fn a_byte_vector_result_goes_to_the_pipe_from_its_own_memory() {
        let value: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
        let mut sink = Writes::default();
        let mut out = ResultWriter::new(&mut sink);
        out.begin(9, false);
        assert!(matches!(out.value(&value), Sent::Done));
        assert!(!out.broken);
        assert!(
            sink.0.iter().any(|&n| n >= value.len()),
            "the value went out in writes of {:?} bytes",
            &sink.0[..sink.0.len().min(8)]
        );
        let mut fb = FrameBuf::default();
        fb.vec_mut().extend_from_slice(&sink.1);
        let frame = fb.next_frame(usize::MAX).unwrap().expect("one whole frame");
        assert_eq!(frame.body.end, sink.1.len(), "exactly one frame");
        let result = decode_result(fb.body(&frame)).unwrap();
        assert_eq!(result.id, 9);
        assert_eq!(decode::<Vec<u8>>(result.outcome.unwrap()).unwrap(), value);
    }

    /// Refuses to be serialized, with its own message.
    struct Refuses;

    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("Refuses says no"))
        }
    }

    /// A container whose element fails, and which encodes something else on
    /// this thread before it returns the element's error: a `Serialize`
    /// impl is user code, and may submit to a pool (which encodes) while it
    /// runs. The element's message travels in the thread-local then.
    struct EncodesMeanwhile;

    impl Serialize for EncodesMeanwhile {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeTuple;
            let mut t = s.serialize_tuple(1)?;
            let failed = t.serialize_element(&Refuses);
            let mut other = Vec::new();
            encode(&1u8, &mut other).expect("a plain u8 encodes");
            failed?;
            t.end()
        }
    }

    #[test]
    fn a_nested_encode_does_not_lose_the_outer_impls_message() {
        let mut out = Vec::new();
        let error = encode(&EncodesMeanwhile, &mut out).expect_err("its element refuses");
        assert!(
            error.contains("Refuses says no"),
            "the element's message was lost to the nested encode: {error}"
        );
    }
}
