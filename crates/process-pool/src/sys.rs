//! Thin, checked wrappers over the few system calls the pool makes in its hot
//! paths and in freshly forked children.
//!
//! Everything else goes through `nix`. These helpers exist because the hot
//! paths want raw `read`/`writev`/`poll` into buffers we manage ourselves, and
//! because code that runs right after `fork()` should be short and obvious:
//! each helper here is one system call plus its error check, with no locks
//! and no allocation.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `Err(last OS error)` when a libc call returned -1.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Creates a pipe whose two ends are close-on-exec; `(read end, write end)`.
pub(crate) fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid, writable array of two ints, as pipe2 requires.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Asks the kernel for a pipe buffer of `bytes` (Linux `F_SETPIPE_SZ`). A
/// bigger buffer means fewer wake-ups per megabyte. Failure is harmless (the
/// limit is `/proc/sys/fs/pipe-max-size`), so the error is ignored.
pub(crate) fn set_pipe_size(fd: &OwnedFd, bytes: usize) {
    if bytes == 0 {
        return;
    }
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int argument.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
}

/// Puts `fd` in non-blocking mode (the dispatcher never blocks on a worker).
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    let flags = check(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// An eventfd used as the dispatcher's doorbell: non-blocking, close-on-exec,
/// and never on 0-2 (see [`off_stdio`]).
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with constant flags.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: eventfd succeeded; the descriptor is new and ours.
    off_stdio(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What [`recv_with_fds`] received.
pub(crate) struct Received {
    /// Bytes of the message (0: the peer closed the socket).
    pub bytes: usize,
    /// Every descriptor the kernel installed, owned: they close on drop.
    pub fds: Vec<OwnedFd>,
    /// The kernel could not deliver all the descriptors or bytes sent
    /// (`MSG_CTRUNC` / `MSG_TRUNC`): typically this process is at its
    /// open-file limit. `fds` then holds the ones that did arrive.
    pub truncated: bool,
}

/// One `recvmsg(2)` into `buf` with `SCM_RIGHTS` descriptors (close-on-exec),
/// retrying on EINTR. `control` is the room for the descriptors (u64s for
/// cmsghdr's alignment; `CMSG_SPACE(n * 4)` bytes for `n` of them), and
/// `flags` are added to `MSG_CMSG_CLOEXEC` (e.g. `MSG_DONTWAIT`). The fork
/// server's replies and the shared-bytes side channel both receive here.
///
/// Written on libc rather than nix because nix's control-message iterator
/// refuses a truncated buffer, and a truncated one is exactly when the kernel
/// may have installed *some* of the descriptors, which must then be closed.
/// Here every installed descriptor is owned before anything else is looked at.
pub(crate) fn recv_with_fds(
    socket: RawFd,
    buf: &mut [u8],
    control: &mut [u64],
    flags: libc::c_int,
) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid (null name, no iovecs, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(control) as _;
    let bytes = loop {
        // SAFETY: `msg` points to `iov` (valid for `buf.len()` bytes) and to
        // `control` (valid for its size), both alive for the call.
        let n = unsafe { libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC | flags) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR only
    // walk headers within `msg_controllen` bytes of `control`, and return
    // null at the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR lies inside
        // `control`, aligned for cmsghdr.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a constant computation.
            let payload = header.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
            // SAFETY: CMSG_DATA points at the header's payload, inside `control`.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<libc::c_int>();
            for k in 0..payload / std::mem::size_of::<libc::c_int>() {
                // SAFETY: `k` indexes within the payload; the data may be
                // unaligned for c_int, hence read_unaligned. The kernel
                // installed this descriptor in this process just now, and
                // nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(data.add(k).read_unaligned()) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(Received {
        bytes,
        fds,
        truncated: msg.msg_flags & (libc::MSG_CTRUNC | libc::MSG_TRUNC) != 0,
    })
}

/// Moves a private descriptor that landed on 0, 1 or 2 to the lowest free
/// number from 3 (close-on-exec), closing the original.
///
/// The kernel gives out the lowest free number, so in a process whose
/// standard descriptors are closed (daemons, some supervisors) a socket or
/// pipe would become "stdout", and anything printed would be written into
/// the pool's protocol.
pub(crate) fn off_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one.
    let moved = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: fcntl succeeded: `moved` is a new descriptor owned by nobody
    // else. The original closes when `fd` drops.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// Like [`off_stdio`], but keeps the descriptor where it is if it cannot be
/// moved (no free number): for received descriptors whose position in their
/// message matters more than their number.
pub(crate) fn off_stdio_or_keep(fd: OwnedFd) -> OwnedFd {
    if fd.as_raw_fd() > 2 {
        return fd;
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if moved < 0 {
        return fd;
    }
    // SAFETY: fcntl succeeded: `moved` is new and owned by nobody else; the
    // original closes when `fd` drops.
    unsafe { OwnedFd::from_raw_fd(moved) }
}

/// Opens `/dev/null` on each of 0, 1 and 2 that is closed.
///
/// Called in the fork server right after it closed what it does not use:
/// with its standard descriptors taken, every descriptor it creates later
/// (its signalfd, the worker pipes) lands above 2, and a worker that prints
/// writes to `/dev/null` (or to the terminal the program had), never into a
/// pipe or socket of the pool. `fcntl` and `open` are async-signal-safe.
pub(crate) fn reserve_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor's flags.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            continue;
        }
        // SAFETY: a constant, NUL-terminated path; the lower standard
        // numbers are all open by now, so the lowest free one is `fd`.
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got >= 0 && got != fd {
            // SAFETY: plain descriptor moves on descriptors we own.
            unsafe {
                libc::dup2(got, fd);
                libc::close(got);
            }
        }
    }
}

/// Rings an eventfd doorbell. The counter coalesces rings, and a full
/// counter (EAGAIN) already means "ring pending", so errors are ignored:
/// a doorbell can never block its caller (the lesson of CPython gh-105829).
pub(crate) fn ring(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64 to a descriptor we own.
    let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Empties an eventfd doorbell.
pub(crate) fn drain_doorbell(fd: &OwnedFd) {
    let mut value: u64 = 0;
    // SAFETY: reads at most 8 bytes into a valid u64.
    let _ = unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
}

/// One `read(2)` into the spare capacity of `buf`, growing `buf.len()` by the
/// bytes read. Retries on EINTR. `Ok(0)` means end of file.
pub(crate) fn read_into(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    if buf.capacity() - buf.len() < max {
        buf.reserve(max);
    }
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    loop {
        // SAFETY: `spare` points to at least `want` writable (uninitialised)
        // bytes owned by `buf`; read(2) writes at most `want` of them.
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: the kernel initialised exactly `n <= want` bytes past
            // the old length, and `want` fits in the capacity.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Whether a read on `fd` would not block now (data, end-of-file or an
/// error are waiting): one `poll(2)` with a zero timeout.
pub(crate) fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents != 0
}

/// One `writev(2)` of `slices`, retrying on EINTR; returns the bytes written.
pub(crate) fn writev(fd: RawFd, slices: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let count = slices.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    loop {
        // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on Unix
        // (documented by std), and every slice is valid for reads.
        let n = unsafe { libc::writev(fd, slices.as_ptr().cast(), count) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Writes all of `bytes` to a blocking descriptor (used by workers and the
/// fork server, whose descriptors are blocking).
pub(crate) fn write_all(fd: RawFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = writev(fd, &[io::IoSlice::new(bytes)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Closes every descriptor of this process except 0, 1, 2 and `keep`.
///
/// Called first thing in the fork server and in each worker: a forked child
/// inherits every descriptor of its parent, close-on-exec or not (there is no
/// exec), and a stray copy of some other pipe's write end would keep that
/// pipe from ever reporting end-of-file. Uses `close_range(2)` (Linux 5.9+)
/// and falls back to a bounded loop.
pub(crate) fn close_all_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.to_vec();
    keep.sort_unstable();
    let mut first: libc::c_uint = 3;
    for &fd in keep.iter().filter(|&&fd| fd >= 3) {
        let fd = fd as libc::c_uint;
        if fd > first {
            close_range(first, fd - 1);
        }
        first = fd + 1;
    }
    close_range(first, libc::c_uint::MAX);
}

fn close_range(first: libc::c_uint, last: libc::c_uint) {
    // SAFETY: close_range only closes descriptors; in a freshly forked child
    // nothing else refers to them (the kept ones are excluded by the caller).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
    if ret == 0 {
        return;
    }
    // Old kernel: close one by one, up to a sane bound.
    let last = last.min(65_535);
    for fd in first..=last {
        // SAFETY: as above; EBADF for unused numbers is expected and ignored.
        unsafe { libc::close(fd as libc::c_int) };
    }
}

/// How many threads this process has now (`/proc/self/task`), or `None` if
/// it cannot be told.
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// The calling thread's kernel id.
pub(crate) fn gettid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// This process's id.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Whether SIGPIPE is ignored in this process (Rust's runtime sets that up
/// before `main`; a program may restore the default).
pub(crate) fn sigpipe_ignored() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into `old`, a valid, zeroed sigaction struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// A set of signal numbers (1 to 64, Linux's `SIGRTMAX`), as a bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SignalSet(u64);

impl SignalSet {
    pub(crate) fn contains(self, signal: libc::c_int) -> bool {
        (1..=64).contains(&signal) && self.0 & (1 << (signal - 1)) != 0
    }

    fn insert(&mut self, signal: libc::c_int) {
        if (1..=64).contains(&signal) {
            self.0 |= 1 << (signal - 1);
        }
    }
}

/// Whether `signal` is ignored (`SIG_IGN`) in this process.
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into `old`, a valid, zeroed sigaction struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Resets every signal *handler* to the default disposition, keeps every
/// signal the user chose to ignore ignored, and returns those.
///
/// Called first thing in the fork server. A fork inherits the parent's
/// dispositions. Handlers belong to the parent's program, not to ours, so
/// they go (SIGSEGV and SIGBUS excepted: normally Rust's own stack-overflow
/// report, which a crashing worker should still print). An ignored signal
/// is the user's choice and stays, as it does in CPython's workers: under
/// `nohup` (SIGHUP ignored) a terminal hangup must not kill the fork server
/// and the running tasks. The caller then overrides the few dispositions
/// the pool itself depends on (SIGCHLD, and SIGTERM in workers).
/// `sigaction` is async-signal-safe; failures (SIGKILL, SIGSTOP, the C
/// library's reserved real-time signals) are expected and ignored.
pub(crate) fn reset_signal_handlers() -> SignalSet {
    let mut ignored = SignalSet::default();
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGSEGV || signal == libc::SIGBUS {
            continue;
        }
        if is_ignored(signal) {
            ignored.insert(signal);
        } else {
            set_disposition(signal, libc::SIG_DFL);
        }
    }
    ignored
}

/// Sets the disposition of `signal` to `handler` (`SIG_DFL` or `SIG_IGN`),
/// with no flags and an empty handler mask.
pub(crate) fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction is a valid value; we set a plain
    // disposition (no handler code runs) and pass no old-action pointer.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// Replaces the calling thread's signal mask by exactly `blocked`.
///
/// A fork inherits the mask of the forking thread: a parent that blocks
/// SIGTERM (the `sigwait` idiom) would otherwise hand a worker that cannot
/// be terminated.
pub(crate) fn set_signal_mask(blocked: &[libc::c_int]) -> io::Result<()> {
    // SAFETY: `set` is a valid sigset_t, initialised by sigemptyset before
    // use; pthread_sigmask only reads it.
    let ret = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in blocked {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}
