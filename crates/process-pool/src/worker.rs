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

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::catch_unwind;

use crate::codec::Trampoline;
use crate::fork_server::{exit_now, mark_child};
use crate::frame::{self, BodyReader, FrameBuf};
use crate::sys;

/// Exit code of a worker whose initializer panicked.
pub(crate) const EXIT_INIT_FAILED: i32 = 3;
/// Exit code of a worker that received a frame it does not understand.
pub(crate) const EXIT_PROTOCOL: i32 = 4;

/// The worker's main loop. Never returns.
pub(crate) fn run(task: OwnedFd, result: OwnedFd, initializer: usize) -> ! {
    mark_child();
    // Panics are caught and sent back with their message; printing them
    // here too would only duplicate that on the terminal (Python's workers
    // are silent as well).
    std::panic::set_hook(Box::new(|_| {}));
    let out_fd = result.as_raw_fd();
    let mut out = Vec::new();

    if initializer != 0 {
        // SAFETY: the pool sent the address of a `fn()` it was given as the
        // initializer, in this same program image (see `codec`).
        let init: fn() = unsafe { std::mem::transmute::<usize, fn()>(initializer) };
        if let Err(p) = catch_unwind(init) {
            let start = frame::begin_frame(&mut out, frame::INIT_FAILED);
            out.extend_from_slice(future::panic_message(&*p).as_bytes());
            let _ = frame::finish_frame(&mut out, start, frame::DEFAULT_MAX_FRAME);
            let _ = sys::write_all(out_fd, &out);
            exit_now(EXIT_INIT_FAILED);
        }
    }
    let start = frame::begin_frame(&mut out, frame::READY);
    let _ = frame::finish_frame(&mut out, start, 0);
    if sys::write_all(out_fd, &out).is_err() {
        finish(0);
    }

    let mut input = FrameBuf::default();
    loop {
        let next = match input.next_frame(u32::MAX as usize) {
            Ok(next) => next,
            Err(_) => exit_now(EXIT_PROTOCOL),
        };
        let Some(f) = next else {
            let want = input.want(u32::MAX as usize);
            match sys::read_into(task.as_raw_fd(), input.vec_mut(), want) {
                Ok(0) => finish(0),
                Ok(_) => continue,
                Err(_) => finish(0),
            }
        };
        if f.kind != frame::TASK {
            exit_now(EXIT_PROTOCOL);
        }
        out.clear();
        let start = frame::begin_frame(&mut out, frame::RESULT);
        {
            let mut body = BodyReader::new(input.body(&f));
            let (Ok(id), Ok(trampoline), Ok(function)) = (body.u64(), body.u64(), body.u64())
            else {
                exit_now(EXIT_PROTOCOL);
            };
            out.extend_from_slice(&id.to_le_bytes());
            // SAFETY: the pool wrote this address from a `Trampoline` fn
            // pointer of this same program image (see `codec`).
            let trampoline: Trampoline =
                unsafe { std::mem::transmute::<usize, Trampoline>(trampoline as usize) };
            // SAFETY: the pool built `function` together with `trampoline`
            // from typed fn pointers, which is the trampoline's contract.
            unsafe { trampoline(function as usize, body.rest(), &mut out) };
        }
        input.consume(&f);
        if frame::finish_frame(&mut out, start, u32::MAX as usize).is_err() {
            // A result over 4 GiB cannot be framed: report it as an encoding
            // failure instead (the pool applies its own, lower, cap too).
            out.truncate(start + frame::HEADER_LEN + 8);
            out.push(crate::codec::ENCODE_RESULT);
            frame::put_string(&mut out, "the encoded result exceeds 4 GiB");
            let _ = frame::finish_frame(&mut out, start, u32::MAX as usize);
        }
        if sys::write_all(out_fd, &out).is_err() {
            finish(0); // the pool is gone
        }
        if out.capacity() > 1 << 20 {
            out = Vec::new(); // don't keep a huge buffer for tiny tasks
        }
    }
}

/// Flushes what tasks printed and exits without running the parent image's
/// destructors.
fn finish(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    exit_now(code)
}
