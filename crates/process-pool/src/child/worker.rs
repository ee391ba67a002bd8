//! The worker process: read a task frame, run it, write a result frame.
//!
//! A worker is forked by the fork server and runs [`run`] until its task
//! pipe reports end-of-file (the pool closed it: shutdown, or
//! `max_tasks_per_child` reached) or until it dies. Its descriptors are
//! plain blocking pipes: the worker has nothing else to do while it waits,
//! and the pool's side never blocks (it multiplexes with `poll`), so a
//! worker blocked writing a big result while the pool is writing it a big
//! task cannot deadlock: the pool drains results whenever they are readable.
//!
//! ```text
//! start -> [initializer] -> READY --> read TASK -> run -> write RESULT --+
//!              | panics                ^                                |
//!              v                       +--------------------------------+
//!        INIT_FAILED, exit(3)          end-of-file -> exit(0)
//! ```
//!
//! The pool counts tasks and enforces timeouts itself, so the worker stays
//! this simple loop.
//!
//! Big payloads cost one user-space copy in the worker: the argument is
//! read by the kernel straight into a buffer kept between tasks and decoded
//! from there (the decoder copies a byte buffer out of it); a big result is
//! encoded straight into the pipe (see `codec::ResultWriter`). Small tasks
//! cost one `read` for many pipelined frames and one `write` per result.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::catch_unwind;

use crate::child::fork_server::{exit_now, mark_child};
use crate::child::reader::ArgReader;
use crate::wire::codec::{ResultWriter, Trampoline};
use crate::wire::cost;
use crate::wire::fd_passing;
use crate::wire::frame;

/// Exit code of a worker whose initializer panicked.
pub(crate) const EXIT_INIT_FAILED: i32 = 3;
/// Exit code of a worker that received a frame it does not understand.
pub(crate) const EXIT_PROTOCOL: i32 = 4;

/// The worker's main loop. Never returns.
pub(crate) fn run(task: OwnedFd, result: OwnedFd, fds: OwnedFd, initializer: usize) -> ! {
    mark_child();
    keep_freed_memory();
    // Panics are caught and sent back with their message; printing them
    // here too would only duplicate that on the terminal (Python's workers
    // are silent as well).
    std::panic::set_hook(Box::new(|_| {}));
    let mut result = File::from(result);

    if initializer != 0 {
        // SAFETY: the pool sent the address of a `fn()` it was given as the
        // initializer, in this same program image (see `codec`).
        let init: fn() = unsafe { std::mem::transmute::<usize, fn()>(initializer) };
        if let Err(p) = catch_unwind(init) {
            let mut out = Vec::new();
            let start = frame::begin_frame(&mut out, frame::INIT_FAILED);
            out.extend_from_slice(future::panic_message(&*p).as_bytes());
            let _ = frame::finish_frame(&mut out, start, frame::DEFAULT_MAX_FRAME);
            let _ = result.write_all(&out);
            exit_now(EXIT_INIT_FAILED);
        }
    }
    let mut ready = Vec::new();
    let start = frame::begin_frame(&mut ready, frame::READY);
    let _ = frame::finish_frame(&mut ready, start, 0);
    if result.write_all(&ready).is_err() {
        finish(0);
    }

    // Buffered, so that small pipelined tasks cost one read between them;
    // big arguments bypass the buffer and land in their final allocation.
    let mut input = BufReader::with_capacity(256 * 1024, File::from(task));
    let fds_socket = fds.as_raw_fd();
    let mut sink = ResultSink {
        file: result,
        fds,
        frame_left: 0,
    };
    let mut out = ResultWriter::new(&mut sink);
    // Each argument is read whole into this buffer, kept between tasks.
    let mut arg_buf = Vec::new();
    loop {
        match input.fill_buf() {
            Ok([]) | Err(_) => finish(0), // end-of-file: the pool closed our pipe
            Ok(_) => {}
        }
        let mut header = [0u8; frame::TASK_PREFIX_LEN];
        if input.read_exact(&mut header).is_err() {
            exit_now(EXIT_PROTOCOL);
        }
        let Ok(frame::TaskHeader {
            id,
            trampoline,
            function,
            arg_len,
        }) = frame::parse_task_header(&header)
        else {
            exit_now(EXIT_PROTOCOL);
        };
        // Whether to measure CPU times and peak RSS (see `cost`).
        let measure = id & cost::MEASURE_BIT != 0;
        let id = id & !cost::MEASURE_BIT;
        // SharedBytes in the argument: their descriptors are waiting on the
        // descriptor socket (sent before this frame; see `fd_passing`).
        let (id, received) = if id & fd_passing::FDS_BIT != 0 {
            let id = id & !fd_passing::FDS_BIT;
            match fd_passing::recv(fds_socket, id) {
                Ok(r) => (id, r),
                Err(_) => exit_now(EXIT_PROTOCOL),
            }
        } else {
            (
                id,
                fd_passing::Received {
                    fds: Vec::new(),
                    truncated: false,
                },
            )
        };
        let mut arg = ArgReader::new(&mut input, arg_len, &mut arg_buf);
        out.begin(id, measure);
        // SAFETY: the pool wrote this address from a `Trampoline` fn
        // pointer of this same program image (see `codec`).
        let trampoline: Trampoline =
            unsafe { std::mem::transmute::<usize, Trampoline>(trampoline as usize) };
        // The argument decodes with its descriptors installed; those it did
        // not use close when the scope ends.
        fd_passing::with_incoming(received.fds, received.truncated, || {
            // SAFETY: the pool built `function` together with `trampoline`
            // from typed fn pointers, which is the trampoline's contract.
            unsafe { trampoline(function as usize, &mut arg, &mut out) }
        });
        // Skip what the decoder left of the argument (after a decoding
        // error), to stay in step with the frames.
        if arg.skip_rest().is_err() {
            finish(0); // the pool closed the pipe mid-frame: it is gone
        }
        if out.broken {
            finish(0); // the pool is gone
        }
    }
}

/// Tells glibc's allocator to keep freed memory instead of returning it to
/// the kernel at once. A worker decodes each argument into a fresh buffer;
/// with the defaults, a 16 MiB buffer is mapped and unmapped per task and
/// every one of its 4096 pages faults again each time. The worker is our
/// process, so tuning its allocator concerns no one else. (glibc-only; a
/// no-op elsewhere.)
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; this process is
    // single-threaded here.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Flushes what tasks printed and exits without running the parent image's
/// destructors.
fn finish(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    exit_now(code)
}

/// The worker's result pipe, with the descriptor socket beside it.
///
/// It sees the frames go by (it counts each frame's bytes from its header).
/// When a frame starts while the result's encoder has attached
/// `SharedBytes` (`fd_passing::collecting`, around the encoding in
/// `codec::run_task`), it first sends their descriptors on the descriptor
/// socket, then writes the frame's first 13 bytes (header and task id) with
/// `fd_passing::FDS_BIT` set in the id. `ResultWriter` writes a frame's header
/// and id in its first write, so the first write of a frame holds them.
/// The send blocks if the socket is full; it cannot deadlock, because every
/// message queued there belongs to a frame already in the result pipe,
/// which the pool always drains.
struct ResultSink {
    file: File,
    fds: OwnedFd,
    /// Bytes of the current frame still to come (0: the next write starts a frame).
    frame_left: u64,
}

impl Write for ResultSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        const PREFIX: usize = frame::HEADER_LEN + 8;
        if self.frame_left == 0 && data.len() >= PREFIX {
            let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as u64;
            self.frame_left = frame::HEADER_LEN as u64 + len;
            let attached = fd_passing::take_outgoing();
            if !attached.is_empty() {
                let mut prefix = [0u8; PREFIX];
                prefix.copy_from_slice(&data[..PREFIX]);
                let id =
                    u64::from_le_bytes(prefix[frame::HEADER_LEN..].try_into().unwrap_or_default());
                fd_passing::send(self.fds.as_raw_fd(), id, &attached, false)?;
                prefix[frame::HEADER_LEN..]
                    .copy_from_slice(&(id | fd_passing::FDS_BIT).to_le_bytes());
                drop(attached); // our references go; the message holds the files
                self.file.write_all(&prefix)?;
                self.frame_left -= PREFIX as u64;
                return Ok(PREFIX);
            }
        }
        let n = self.file.write(data)?;
        self.frame_left = self.frame_left.saturating_sub(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
