//! The descriptor side channel: how [`SharedBytes`] values cross between the
//! pool and a worker as file descriptors, beside the frames on the pipes.
//!
//! # Protocol
//!
//! Each worker has, besides its task and result pipes, one `SOCK_SEQPACKET`
//! socket pair (created by the fork server with the pipes): the *descriptor
//! socket*. Pipes cannot carry descriptors; this socket carries nothing
//! else. A frame whose value holds `SharedBytes` is announced by bit 63 of
//! its task id ([`FDS_BIT`]; ids are counters and never get there):
//!
//! 1. While the sender encodes the value, each `SharedBytes` serialises as
//!    `Fd(i)`, `i` its index in the frame's descriptor list ([`attach`],
//!    active only inside [`collect`] / [`collecting`]).
//! 2. *Before the first byte of the frame* is written, the sender sends one
//!    message on the descriptor socket: the task id (u64 LE), with the list
//!    as `SCM_RIGHTS`.
//! 3. The receiver, reading a frame with the bit set, takes one message off
//!    its descriptor socket without blocking. It is already there (step 2
//!    happened before the frame's first byte was written, and a Unix socket
//!    send is complete when it returns). Its id must be the frame's id.
//! 4. The value is decoded with the received descriptors installed
//!    ([`with_incoming`]): `Fd(i)` maps descriptor `i` ([`take`]), after
//!    checking its seals. Descriptors the decoder did not use close when
//!    the scope ends.
//!
//! A list holds at most [`MAX_FDS`] descriptors (the kernel's limit per
//! message); further `SharedBytes` in the same value fall back to the
//! `Bytes` form (copied through the pipe), so no value is refused.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::sys;
use crate::wire::shared_bytes::SharedBytes;

/// Bit 63 of a frame's task id: a descriptor message goes with this frame.
pub(crate) const FDS_BIT: u64 = 1 << 63;
/// Most descriptors in one message (Linux `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// Descriptors received for the frame being decoded.
struct Incoming {
    slots: Vec<Slot>,
    /// The kernel could not install all of them (`MSG_CTRUNC`).
    truncated: bool,
}

enum Slot {
    Fd(OwnedFd),
    Mapped(SharedBytes),
    Gone,
}

thread_local! {
    /// The descriptor list of the frame being encoded on this thread.
    static OUTGOING: RefCell<Option<Vec<SharedBytes>>> = const { RefCell::new(None) };
    /// The descriptors of the frame being decoded on this thread.
    static INCOMING: RefCell<Option<Incoming>> = const { RefCell::new(None) };
}

/// Called by `SharedBytes::serialize`: its index in the current frame's
/// list, or `None` outside a frame (or when the list is full).
pub(crate) fn attach(bytes: &SharedBytes) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let list = o.as_mut()?;
        // The same buffer twice (or the same value serialised twice: a
        // size pass, then the real one) gets the same index.
        if let Some(i) = list.iter().position(|b| SharedBytes::ptr_eq(b, bytes)) {
            return Some(i as u32);
        }
        if list.len() >= MAX_FDS {
            return None;
        }
        list.push(bytes.clone());
        Some((list.len() - 1) as u32)
    })
}

/// Restores the previous collector when dropped (also on unwind).
struct Restore(Option<Vec<SharedBytes>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        OUTGOING.with(|o| *o.borrow_mut() = prev);
    }
}

/// Runs `encode` with a fresh descriptor list, and returns what it
/// attached with its result.
pub(crate) fn collect<T>(encode: impl FnOnce() -> T) -> (T, Vec<SharedBytes>) {
    let prev = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let restore = Restore(prev);
    let value = encode();
    let list = OUTGOING.with(|o| o.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (value, list)
}

/// Runs `encode` with a fresh descriptor list that [`take_outgoing`] (the
/// worker's result sink) sends when the frame is written; what is left at
/// the end is dropped.
pub(crate) fn collecting<T>(encode: impl FnOnce() -> T) -> T {
    collect(encode).0
}

/// Takes the current frame's descriptor list, leaving an empty one (a
/// later encoding pass of the same value finds the same indices).
pub(crate) fn take_outgoing() -> Vec<SharedBytes> {
    OUTGOING.with(|o| {
        o.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

/// Runs `decode` with `fds` as the current frame's descriptors; the unused
/// ones close afterwards.
pub(crate) fn with_incoming<T>(
    fds: Vec<OwnedFd>,
    truncated: bool,
    decode: impl FnOnce() -> T,
) -> T {
    struct Clear(Option<Incoming>);
    impl Drop for Clear {
        fn drop(&mut self) {
            let prev = self.0.take();
            INCOMING.with(|i| *i.borrow_mut() = prev);
        }
    }
    let incoming = Incoming {
        slots: fds.into_iter().map(Slot::Fd).collect(),
        truncated,
    };
    let prev = INCOMING.with(|i| i.borrow_mut().replace(incoming));
    let _clear = Clear(prev);
    decode()
}

/// Called by `SharedBytes::deserialize` for `Fd(index)`: maps descriptor
/// `index` of the current frame (the same index twice gives one buffer).
pub(crate) fn take(index: u32) -> Result<SharedBytes, String> {
    INCOMING.with(|i| {
        let mut i = i.borrow_mut();
        let Some(incoming) = i.as_mut() else {
            return Err("a SharedBytes descriptor index outside a process-pool frame".into());
        };
        let truncated = incoming.truncated;
        let Some(slot) = incoming.slots.get_mut(index as usize) else {
            return Err(if truncated {
                format!(
                    "SharedBytes descriptor {index} did not arrive: the kernel truncated the \
                     descriptors (MSG_CTRUNC), this process is at its open-file limit, RLIMIT_NOFILE"
                )
            } else {
                format!("SharedBytes descriptor {index} is missing from its frame")
            });
        };
        match std::mem::replace(slot, Slot::Gone) {
            Slot::Fd(fd) => {
                let bytes = SharedBytes::from_sealed_fd(fd)
                    .map_err(|e| format!("mapping SharedBytes descriptor {index}: {e}"))?;
                *slot = Slot::Mapped(bytes.clone());
                Ok(bytes)
            }
            Slot::Mapped(bytes) => {
                *slot = Slot::Mapped(bytes.clone());
                Ok(bytes)
            }
            Slot::Gone => Err(format!("SharedBytes descriptor {index} could not be mapped")),
        }
    })
}

/// Sends the descriptor message for frame `id` (see the protocol above).
pub(crate) fn send(
    socket: RawFd,
    id: u64,
    fds: &[SharedBytes],
    nonblocking: bool,
) -> io::Result<()> {
    let raw: Vec<RawFd> = fds
        .iter()
        .map(|b| std::os::fd::AsFd::as_fd(b).as_raw_fd())
        .collect();
    let cmsgs = [ControlMessage::ScmRights(&raw)];
    let id = id.to_le_bytes();
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    loop {
        match sendmsg::<()>(socket, &[IoSlice::new(&id)], &cmsgs, flags, None) {
            Ok(_) => return Ok(()),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// What [`recv`] got.
pub(crate) struct Received {
    pub fds: Vec<OwnedFd>,
    pub truncated: bool,
}

/// Takes the descriptor message of frame `id` off `socket`, without
/// blocking. An error if none is there or it belongs to another frame.
pub(crate) fn recv(socket: RawFd, id: u64) -> io::Result<Received> {
    // One byte more than an id: a longer message then reads as more than 8
    // bytes and is refused, instead of being cut to fit and taken.
    let mut buf = [0u8; 9];
    // Room for MAX_FDS descriptors: CMSG_SPACE(253 * 4) = 1032 bytes.
    let mut control = [0u64; 132];
    let got = sys::recv_with_fds(socket, &mut buf, &mut control, libc::MSG_DONTWAIT)?;
    let (n, fds) = (got.bytes, got.fds);
    if n != 8 || buf[..8] != id.to_le_bytes() {
        // `fds` close here.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the descriptor message is not the one for task {id}"),
        ));
    }
    Ok(Received {
        // Never on 0-2 (closed standard descriptors): a mapped SharedBytes
        // keeps its descriptor open, and a `println!` of this process must
        // not reach it.
        fds: fds.into_iter().map(sys::off_stdio_or_keep).collect(),
        truncated: got.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    /// Sends `payload` (no descriptors) on a fresh socket pair and receives
    /// it as the descriptor message of task `id`.
    fn recv_payload(payload: &[u8], id: u64) -> io::Result<Received> {
        let (tx, rx) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        sendmsg::<()>(
            tx.as_raw_fd(),
            &[IoSlice::new(payload)],
            &[],
            MsgFlags::empty(),
            None,
        )?;
        recv(rx.as_raw_fd(), id)
    }

    #[test]
    fn the_message_for_the_task_is_taken() {
        assert!(recv_payload(&42u64.to_le_bytes(), 42).is_ok());
    }

    #[test]
    fn a_message_for_another_task_is_refused() {
        assert!(recv_payload(&41u64.to_le_bytes(), 42).is_err());
        assert!(recv_payload(&42u64.to_le_bytes()[..7], 42).is_err());
    }

    #[test]
    fn a_longer_message_that_starts_with_the_id_is_refused() {
        // Found by the fd_passing fuzz target: the receive buffer held exactly
        // an id, so a longer message was cut to fit and taken.
        let mut payload = 42u64.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0xca, 0xca]);
        let got = recv_payload(&payload, 42);
        assert!(got.is_err(), "a 10-byte message was taken as task 42's");
    }
}
