//! The one `poll()`: every descriptor the dispatcher waits on, rebuilt each
//! turn of the loop from the workers' states.

use std::os::fd::{AsRawFd, RawFd};

use super::Dispatcher;

/// Which descriptor a `pollfd` entry stands for.
#[derive(Clone, Copy)]
pub(super) enum Source {
    /// `submit` rang (or `shutdown`, `terminate_workers`, `interrupt`).
    Doorbell,
    /// Worker `i`'s result pipe is readable (or ended).
    Result(usize),
    /// Worker `i`'s task pipe has room for more of its frames.
    Task(usize),
    /// The fork server reported worker `i`'s exit status.
    Status(usize),
}

/// The `pollfd` array and what each entry stands for, kept between turns
/// (no allocation per turn).
#[derive(Default)]
pub(super) struct PollSet {
    pollfds: Vec<libc::pollfd>,
    sources: Vec<Source>,
}

impl PollSet {
    /// Waits until a descriptor the dispatcher cares about is ready, or
    /// until `timeout_ms` (-1: no deadline pending).
    pub fn wait(&mut self, d: &Dispatcher, timeout_ms: libc::c_int) {
        self.pollfds.clear();
        self.sources.clear();
        self.add(
            d.shared.doorbell.as_raw_fd(),
            libc::POLLIN,
            Source::Doorbell,
        );
        for (i, w) in d.workers.iter().enumerate() {
            if w.exit.reads_results() {
                self.add(w.result_r.as_raw_fd(), libc::POLLIN, Source::Result(i));
            }
            if let Some(fd) = w.task_pipe() {
                if w.sent < w.inflight.len() {
                    self.add(fd, libc::POLLOUT, Source::Task(i));
                }
            }
            if let Some(fd) = w.exit.status_fd() {
                self.add(fd, libc::POLLIN, Source::Status(i));
            }
        }
        let len = self.pollfds.len() as libc::nfds_t;
        // SAFETY: `pollfds` is a valid, initialised array of `len` entries,
        // exclusively borrowed for the call.
        let n = unsafe { libc::poll(self.pollfds.as_mut_ptr(), len, timeout_ms) };
        if n <= 0 {
            // A timeout, or EINTR: nothing is ready.
            for p in &mut self.pollfds {
                p.revents = 0;
            }
        }
    }

    /// The sources that are ready, in the order they were added.
    pub fn ready(&self) -> impl Iterator<Item = Source> + '_ {
        self.pollfds
            .iter()
            .zip(&self.sources)
            .filter(|(p, _)| p.revents != 0)
            .map(|(_, s)| *s)
    }

    fn add(&mut self, fd: RawFd, events: i16, source: Source) {
        self.pollfds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        self.sources.push(source);
    }
}
