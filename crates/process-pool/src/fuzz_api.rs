//! Entry points for the fuzz targets in `fuzz/` (docs/checks.md,
//! "Fuzzing"). Not part of the API: hidden from the docs, and free to change
//! in any release.
//!
//! The parsers of bytes that arrive on a pipe or socket are private to this
//! crate. Each function here drives one of them the way the pool or the
//! worker does, on bytes the fuzzer chooses:
//!
//! * [`pool_read`]: the pool reading a worker's result pipe (`FrameBuf` and
//!   the dispatcher's `RESULT` body parser);
//! * [`worker_read`]: a worker reading its task pipe (the `TASK` header and
//!   `ArgReader`, from a real descriptor);
//! * [`byte_vector_arg`]: a worker reading a whole `Vec<u8>` argument
//!   straight into its vector (`ArgReader::read_vec`), beside serde's
//!   decoding of the same bytes (the two must agree);
//! * [`fd_message`]: the descriptor side channel (`fd_passing::recv`, then
//!   `SharedBytes` decoded with what arrived), over a real socket pair.
//!
//! A public module rather than a `cfg(fuzzing)` one, so that the fuzz
//! targets build with a plain `cargo fuzz build` and `cargo clippy` sees this
//! code like any other.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IoSlice, Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};

use crate::child::reader::{ArgReader, BufferLimits};
use crate::wire::codec::decode_result;
use crate::wire::fd_passing;
use crate::wire::frame::{self, FrameBuf, FrameError};
use crate::SharedBytes;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = frame::HEADER_LEN;
/// Bytes of a `TASK` frame before its argument.
pub const TASK_PREFIX_LEN: usize = frame::TASK_PREFIX_LEN;
/// The frame kinds.
pub const TASK: u8 = frame::TASK;
/// See [`TASK`].
pub const READY: u8 = frame::READY;
/// See [`TASK`].
pub const RESULT: u8 = frame::RESULT;
/// Bytes of the cost block a `RESULT` body carries after its outcome tag.
pub const RESULT_COST_LEN: usize = crate::wire::cost::COST_LEN;
/// See [`TASK`].
pub const INIT_FAILED: u8 = frame::INIT_FAILED;

/// A whole frame as it goes on a pipe: header, then `body`.
pub fn encode_frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    let start = frame::begin_frame(&mut out, kind);
    out.extend_from_slice(body);
    frame::finish_frame(&mut out, start, u32::MAX as usize).expect("a body under 4 GiB");
    out
}

/// One frame the pool took off a result pipe.
#[derive(Debug)]
pub struct PoolFrame {
    /// Its kind.
    pub kind: u8,
    /// Its body.
    pub body: Vec<u8>,
    /// For a `RESULT`: the task id (without the descriptor bit), whether
    /// descriptors go with it, and the encoded value or the error's text.
    pub result: Option<(u64, bool, Result<Vec<u8>, String>)>,
}

/// Reads `stream` as the dispatcher reads a worker's result pipe with a cap
/// of `max` bytes per frame: reads of at most `read_size` bytes (and at most
/// what `FrameBuf::want` asks for), each followed by taking every whole
/// frame off the buffer. Returns the frames taken and the error that ended
/// the stream (a truncation if it ended inside a frame), if any.
pub fn pool_read(
    stream: &[u8],
    read_size: usize,
    max: usize,
) -> (Vec<PoolFrame>, Option<FrameError>) {
    let mut buf = FrameBuf::default();
    let mut frames = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = buf.want(max).min(read_size.max(1)).min(rest.len());
        buf.vec_mut().extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let f = match buf.next_frame(max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            };
            let body = buf.body(&f);
            let result = match f.kind {
                frame::RESULT => match decode_result(body) {
                    Ok(r) => Some((
                        r.id,
                        r.has_fds,
                        r.outcome.map(<[u8]>::to_vec).map_err(|e| e.to_string()),
                    )),
                    Err(e) => return (frames, Some(e)),
                },
                frame::READY | frame::INIT_FAILED => None,
                kind => return (frames, Some(FrameError::UnknownKind(kind))),
            };
            frames.push(PoolFrame {
                kind: f.kind,
                body: body.to_vec(),
                result,
            });
            buf.consume(&f);
        }
    }
    (frames, buf.leftover())
}

/// One task a worker read off its task pipe.
#[derive(Debug, PartialEq, Eq)]
pub struct WorkerTask {
    /// The id, as sent (with the descriptor bit, if set).
    pub id: u64,
    /// The trampoline address.
    pub trampoline: u64,
    /// The function address.
    pub function: u64,
    /// The encoded argument.
    pub arg: Vec<u8>,
}

/// Reads `stream` as a worker reads its task pipe, from a real descriptor
/// (a memfd holding `stream`) behind a `BufReader` of `buffer` bytes (the
/// worker's is 256 KiB; smaller ones exercise `ArgReader`'s direct reads).
/// With `small_limits`, the argument buffer grows by 16 bytes at first and
/// one over 256 bytes is not kept (the worker's: 1 MiB and 64 MiB), so
/// that inputs of a few KiB reach its growth and its drop.
/// Returns the tasks read, and why reading stopped before the end, if it
/// did (where the worker exits with its protocol-error status).
pub fn worker_read(
    stream: &[u8],
    buffer: usize,
    small_limits: bool,
) -> io::Result<(Vec<WorkerTask>, Option<String>)> {
    let limits = if small_limits {
        BufferLimits {
            reserve_ahead: 16,
            keep_max: 256,
        }
    } else {
        BufferLimits::WORKER
    };
    let mut file = memfd()?;
    file.write_all(stream)?;
    file.rewind()?;
    let mut input = BufReader::with_capacity(buffer.max(1), file);
    let mut arg_buf = Vec::new();
    let mut tasks = Vec::new();
    loop {
        if input.fill_buf()?.is_empty() {
            return Ok((tasks, None));
        }
        let mut prefix = [0u8; TASK_PREFIX_LEN];
        if let Err(e) = input.read_exact(&mut prefix) {
            return Ok((tasks, Some(format!("task header: {e}"))));
        }
        let header = match frame::parse_task_header(&prefix) {
            Ok(h) => h,
            Err(e) => return Ok((tasks, Some(e.to_string()))),
        };
        let mut arg = ArgReader::with_limits(&mut input, header.arg_len, &mut arg_buf, limits);
        let arg = match arg.read_all() {
            Ok(a) => a.to_vec(),
            Err(e) => return Ok((tasks, Some(format!("argument: {e}")))),
        };
        tasks.push(WorkerTask {
            id: header.id,
            trampoline: header.trampoline,
            function: header.function,
            arg,
        });
    }
}

/// A byte vector decoded, or why not.
pub type Decoded = Result<Vec<u8>, String>;

/// Reads `arg` (a task's argument bytes) as a worker reads a whole
/// `Vec<u8>` or `ByteBuf` argument: its length prefix, then its bytes
/// straight into the vector (`ArgReader::read_vec`, from a real descriptor
/// behind a `BufReader` of `buffer` bytes), then the rest skipped. Returns
/// that, and serde's own decoding of the same bytes as a `Vec<u8>`
/// (postcard, one element at a time): the two must agree on every input.
pub fn byte_vector_arg(arg: &[u8], buffer: usize) -> io::Result<(Decoded, Decoded)> {
    let mut file = memfd()?;
    file.write_all(arg)?;
    file.rewind()?;
    let mut input = BufReader::with_capacity(buffer.max(1), file);
    let mut scratch = Vec::new();
    let mut reader = ArgReader::new(&mut input, arg.len() as u64, &mut scratch);
    let ours = reader.read_vec();
    if ours.is_ok() {
        reader.skip_rest()?;
    }
    let serde = postcard::from_bytes::<Vec<u8>>(arg).map_err(|e| e.to_string());
    Ok((ours, serde))
}

/// A descriptor to send with [`fd_message`].
#[derive(Debug, Clone)]
pub enum FdKind {
    /// A `SharedBytes` of these bytes: a memfd with the required seals.
    Sealed(Vec<u8>),
    /// A memfd holding these bytes, without seals (anyone could change it).
    Unsealed(Vec<u8>),
    /// The read end of a pipe: not a memfd at all.
    Pipe,
}

/// Sends one message of `payload` with descriptors of `kinds` over a fresh
/// `SOCK_SEQPACKET` pair, receives it as the descriptor message of task
/// `id`, and decodes `value` (postcard bytes of a `Vec<SharedBytes>`) with
/// the received descriptors installed, as a frame's value is decoded.
/// `Err` if `fd_passing::recv` refused the message; else the decoded list's
/// contents, or the decoder's error text.
pub fn fd_message(
    payload: &[u8],
    kinds: &[FdKind],
    id: u64,
    value: &[u8],
) -> io::Result<Result<Vec<Vec<u8>>, String>> {
    let (sender, receiver) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let fds = kinds
        .iter()
        .map(make_fd)
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(
        sender.as_raw_fd(),
        &[IoSlice::new(payload)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    drop(fds);
    let received = fd_passing::recv(receiver.as_raw_fd(), id)?;
    Ok(fd_passing::with_incoming(
        received.fds,
        received.truncated,
        || {
            postcard::from_bytes::<Vec<SharedBytes>>(value)
                .map(|list| list.iter().map(|b| b.to_vec()).collect())
                .map_err(|e| e.to_string())
        },
    ))
}

fn make_fd(kind: &FdKind) -> io::Result<OwnedFd> {
    match kind {
        FdKind::Sealed(bytes) => {
            let shared = SharedBytes::from_slice(bytes)?;
            Ok(std::os::fd::AsFd::as_fd(&shared).try_clone_to_owned()?)
        }
        FdKind::Unsealed(bytes) => {
            let mut file = memfd()?;
            file.write_all(bytes)?;
            Ok(file.into())
        }
        FdKind::Pipe => {
            let (read, _write) = nix::unistd::pipe()?;
            Ok(read)
        }
    }
}

/// An anonymous in-memory file (close-on-exec).
fn memfd() -> io::Result<File> {
    // SAFETY: a constant NUL-terminated name and constant flags.
    let fd = unsafe { libc::memfd_create(c"process-pool-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create succeeded: a new descriptor owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}
