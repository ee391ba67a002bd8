//! Process pool, step 3: a fork server.
//!
//! Steps 1-2 fork from a process with threads, so a child may only do
//! async-signal-safe work. Python's `forkserver` fixes that: fork *one* helper
//! first thing in `main`, while single-threaded. It never starts a thread, so
//! its children may run any code. Over a Unix socket the pool asks it to SPAWN
//! (pipes, fork, pid and pipe ends sent back by `SCM_RIGHTS`) or WAIT (reap).

use crate::s08_process_pool_fork_pipes::{recv, send, serve};
use nix::sys::socket::{self as sock, ControlMessage, ControlMessageOwned::ScmRights, MsgFlags};
use nix::unistd::{fork, pipe, ForkResult};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};

const SPAWN: u64 = 1;
const WAIT: u64 = 2;

/// The pool's end of the socket, locked for each request and its reply.
pub struct ForkServer(Mutex<OwnedFd>);

impl ForkServer {
    /// Call while the process has one thread (first thing in `main`).
    pub fn start() -> io::Result<ForkServer> {
        let (unix, stream) = (sock::AddressFamily::Unix, sock::SockType::Stream);
        let (ours, theirs) = sock::socketpair(unix, stream, None, sock::SockFlag::empty())?;
        // SAFETY: the caller promises a single thread, so the child is a
        // complete copy in which no lock is held by a vanished thread.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop(ours); // else the server would never see end-of-file
                serve_requests(theirs.as_raw_fd())
            }
            ForkResult::Parent { .. } => Ok(ForkServer(Mutex::new(ours))),
        }
    }

    fn ask(&self, op: u64, arg: u64) -> io::Result<(u64, Vec<OwnedFd>)> {
        let socket = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (fd, gone) = (socket.as_raw_fd(), || io::Error::other("the fork server is gone"));
        (send(fd, op) && send(fd, arg)).then_some(()).ok_or_else(gone)?;
        let (mut reply, mut space) = ([0u8; 8], nix::cmsg_space!([RawFd; 2]));
        let mut iov = [IoSliceMut::new(&mut reply)];
        let message = sock::recvmsg::<()>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
        let raw = message.cmsgs()?.flat_map(|c| if let ScmRights(fds) = c { fds } else { vec![] });
        // SAFETY: the kernel just installed these in this process; no one else owns them.
        let fds = raw.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }).collect();
        (message.bytes == 8).then(|| (u64::from_le_bytes(reply), fds)).ok_or_else(gone)
    }

    /// A worker running `f` (any code); its pid, task pipe and result pipe.
    pub fn spawn(&self, f: fn(u64) -> u64) -> io::Result<(i32, OwnedFd, OwnedFd)> {
        let (pid, fds) = self.ask(SPAWN, f as usize as u64)?;
        let failed = |_| io::Error::other("the fork server could not start a worker");
        let [task, result] = <[OwnedFd; 2]>::try_from(fds).map_err(failed)?;
        Ok((pid as i32, task, result))
    }

    /// Reaps worker `pid` once its result pipe is at EOF; its wait status.
    pub fn wait(&self, pid: i32) -> io::Result<i32> {
        Ok(self.ask(WAIT, pid as u64)?.0 as i32)
    }
}

/// The server's loop, until the pool's process is gone (end-of-file).
fn serve_requests(fd: RawFd) -> ! {
    while let (Some(op), Some(arg)) = (recv(fd), recv(fd)) {
        if op == WAIT {
            let mut status = 0;
            // SAFETY: waitpid on our own child, writing into `status`.
            unsafe { libc::waitpid(arg as i32, &mut status, 0) };
            send(fd, status as u64);
        } else if let Ok((pid, [task, result])) = spawn_worker(arg) {
            let fds = [task.as_raw_fd(), result.as_raw_fd()];
            let (pid, cmsg) = ((pid as u64).to_le_bytes(), [ControlMessage::ScmRights(&fds)]);
            let _ = sock::sendmsg::<()>(fd, &[IoSlice::new(&pid)], &cmsg, MsgFlags::empty(), None);
        } else {
            send(fd, 0); // no descriptors: the pool reports the failure
        }
    }
    // SAFETY: ends this process at once (no atexit hook of the pool's program).
    unsafe { libc::_exit(0) }
}

/// Forks a worker for the `fn` at address `f`; the pool's ends of its pipes.
fn spawn_worker(f: u64) -> nix::Result<(i32, [OwnedFd; 2])> {
    let ((task_r, task_w), (result_r, result_w)) = (pipe()?, pipe()?);
    // SAFETY: `f` is the address of a `fn(u64) -> u64` in the pool's process,
    // a fork of the same program image, so it names the same function here.
    let f = unsafe { std::mem::transmute::<usize, fn(u64) -> u64>(f as usize) };
    // SAFETY: this process has one thread, so the child may do anything.
    match unsafe { fork() }? {
        ForkResult::Child => serve(f, task_r.as_raw_fd(), result_w.as_raw_fd()),
        ForkResult::Parent { child } => Ok((child.as_raw(), [task_w, result_r])),
    }
}

/// The demo: `cargo run -p learn -- s10`. The server starts first.
pub fn main() {
    let Ok(server) = ForkServer::start() else { return eprintln!("cannot start the fork server") };
    let Ok((pid, task, result)) = server.spawn(|x| x.to_string().len() as u64) else { return };
    let answer = send(task.as_raw_fd(), 123_456).then(|| recv(result.as_raw_fd()));
    println!("digits of 123456, by a worker that allocates a String: {answer:?}");
    drop(task); // end-of-file: the worker exits
    println!("reaped by the server, wait status: {:?}", server.wait(pid));
}

// The production crate adds: the server reaps on SIGCHLD (a signalfd) and
// writes each status to a pipe, kills on request, and dies with the pool.
// See `server_main` and `spawn_worker` in `crates/process-pool/src/child/fork_server.rs`.
