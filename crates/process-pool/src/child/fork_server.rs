//! The fork server: a single-threaded process that forks every worker.
//!
//! # Why
//!
//! `fork()` copies only the calling thread. If another thread held a lock at
//! that instant (the allocator's, stdout's, any `Mutex`), the child's copy of
//! that lock stays locked forever, and the child deadlocks the first time it
//! needs it. A pool has threads of its own (the dispatcher), and so do most
//! programs that use one, so workers must never be forked from the pool's
//! process once it runs threads. Instead, as early as possible - ideally the
//! first line of `main`, see [`start_fork_server`] - we fork *one* helper
//! process while the program is still single-threaded. That helper never
//! starts a thread, so no lock in it is ever held by anyone but itself, and
//! it is safe for it to `fork()` workers at any time, on request: the first
//! workers and every replacement. This is Python's `forkserver` start method.
//!
//! # Protocol
//!
//! The pool talks to the fork server over a `SOCK_SEQPACKET` Unix socket
//! pair (one message per request or reply, no framing needed):
//!
//! | request | reply |
//! |---|---|
//! | `SPAWN(initializer address, pipe size)` | `SPAWNED(pid)` + 4 fds by `SCM_RIGHTS`: task write end, result read end, status read end, the pool's end of the worker's descriptor socket (`fd_passing`); or an errno |
//! | `KILL(pid, signal)` | `KILLED(found)`: the signal (SIGKILL, or SIGTERM for `terminate_workers`) sent if the pid is a live, unreaped worker |
//!
//! For each worker the fork server creates three pipes: *task* (pool ->
//! worker), *result* (worker -> pool) and *status* (fork server -> pool). It
//! keeps only the write end of the status pipe. When `wait4` reaps the
//! worker (on SIGCHLD, read from a `signalfd`), the fork server writes the
//! 16-byte exit status to that pipe and closes it: how the worker ended and
//! its peak RSS (`ru_maxrss`, which only the reaper can read once the worker
//! is dead: the report of a task whose worker died has it from here). So every worker is reaped
//! (no zombies), and the pool learns exactly how each one ended.
//!
//! Killing goes through the fork server because only it knows whether a pid
//! is still its unreaped child: a `kill()` from the pool could hit a recycled
//! pid.
//!
//! # Lifetime
//!
//! The fork server exits when its socket reports end-of-file, i.e. when the
//! pool's process is gone; it then SIGKILLs and reaps its workers. When it
//! was started from the main thread it also asks for `PR_SET_PDEATHSIG`
//! (SIGKILL when the parent dies). Workers ask for `PR_SET_PDEATHSIG` too
//! (their parent is the fork server) and exit on end-of-file on their task
//! pipe.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::error::{ExitCause, ForkServerError};
use crate::sys::{self, SignalSet};

const OP_SPAWN: u8 = 1;
const OP_KILL: u8 = 2;
const REQUEST_LEN: usize = 24;
const REPLY_LEN: usize = 16;

/// Status words written to a worker's status pipe: the kind, its value
/// (exit code or signal), then the peak RSS in bytes (0: not known).
const STATUS_EXITED: i32 = 1;
const STATUS_SIGNALED: i32 = 2;
/// The length of a status written to a worker's status pipe.
pub(crate) const STATUS_LEN: usize = 16;

/// True in the fork server and in workers: they must never start a pool.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// The process-wide fork server, started once.
static SERVER: OnceLock<Result<ForkServer, ForkServerError>> = OnceLock::new();

/// The pool side of the fork server.
pub(crate) struct ForkServer {
    /// The socket to the fork server; the mutex makes each request and its
    /// reply one atomic exchange when several pools spawn at once.
    socket: Mutex<OwnedFd>,
    /// The fork server's pid (a child of this process).
    pid: i32,
    /// How many threads this process had when the fork server was forked.
    threads_at_start: Option<usize>,
    /// The process that started it (the only one allowed to talk to it).
    owner: i32,
}

/// The descriptors and pid of a freshly forked worker.
pub(crate) struct Spawned {
    pub pid: i32,
    /// Pool -> worker (frames of tasks).
    pub task: OwnedFd,
    /// Worker -> pool (frames of results).
    pub result: OwnedFd,
    /// Fork server -> pool: [`STATUS_LEN`] bytes of exit status once the
    /// worker is reaped (see [`decode_status`]).
    pub status: OwnedFd,
    /// The pool's end of the worker's descriptor socket (see `fd_passing`).
    pub fds: OwnedFd,
}

/// Starts the fork server now, if it is not running yet.
///
/// Call it first thing in `main`, while the program has a single thread:
///
/// ```
/// // first line of main:
/// process_pool::start_fork_server();
/// // ... then start threads, build pools ...
/// ```
///
/// A pool built without it starts the fork server itself, but only while
/// the process still has a single thread. Once other threads exist, that
/// start is refused with [`ForkServerError::LateStart`] (returned by the
/// pool's constructor): see [`start_fork_server_late`] for why, and for the
/// opt-in. For a test binary, whose `main` belongs to the test harness, call
/// this from a constructor that runs before `main` (e.g. `#[ctor::ctor]`).
/// Starting fails silently here; the error is returned by the first pool's
/// constructor (or use [`try_start_fork_server`]).
pub fn start_fork_server() {
    let _ = try_start_fork_server();
}

/// Like [`start_fork_server`], returning the error if it could not start
/// (including [`ForkServerError::LateStart`]).
pub fn try_start_fork_server() -> Result<(), ForkServerError> {
    server().map(|_| ())
}

/// Starts the fork server now even though this process may already run
/// other threads: the explicit opt-in to a late start.
///
/// # What can go wrong
///
/// `fork()` copies only the calling thread, and every lock in memory as it
/// is. A lock that another thread holds at the instant of the fork is
/// copied *held*, and nobody in the fork server will ever release it. The
/// fork server itself takes no such lock, so it runs; but every worker is a
/// fork of it and inherits the same held lock, replacements included. A task
/// that needs it hangs forever (or until the pool's `task_timeout` kills its
/// worker, and then the next worker hangs the same way). Which locks: any
/// `Mutex`/`RwLock` of the program (a static, a `lazy_static`, a logger's),
/// the standard output lock (another thread inside `println!`), the
/// environment lock (another thread in `std::env::set_var`), a C library's
/// internal locks (glibc resets its allocator locks at fork; most others are
/// not reset). Nothing reports it: the task simply never finishes.
/// `tests/lazy_start.rs` shows it with a `Mutex` held by another thread.
///
/// Use it only when no other thread can hold a lock that tasks need at this
/// moment (e.g. the other threads are parked in a known state). Otherwise
/// call [`start_fork_server`] first thing in `main`. With
/// `PROCESS_POOL_DEBUG=1` a late start prints a warning on stderr;
/// [`fork_server_info`] tells how many threads there were.
pub fn start_fork_server_late() -> Result<(), ForkServerError> {
    started(true).map(|_| ())
}

/// Facts about the running fork server (for diagnostics and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkServerInfo {
    /// Its process id.
    pub pid: i32,
    /// Threads in this process when it was forked (1 = the safe, early start).
    pub threads_at_start: Option<usize>,
}

/// The running fork server, if one was started.
pub fn fork_server_info() -> Option<ForkServerInfo> {
    match SERVER.get() {
        Some(Ok(s)) => Some(ForkServerInfo {
            pid: s.pid,
            threads_at_start: s.threads_at_start,
        }),
        _ => None,
    }
}

/// The process-wide fork server, started on first use.
pub(crate) fn server() -> Result<&'static ForkServer, ForkServerError> {
    started(false)
}

/// The fork server, started now if needed; a start in a multi-threaded
/// process only if `late_ok` (see [`start_fork_server_late`]).
fn started(late_ok: bool) -> Result<&'static ForkServer, ForkServerError> {
    if IN_CHILD.load(Ordering::Relaxed) {
        // Relaxed: the flag is only ever set by this same (single) thread
        // right after fork, before any code that could read it.
        return Err(ForkServerError::InsideWorker);
    }
    if SERVER.get().is_none() && !late_ok {
        // An unknown count (no /proc) is let through: it cannot be told.
        if let Some(threads) = sys::thread_count().filter(|&n| n > 1) {
            return Err(ForkServerError::LateStart { threads });
        }
    }
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    if server.owner != sys::getpid() {
        // This process was fork()ed by the user from the one that started
        // the fork server: sharing its socket would mix up replies.
        return Err(ForkServerError::ForkedChild);
    }
    Ok(server)
}

fn start() -> Result<ForkServer, ForkServerError> {
    let threads_at_start = sys::thread_count();
    if threads_at_start.is_some_and(|n| n > 1) && std::env::var_os("PROCESS_POOL_DEBUG").is_some() {
        eprintln!(
            "process-pool: starting the fork server late (start_fork_server_late), in a \
             process with {} threads: locks other threads hold now stay held in every worker",
            threads_at_start.unwrap_or(0)
        );
    }
    // Unflushed output would be copied into the children and written twice.
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let (pool_end, server_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ForkServerError::Io(format!("socketpair: {e}")))?;
    // Never on 0-2, in either process (closed standard descriptors).
    let off_stdio = |fd| sys::off_stdio(fd).map_err(|e| ForkServerError::Io(format!("fcntl: {e}")));
    let (pool_end, server_end) = (off_stdio(pool_end)?, off_stdio(server_end)?);
    let started_on_main_thread = sys::gettid() == sys::getpid();
    let pool_pid = nix::unistd::getpid();
    // SAFETY: the child runs only `server_main`, which never returns, never
    // starts a thread and takes no lock but the allocator's (see the module
    // docs for why that is sound even when this process has other threads).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(pool_end);
            server_main(server_end, started_on_main_thread, pool_pid)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(server_end);
            Ok(ForkServer {
                socket: Mutex::new(pool_end),
                pid: child.as_raw(),
                threads_at_start,
                owner: sys::getpid(),
            })
        }
        Err(e) => Err(ForkServerError::Io(format!("fork: {e}"))),
    }
}

impl ForkServer {
    /// Asks the fork server for a new worker.
    pub(crate) fn spawn(
        &self,
        initializer: Option<fn()>,
        pipe_size: usize,
    ) -> Result<Spawned, ForkServerError> {
        let mut request = [0u8; REQUEST_LEN];
        request[0] = OP_SPAWN;
        let init = initializer.map_or(0, |f| f as usize) as u64;
        request[8..16].copy_from_slice(&init.to_le_bytes());
        request[16..24].copy_from_slice(&(pipe_size as u64).to_le_bytes());
        let reply = self.exchange(&request)?;
        let errno = i32::from_le_bytes(reply.bytes[4..8].try_into().unwrap_or_default());
        let pid = i32::from_le_bytes(reply.bytes[8..12].try_into().unwrap_or_default());
        if errno != 0 {
            return Err(ForkServerError::Io(format!(
                "spawning a worker: {}",
                io::Error::from_raw_os_error(errno)
            )));
        }
        let count = reply.fds.len();
        match (reply.fd_problem, <[OwnedFd; 4]>::try_from(reply.fds)) {
            (None, Ok([task, result, status, fds])) => Ok(Spawned {
                pid,
                task,
                result,
                status,
                fds,
            }),
            (problem, received) => {
                // Every descriptor that did arrive closes here: a kept
                // task-pipe write end would keep the worker alive forever.
                drop(received);
                // The half-made worker would exit by itself (end-of-file on
                // its task pipe); killing it also covers an initializer
                // that never reads its pipe.
                let _ = self.kill(pid);
                let why =
                    problem.unwrap_or_else(|| format!("{count} of its 4 descriptors arrived"));
                Err(ForkServerError::Io(format!(
                    "worker {pid} was forked but its pipes could not be received ({why}); \
                     it was killed"
                )))
            }
        }
    }

    /// Asks the fork server to SIGKILL worker `pid` if it is still alive.
    pub(crate) fn kill(&self, pid: i32) -> Result<bool, ForkServerError> {
        self.signal(pid, Signal::SIGKILL)
    }

    /// Asks the fork server to send `signal` to worker `pid` if it is still
    /// alive. Returns whether it was.
    pub(crate) fn signal(&self, pid: i32, signal: Signal) -> Result<bool, ForkServerError> {
        let mut request = [0u8; REQUEST_LEN];
        request[0] = OP_KILL;
        request[8..16].copy_from_slice(&(pid as i64 as u64).to_le_bytes());
        request[16..24].copy_from_slice(&(signal as i32 as u64).to_le_bytes());
        let reply = self.exchange(&request)?;
        Ok(reply.bytes[8] == 1)
    }

    /// The fork server died (killed from outside): it is our child, so reap
    /// it, or it would stay a zombie for the rest of the program.
    ///
    /// Blocking: its end of the socket is closed, so it is exiting, but it
    /// may not be a zombie yet (a process closes its descriptors before it
    /// becomes one), and a `WNOHANG` wait at that instant would leave it
    /// unreaped for good. The fork server closes its socket only on its way
    /// out (after SIGKILLing and reaping its workers), so this wait is short.
    fn reap_self(&self) {
        loop {
            match waitpid(Pid::from_raw(self.pid), None) {
                Err(nix::Error::EINTR) => continue,
                _ => return,
            }
        }
    }

    /// Sends one request and receives its reply (and any descriptors).
    fn exchange(&self, request: &[u8; REQUEST_LEN]) -> Result<Reply, ForkServerError> {
        let socket = self.socket.lock().unwrap_or_else(|p| p.into_inner());
        let fd = socket.as_raw_fd();
        let gone =
            |e: &io::Error| matches!(e.raw_os_error(), Some(libc::EPIPE) | Some(libc::ECONNRESET));
        loop {
            match sendmsg::<()>(
                fd,
                &[IoSlice::new(request)],
                &[],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(_) => break,
                Err(nix::Error::EINTR) => continue,
                Err(e) if e == nix::Error::EPIPE || e == nix::Error::ECONNRESET => {
                    self.reap_self();
                    return Err(ForkServerError::Gone);
                }
                Err(e) => return Err(ForkServerError::Io(format!("send: {e}"))),
            }
        }
        let mut bytes = [0u8; REPLY_LEN];
        // Room for the three descriptors of a new worker and then some.
        let mut control = [0u64; 8];
        let received = match sys::recv_with_fds(fd, &mut bytes, &mut control, 0) {
            Ok(r) => r,
            Err(e) if gone(&e) => {
                self.reap_self();
                return Err(ForkServerError::Gone);
            }
            Err(e) => return Err(ForkServerError::Io(format!("receive: {e}"))),
        };
        if received.bytes == 0 {
            self.reap_self();
            return Err(ForkServerError::Gone);
        }
        if received.bytes != REPLY_LEN {
            // `received.fds` close here.
            return Err(ForkServerError::Io(format!(
                "short reply of {} bytes",
                received.bytes
            )));
        }
        // Every descriptor is moved off 0-2 (closed standard descriptors).
        // One that cannot be (no free number) closes, and the reply is
        // marked, so that the caller closes the rest too.
        let mut fd_problem = received.truncated.then(|| {
            "the kernel truncated the descriptors (MSG_CTRUNC): this process is at its \
             open-file limit, RLIMIT_NOFILE"
                .to_string()
        });
        let mut fds = Vec::with_capacity(received.fds.len());
        for fd in received.fds {
            match sys::off_stdio(fd) {
                Ok(fd) => fds.push(fd),
                Err(e) => fd_problem = Some(format!("moving a descriptor off 0-2: {e}")),
            }
        }
        Ok(Reply {
            bytes,
            fds,
            fd_problem,
        })
    }
}

/// One reply of the fork server, with the descriptors that came with it.
struct Reply {
    bytes: [u8; REPLY_LEN],
    /// Every descriptor received (owned: they close when dropped).
    fds: Vec<OwnedFd>,
    /// Why the descriptors are incomplete, if they are.
    fd_problem: Option<String>,
}

/// How a worker ended, as the fork server saw it when it reaped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reaped {
    pub cause: ExitCause,
    /// The worker's peak resident set size in bytes (`ru_maxrss` of
    /// `wait4`); `None` when not known.
    pub peak_rss: Option<u64>,
}

/// Decodes a status written by the fork server; anything but
/// [`STATUS_LEN`] bytes is an unknown end.
pub(crate) fn decode_status(bytes: &[u8]) -> Reaped {
    let unknown = Reaped {
        cause: ExitCause::Unknown,
        peak_rss: None,
    };
    let Ok(bytes) = <[u8; STATUS_LEN]>::try_from(bytes) else {
        return unknown;
    };
    let [k0, k1, k2, k3, v0, v1, v2, v3, rss @ ..] = bytes;
    let value = i32::from_le_bytes([v0, v1, v2, v3]);
    let cause = match i32::from_le_bytes([k0, k1, k2, k3]) {
        STATUS_EXITED => ExitCause::Exited(value),
        STATUS_SIGNALED => ExitCause::Signaled(value),
        _ => return unknown,
    };
    let peak_rss = Some(u64::from_le_bytes(rss)).filter(|&b| b > 0);
    Reaped { cause, peak_rss }
}

/// Encodes what [`decode_status`] decodes.
fn encode_status(kind: i32, value: i32, peak_rss: u64) -> [u8; STATUS_LEN] {
    let mut word = [0u8; STATUS_LEN];
    word[..4].copy_from_slice(&kind.to_le_bytes());
    word[4..8].copy_from_slice(&value.to_le_bytes());
    word[8..].copy_from_slice(&peak_rss.to_le_bytes());
    word
}

// ---------------------------------------------------------------------------
// Inside the fork server process. Single-threaded from here on.
// ---------------------------------------------------------------------------

/// A live worker, from the fork server's point of view.
struct Child {
    pid: Pid,
    status_w: OwnedFd,
}

fn server_main(socket: OwnedFd, on_main_thread: bool, pool_pid: Pid) -> ! {
    // Relaxed: this process has a single thread; no ordering to establish.
    IN_CHILD.store(true, Ordering::Relaxed);
    sys::close_all_except(&[socket.as_raw_fd()]);
    // Take 0-2 if they are closed, so that nothing of ours lands there and
    // a worker's prints go to /dev/null, not into a pipe or socket.
    sys::reserve_stdio();
    if on_main_thread {
        // PDEATHSIG fires when the *thread* that forked us exits, so it is
        // only right when that thread was the main thread (whose exit ends
        // the process). End-of-file on the socket covers every case.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        if nix::unistd::getppid() != pool_pid {
            exit_now(0); // the pool's process died before PDEATHSIG was armed
        }
    }
    // Our own signal state, built from the parent's. Handlers go; what the
    // user ignored stays ignored (`nohup`: a hangup must not kill us or
    // the workers). Two dispositions the fork server needs for itself:
    // SIGCHLD at its default (a parent that ignores it, or sets
    // `SA_NOCLDWAIT`, would have the kernel reap workers before we can read
    // their status), and SIGINT and SIGPIPE ignored. Ctrl-C goes to the
    // whole process group: the pool's process decides what happens, the
    // fork server must not die under it; and writing a status to a pool
    // that is gone must give EPIPE. Only SIGCHLD is blocked (it is read
    // from the signalfd below; a parent's blocked SIGTERM must not reach
    // the workers).
    let user_ignored = sys::reset_signal_handlers();
    sys::set_disposition(libc::SIGCHLD, libc::SIG_DFL);
    sys::set_disposition(libc::SIGINT, libc::SIG_IGN);
    sys::set_disposition(libc::SIGPIPE, libc::SIG_IGN);
    if sys::set_signal_mask(&[libc::SIGCHLD]).is_err() {
        exit_now(70);
    }
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let sigfd = match nix::sys::signalfd::SignalFd::with_flags(
        &chld,
        nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    ) {
        Ok(fd) => fd,
        Err(_) => exit_now(71),
    };
    let mut children: Vec<Child> = Vec::new();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            continue; // EINTR
        }
        if fds[1].revents != 0 {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            reap(&mut children);
        }
        if fds[0].revents != 0 && !serve_one(&socket, &mut children, user_ignored) {
            break;
        }
    }
    // The pool's process is gone: take the workers down with us.
    for c in &children {
        let _ = nix::sys::signal::kill(c.pid, Signal::SIGKILL);
    }
    for c in &children {
        let _ = waitpid(c.pid, None);
    }
    exit_now(0)
}

/// Reaps every exited worker and reports its status and peak RSS.
fn reap(children: &mut Vec<Child>) {
    loop {
        let Some((status, peak_rss)) = wait4_any() else {
            return;
        };
        let (pid, kind, value) = match status {
            WaitStatus::Exited(pid, code) => (pid, STATUS_EXITED, code),
            WaitStatus::Signaled(pid, sig, _) => (pid, STATUS_SIGNALED, sig as i32),
            WaitStatus::StillAlive => return,
            _ => continue, // stopped/continued: not an exit
        };
        if let Some(i) = children.iter().position(|c| c.pid == pid) {
            let child = children.swap_remove(i);
            let word = encode_status(kind, value, peak_rss);
            // 16 bytes < PIPE_BUF: one atomic write. If the pool closed its
            // end, EPIPE is fine (the fork server ignores SIGPIPE).
            let _ = sys::write_all(child.status_w.as_raw_fd(), &word);
        }
    }
}

/// `wait4(-1, WNOHANG)`: a child's status and its peak RSS in bytes (its
/// `ru_maxrss`, which `waitpid` does not give and nobody can read once the
/// child is reaped); `None` when there is no child left or on an error.
fn wait4_any() -> Option<(WaitStatus, u64)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes one int and one rusage into the two we own.
    let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut usage) };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        return Some((WaitStatus::StillAlive, 0));
    }
    let status = WaitStatus::from_raw(Pid::from_raw(pid), status).ok()?;
    // Linux gives ru_maxrss in KiB.
    let peak_rss = (usage.ru_maxrss.max(0) as u64).saturating_mul(1024);
    Some((status, peak_rss))
}

/// Serves one request; false when the pool's end is closed.
fn serve_one(socket: &OwnedFd, children: &mut Vec<Child>, user_ignored: SignalSet) -> bool {
    let mut request = [0u8; REQUEST_LEN];
    let n = {
        let mut iov = [IoSliceMut::new(&mut request)];
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, None, MsgFlags::empty()) {
            Ok(msg) => msg.bytes,
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => return true,
            Err(_) => return false,
        }
    };
    if n == 0 {
        return false;
    }
    let a = u64::from_le_bytes(request[8..16].try_into().unwrap_or_default());
    let b = u64::from_le_bytes(request[16..24].try_into().unwrap_or_default());
    let mut reply = [0u8; REPLY_LEN];
    reply[0] = request[0];
    let sent = match request[0] {
        OP_SPAWN => match spawn_worker(socket, children, a as usize, b as usize, user_ignored) {
            Ok((pid, fds)) => {
                reply[8..12].copy_from_slice(&pid.to_le_bytes());
                let raw = [
                    fds[0].as_raw_fd(),
                    fds[1].as_raw_fd(),
                    fds[2].as_raw_fd(),
                    fds[3].as_raw_fd(),
                ];
                send_reply(socket, &reply, &raw)
                // `fds` drop here: our copies close, the pool's stay open.
            }
            Err(errno) => {
                reply[4..8].copy_from_slice(&(errno as i32).to_le_bytes());
                send_reply(socket, &reply, &[])
            }
        },
        OP_KILL => {
            let pid = Pid::from_raw(a as i64 as i32);
            // Reap first, so a pid that already exited is not "found".
            reap(children);
            let found = children.iter().any(|c| c.pid == pid);
            if found {
                // Only the two signals the pool sends; anything else is a
                // malformed request and kills, as the pool's default does.
                let signal = match Signal::try_from(b as i32) {
                    Ok(Signal::SIGTERM) => Signal::SIGTERM,
                    _ => Signal::SIGKILL,
                };
                let _ = nix::sys::signal::kill(pid, signal);
            }
            reply[8] = found as u8;
            send_reply(socket, &reply, &[])
        }
        _ => send_reply(socket, &reply, &[]),
    };
    sent
}

fn send_reply(socket: &OwnedFd, reply: &[u8], fds: &[RawFd]) -> bool {
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    loop {
        match sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(reply)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return true,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Forks one worker. Returns its pid and the pool's three pipe ends.
fn spawn_worker(
    socket: &OwnedFd,
    children: &mut Vec<Child>,
    initializer: usize,
    pipe_size: usize,
    user_ignored: SignalSet,
) -> Result<(i32, [OwnedFd; 4]), nix::Error> {
    let errno = |e: io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let (task_r, task_w) = sys::pipe_cloexec().map_err(errno)?;
    let (result_r, result_w) = sys::pipe_cloexec().map_err(errno)?;
    let (status_r, status_w) = sys::pipe_cloexec().map_err(errno)?;
    // The descriptor socket (SharedBytes travel there, see `fd_passing`).
    let (fds_pool, fds_worker) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    sys::set_pipe_size(&task_w, pipe_size);
    sys::set_pipe_size(&result_w, pipe_size);
    let server_pid = nix::unistd::getpid();
    // SIGTERM is blocked across the fork, so the new worker starts with it
    // blocked. Until `worker_signals` sets it to its default, the worker
    // has the user's disposition, possibly "ignored", and the kernel
    // discards an ignored signal on arrival, unless it is blocked: then it
    // stays pending. So a `terminate_workers` that comes before the worker
    // has run at all (the pool may assign it a task and be told to
    // terminate first) still ends it, once it unblocks (after setting the
    // default). In the fork server, a SIGTERM is only deferred for the
    // length of a fork.
    let _ = sys::set_signal_mask(&[libc::SIGCHLD, libc::SIGTERM]);
    // SAFETY: this process is single-threaded (module docs), so the child
    // inherits no lock held by another thread; it runs `worker::run`, which
    // never returns.
    let forked = unsafe { fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        let _ = sys::set_signal_mask(&[libc::SIGCHLD]);
    }
    match forked? {
        ForkResult::Child => {
            let keep = [
                task_r.as_raw_fd(),
                result_w.as_raw_fd(),
                fds_worker.as_raw_fd(),
            ];
            // Everything else - the socket, the other workers' status pipes,
            // this worker's other pipe ends - is closed in one sweep.
            sys::close_all_except(&keep);
            std::mem::forget((socket, task_w, result_r, status_r, status_w, fds_pool));
            std::mem::forget(std::mem::take(children));
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            if nix::unistd::getppid() != server_pid {
                // The fork server died before PDEATHSIG was armed.
                exit_now(0);
            }
            // Dispositions first, then the mask: a SIGTERM that came since
            // the fork is pending, and is delivered (at its default) here.
            worker_signals(user_ignored);
            if sys::set_signal_mask(&[]).is_err() {
                exit_now(70);
            }
            crate::child::worker::run(task_r, result_w, fds_worker, initializer)
        }
        ForkResult::Parent { child } => {
            drop(task_r);
            drop(result_w);
            drop(fds_worker);
            children.push(Child {
                pid: child,
                status_w,
            });
            Ok((child.as_raw(), [task_w, result_r, status_r, fds_pool]))
        }
    }
}

/// A new worker's signal dispositions, from the fork server's (the caller
/// then unblocks everything): the user's ignored signals still ignored,
/// and:
///
/// * SIGCHLD as the user had it (the fork server needed the default for
///   itself): a task that starts processes sees what the pool's process
///   would see;
/// * SIGTERM at its default even if the user ignored it, because it is how
///   `terminate_workers` ends a running task;
/// * SIGINT ignored, as in the fork server, whatever the user had: Ctrl-C
///   reaches the whole process group, and it is the pool's process that
///   decides what it means. If that process dies of it, the fork server
///   sees end-of-file and SIGKILLs the workers (and `PR_SET_PDEATHSIG`
///   backs that up); if it handles it (say, by shutting the pool down),
///   running tasks finish and deliver their results instead of dying
///   half-way. (CPython's workers raise `KeyboardInterrupt`, which fails
///   a running task and kills an idle worker, breaking the pool.)
/// * SIGPIPE ignored, as in any Rust program: a write to a pool that is
///   gone gives EPIPE.
fn worker_signals(user_ignored: SignalSet) {
    if user_ignored.contains(libc::SIGCHLD) {
        sys::set_disposition(libc::SIGCHLD, libc::SIG_IGN);
    }
    sys::set_disposition(libc::SIGTERM, libc::SIG_DFL);
}

/// Ends this process at once, without running destructors or atexit handlers
/// that belong to the parent's image.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and always sound to call.
    unsafe { libc::_exit(code) }
}

/// Marks this process as a pool child (used by workers after fork).
pub(crate) fn mark_child() {
    // Relaxed: a fresh worker has a single thread; no ordering to establish.
    IN_CHILD.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_says_how_the_worker_ended_and_its_peak_rss() {
        let word = encode_status(STATUS_SIGNALED, 9, 64 << 20);
        let reaped = decode_status(&word);
        assert_eq!(reaped.cause, ExitCause::Signaled(9));
        assert_eq!(reaped.peak_rss, Some(64 << 20));
        let word = encode_status(STATUS_EXITED, 3, 0);
        assert_eq!(
            decode_status(&word),
            Reaped {
                cause: ExitCause::Exited(3),
                peak_rss: None
            }
        );
    }

    #[test]
    fn a_short_or_unknown_status_is_an_unknown_end() {
        let unknown = Reaped {
            cause: ExitCause::Unknown,
            peak_rss: None,
        };
        // The fork server died mid-write, or wrote the old 8-byte word.
        assert_eq!(
            decode_status(&encode_status(STATUS_EXITED, 0, 5)[..8]),
            unknown
        );
        assert_eq!(decode_status(&[]), unknown);
        assert_eq!(decode_status(&encode_status(7, 0, 5)), unknown);
    }
}
