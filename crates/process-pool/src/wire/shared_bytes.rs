//! [`SharedBytes`]: an immutable byte buffer in a sealed `memfd`, which
//! crosses between the pool and its workers as a descriptor and is mapped
//! on the other side, never copied through a pipe.
//!
//! # What it is
//!
//! The bytes live in an anonymous in-memory file (`memfd_create`), written
//! once and then *sealed* against writing, growing and shrinking
//! (`F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK`, then `F_SEAL_SEAL`). This
//! process and every process it is passed to map it read-only. Because of
//! the seals nobody, not even the creator, can change or truncate it any
//! more, so a mapping is as immutable as a `&'static [u8]`: no other
//! process can make the bytes change under a reader or make it fault
//! (SIGBUS) by shrinking the file. That is what makes it sound to hand out
//! `&[u8]` over memory that another process also maps.
//!
//! # How it crosses
//!
//! Its serde form is an enum. Inside a process-pool frame (see `fd_passing`)
//! it serialises as `Fd(index)`: the descriptor goes into the frame's
//! descriptor list, which travels beside the frame with `SCM_RIGHTS` on the
//! worker's descriptor socket, and the receiver maps descriptor `index` of
//! that list. Anywhere else (JSON, a file) it serialises as `Bytes(..)`, a
//! copy, and deserialises from that into a new sealed memfd, so the type
//! stays an ordinary serde value.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use serde::de::{Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::wire::fd_passing;

/// The seals every `SharedBytes` carries, and that a received one must carry.
pub(crate) const REQUIRED_SEALS: libc::c_int =
    libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;

/// An immutable byte buffer backed by a sealed, read-only mapped `memfd`.
///
/// As an argument or a result of a process-pool task it crosses as a file
/// descriptor and is mapped by the receiver: a 256 MiB buffer costs the
/// same few system calls as a 256-byte one. Cloning is cheap (a reference
/// count); the mapping and the descriptor go away with the last clone.
/// Ordinary `Vec<u8>` arguments keep travelling through the pipe.
///
/// ```
/// use process_pool::{ProcessPoolExecutor, SharedBytes};
///
/// fn sum(data: SharedBytes) -> u64 {
///     data.iter().map(|&b| b as u64).sum()
/// }
///
/// process_pool::start_fork_server();
/// let data = SharedBytes::from_slice(&[1, 2, 3]).unwrap();
/// let pool = ProcessPoolExecutor::new(1).unwrap();
/// let total = pool.submit(sum, data).unwrap();
/// assert_eq!(total.result_timeout(std::time::Duration::from_secs(30)).unwrap(), 6);
/// ```
#[derive(Clone)]
pub struct SharedBytes {
    map: Arc<Mapping>,
}

/// The descriptor and the read-only mapping of one sealed memfd.
struct Mapping {
    fd: OwnedFd,
    /// Start of the read-only mapping (dangling when `len == 0`: nothing is
    /// mapped).
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and the file is sealed against writes,
// growth and shrinking, so the bytes never change and never go away while
// the mapping exists; sharing `&[u8]` into it between threads is as safe as
// sharing a `&'static [u8]`. The descriptor is an ordinary OwnedFd.
unsafe impl Send for Mapping {}
// SAFETY: as above: immutable memory.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `ptr`/`len` are exactly the mapping made in `map_sealed`,
            // unmapped only here, once; no `&[u8]` into it outlives `self`
            // (they borrow a `SharedBytes`, which holds this Arc).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// What every `SharedBytes` memfd is made with: close-on-exec, sealable.
const MEMFD_FLAGS: libc::c_uint = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;

/// A new, empty memfd that can be sealed (close-on-exec).
fn memfd() -> io::Result<OwnedFd> {
    with_noexec_seal_if_known(memfd_with_flags)
}

/// `create(MEMFD_FLAGS | MFD_NOEXEC_SEAL)`, or without `MFD_NOEXEC_SEAL`
/// on a kernel that does not know it (before 6.3: EINVAL).
///
/// Why: the bytes are data, never code, and an executable memfd is how
/// code runs from memory without a file. `MFD_NOEXEC_SEAL` makes the file
/// non-executable and seals that (`F_SEAL_EXEC`); it is also what a kernel
/// with `vm.memfd_noexec` set asks of every memfd (1 logs a warning for a
/// memfd made without either `MFD_EXEC` or `MFD_NOEXEC_SEAL`). Debian 12
/// and Ubuntu 22.04 run older kernels: there the memfd is made as before.
fn with_noexec_seal_if_known(
    mut create: impl FnMut(libc::c_uint) -> io::Result<OwnedFd>,
) -> io::Result<OwnedFd> {
    match create(MEMFD_FLAGS | libc::MFD_NOEXEC_SEAL) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => create(MEMFD_FLAGS),
        made => made,
    }
}

/// A new, empty memfd made with `flags`.
fn memfd_with_flags(flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: a constant NUL-terminated name; memfd_create checks `flags`.
    let fd = check(unsafe { libc::memfd_create(c"process-pool-shared-bytes".as_ptr(), flags) })?;
    // SAFETY: memfd_create succeeded: a new descriptor owned by nobody else.
    crate::sys::off_stdio(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn seal(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with an int argument.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, REQUIRED_SEALS) })?;
    Ok(())
}

/// The seals on `fd` (`F_GET_SEALS`); an error for a file that is not a memfd.
pub(crate) fn seals(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: F_GET_SEALS only reads the file's seals.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })
}

/// Maps a sealed memfd read-only, after checking its seals.
fn map_sealed(fd: OwnedFd) -> io::Result<SharedBytes> {
    let have = seals(fd.as_fd())?;
    if have & REQUIRED_SEALS != REQUIRED_SEALS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a SharedBytes descriptor must be sealed against write, grow and shrink \
                 (seals {have:#x}, need {REQUIRED_SEALS:#x})"
            ),
        ));
    }
    // SAFETY: a zeroed stat is a valid out-parameter for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into `st`, a valid stat struct.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    let len = usize::try_from(st.st_size)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative size"))?;
    if len == 0 {
        return Ok(SharedBytes {
            map: Arc::new(Mapping {
                fd,
                ptr: NonNull::dangling(),
                len: 0,
            }),
        });
    }
    // Private, not shared: kernels before 6.7 refuse any `MAP_SHARED`
    // mapping of an `F_SEAL_WRITE` file with EPERM, read-only or not (they
    // counted every shared mapping as one that could become writable). A
    // read-only private mapping of a file nobody can write shows the same
    // bytes from the same page cache (no copy: pages are copied only on a
    // write, and there is none), and every kernel allows it.
    // SAFETY: a fresh read-only private mapping of `len` bytes of a file we
    // hold open; the kernel picks the address. The seals (checked above)
    // guarantee the file keeps exactly `len` bytes, so no access faults.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap never returns null on success");
    Ok(SharedBytes {
        map: Arc::new(Mapping { fd, ptr, len }),
    })
}

impl SharedBytes {
    /// A sealed copy of `bytes` (one copy, by `write(2)` into the memfd).
    pub fn from_slice(bytes: &[u8]) -> io::Result<SharedBytes> {
        let fd = memfd()?;
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: writes from a valid slice to a descriptor we own.
            let n = unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            rest = &rest[n as usize..];
        }
        seal(&fd)?;
        map_sealed(fd)
    }

    /// A buffer of `len` bytes filled in place by `fill` (which starts from
    /// zeros), then sealed: no copy at all. Use this to produce a big
    /// payload directly where it will be shared.
    pub fn with_len(len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<SharedBytes> {
        let fd = memfd()?;
        let size = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        // SAFETY: ftruncate on a memfd we own.
        check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
        if len > 0 {
            // SAFETY: a fresh writable shared mapping of the `len` bytes the
            // file now has; nobody else has this file yet.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            /// Unmaps the writable view even if `fill` panics.
            struct Unmap(*mut libc::c_void, usize);
            impl Drop for Unmap {
                fn drop(&mut self) {
                    // SAFETY: exactly the mapping made above, unmapped once.
                    unsafe { libc::munmap(self.0, self.1) };
                }
            }
            let unmap = Unmap(ptr, len);
            // SAFETY: the mapping is `len` writable bytes, exclusively ours
            // until `unmap` drops; the slice does not outlive it.
            fill(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) });
            // F_SEAL_WRITE is refused while a writable mapping exists.
            drop(unmap);
        }
        seal(&fd)?;
        map_sealed(fd)
    }

    /// Maps a memfd received from elsewhere; it must already carry the
    /// write, grow and shrink seals (so nobody can change it under us).
    pub(crate) fn from_sealed_fd(fd: OwnedFd) -> io::Result<SharedBytes> {
        map_sealed(fd)
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.map.len
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.map.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` is a live read-only mapping of `len` bytes, kept
        // alive by `self.map` for the borrow's lifetime, and immutable
        // (sealed; see `Mapping`'s Send/Sync argument).
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.map.len) }
    }

    /// Whether two handles share one buffer.
    pub fn ptr_eq(a: &SharedBytes, b: &SharedBytes) -> bool {
        Arc::ptr_eq(&a.map, &b.map)
    }
}

impl AsFd for SharedBytes {
    /// The memfd (for inspection, e.g. `F_GET_SEALS`; it cannot be written).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.map.fd.as_fd()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &SharedBytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedBytes {}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytes")
            .field("len", &self.len())
            .field("fd", &self.map.fd.as_raw_fd())
            .finish()
    }
}

impl TryFrom<&[u8]> for SharedBytes {
    type Error = io::Error;
    fn try_from(bytes: &[u8]) -> io::Result<SharedBytes> {
        SharedBytes::from_slice(bytes)
    }
}

const NAME: &str = "SharedBytes";
const VARIANTS: &[&str] = &["Fd", "Bytes"];

/// `&[u8]` serialised with `serialize_bytes` (one block, not element-wise).
struct RawBytes<'a>(&'a [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match fd_passing::attach(self) {
            Some(index) => s.serialize_newtype_variant(NAME, 0, VARIANTS[0], &index),
            None => s.serialize_newtype_variant(NAME, 1, VARIANTS[1], &RawBytes(self)),
        }
    }
}

/// The owned bytes of the `Bytes` variant.
struct ByteVec(Vec<u8>);

impl<'de> Deserialize<'de> for ByteVec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteVec, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ByteVec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteVec, E> {
                Ok(ByteVec(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteVec, E> {
                Ok(ByteVec(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<ByteVec, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ByteVec(out))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedBytes, D::Error> {
        use serde::de::{EnumAccess, Error, VariantAccess};

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SharedBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SharedBytes (descriptor index or bytes)")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<SharedBytes, A::Error> {
                let (variant, access) = a.variant::<u32>()?;
                match variant {
                    0 => {
                        let index: u32 = access.newtype_variant()?;
                        fd_passing::take(index).map_err(A::Error::custom)
                    }
                    1 => {
                        let bytes: ByteVec = access.newtype_variant()?;
                        SharedBytes::from_slice(&bytes.0)
                            .map_err(|e| A::Error::custom(format!("creating a memfd: {e}")))
                    }
                    n => Err(A::Error::custom(format!("unknown SharedBytes variant {n}"))),
                }
            }
        }
        d.deserialize_enum(NAME, VARIANTS, V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_read_only_and_equal() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let a = SharedBytes::from_slice(&data).unwrap();
        assert_eq!(&a[..], &data[..]);
        assert_eq!(seals(a.as_fd()).unwrap() & REQUIRED_SEALS, REQUIRED_SEALS);
        // The sender cannot change what it shared: write and truncate fail.
        // SAFETY: plain system calls on a descriptor `a` owns.
        unsafe {
            assert_eq!(
                libc::write(a.as_fd().as_raw_fd(), b"x".as_ptr().cast(), 1),
                -1
            );
            assert_eq!(libc::ftruncate(a.as_fd().as_raw_fd(), 1), -1);
        }
        let b = SharedBytes::with_len(5, |buf| buf.copy_from_slice(b"hello")).unwrap();
        assert_eq!(&b[..], b"hello");
        let empty = SharedBytes::from_slice(&[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(&empty[..], &[] as &[u8]);
    }

    #[test]
    fn outside_a_frame_it_is_an_ordinary_serde_value() {
        let a = SharedBytes::from_slice(b"abc").unwrap();
        let mut bytes = Vec::new();
        crate::wire::codec::encode(&a, &mut bytes).unwrap();
        let back: SharedBytes = crate::wire::codec::decode(&bytes).unwrap();
        assert_eq!(back, a);
        assert!(!SharedBytes::ptr_eq(&a, &back));
    }

    /// The permission field ("r--p") of the `/proc/self/maps` line that
    /// starts at `addr`.
    fn map_permissions(addr: *const u8) -> String {
        let start = format!("{:x}-", addr as usize);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let line = maps
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no mapping starts at {start} in:\n{maps}"));
        line.split(' ').nth(1).unwrap().to_string()
    }

    /// Kernels before 6.7 refuse a `MAP_SHARED` mapping of a file sealed
    /// with `F_SEAL_WRITE` with EPERM, even a read-only one (they counted
    /// every shared mapping as writable). This kernel may be newer, so the
    /// test checks the mapping's kind itself: private ('p'), not shared
    /// ('s'), which every kernel allows for a sealed file.
    #[test]
    fn the_mapping_is_private_so_kernels_before_6_7_can_make_it() {
        let a = SharedBytes::from_slice(&[5u8; 10_000]).unwrap();
        assert_eq!(map_permissions(a.as_ptr()), "r--p");
        let b = SharedBytes::with_len(10_000, |buf| buf.fill(6)).unwrap();
        assert_eq!(map_permissions(b.as_ptr()), "r--p");
        assert!(b.iter().all(|&x| x == 6));
    }

    /// Whether this kernel knows `MFD_NOEXEC_SEAL` (Linux 6.3 and later).
    fn kernel_has_noexec_seal() -> bool {
        // SAFETY: a constant NUL-terminated name and constant flags.
        let fd = unsafe { libc::memfd_create(c"probe".as_ptr(), libc::MFD_NOEXEC_SEAL) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
            return false;
        }
        // SAFETY: memfd_create succeeded: a new descriptor owned by nobody else.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        true
    }

    #[test]
    fn shared_bytes_can_never_be_executed_where_the_kernel_can_say_so() {
        let a = SharedBytes::from_slice(b"not code").unwrap();
        let have = seals(a.as_fd()).unwrap();
        // SAFETY: a zeroed stat is a valid out-parameter for fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes into `st`, a valid stat struct.
        check(unsafe { libc::fstat(a.as_fd().as_raw_fd(), &mut st) }).unwrap();
        if kernel_has_noexec_seal() {
            assert_ne!(have & libc::F_SEAL_EXEC, 0, "seals {have:#x}");
            assert_eq!(st.st_mode & 0o111, 0, "mode {:o}", st.st_mode);
        } else {
            // Older kernels: made without it, sealed as before.
            assert_eq!(have & REQUIRED_SEALS, REQUIRED_SEALS);
        }
    }

    #[test]
    fn without_noexec_seal_the_memfd_is_made_without_it() {
        // What a kernel before 6.3 answers to the flag: EINVAL.
        let mut asked = Vec::new();
        let fd = with_noexec_seal_if_known(|flags| {
            asked.push(flags);
            if flags & libc::MFD_NOEXEC_SEAL != 0 {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                memfd_with_flags(flags)
            }
        })
        .unwrap();
        assert_eq!(
            asked,
            [MEMFD_FLAGS | libc::MFD_NOEXEC_SEAL, MEMFD_FLAGS],
            "asked for"
        );
        seal(&fd).unwrap();
        // Another error is not retried.
        let err = with_noexec_seal_if_known(|_| Err(io::Error::from_raw_os_error(libc::EMFILE)));
        assert_eq!(err.unwrap_err().raw_os_error(), Some(libc::EMFILE));
    }

    #[test]
    fn unsealed_descriptors_are_refused() {
        let fd = memfd().unwrap();
        let err = SharedBytes::from_sealed_fd(fd).unwrap_err();
        assert!(err.to_string().contains("sealed"), "{err}");
    }
}
