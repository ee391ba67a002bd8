//! Asymmetric fences: a free one on the hot side, a costly one on the rare
//! side, which together order what a pair of `SeqCst` fences orders.
//!
//! The default map's runners publish each result as it ends and then look
//! whether the iterator sleeps waiting for it (`published.rs`). That is the
//! store-then-load pattern of a lost wake-up: the runner stores the count
//! and loads the iterator's "waiting" word, the iterator stores that word
//! and loads the count, and without a store-load fence on *both* sides each
//! may miss the other's store (the runner goes on into an item that waits
//! for the consumer, the consumer sleeps: a hang). A `SeqCst` fence per item
//! costs 2-3 ns here, against about 1.5 ns for the whole per-item path of a
//! cheap map, while the iterator goes to sleep that way only when a claim
//! has outlasted `SLOW`. So the cost moves to the sleeper:
//!
//! * [`light`], per item on a runner: a compiler fence only (no instruction);
//! * [`heavy`], before the iterator sleeps: `membarrier(2)` with
//!   `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (Linux 4.14), after which every
//!   thread of the process that was running has passed a full memory
//!   barrier. So for any point of a runner's program, either its stores
//!   before that point are visible to the iterator after `heavy`, or its
//!   loads after that point see the iterator's stores before `heavy`: the
//!   guarantee a `SeqCst` fence on each side gives (the pairing folly's
//!   `asymmetric_thread_fence_light/heavy` use).
//!
//! Where `membarrier` is missing or refused (another OS, an old kernel, a
//! seccomp filter), [`Fences::new`] says so once and both sides use a plain
//! `SeqCst` fence: correct, and slower per item. A filter installed after
//! the registration (a sandbox that locks itself down after start-up)
//! makes [`heavy`] fail on a map already running with the cheap pair: it
//! then says so (`false`), its caller stops relying on a wake-up and looks
//! again at intervals, and later maps use the `SeqCst` pair. Loom and Miri model no
//! `membarrier`, so under them both sides are `SeqCst` fences too, which is
//! what the pair stands for.

use std::sync::atomic::{compiler_fence, Ordering::SeqCst};

use crate::sync::fence;

/// Which pair of fences a map's runners and iterator use (decided once per
/// map, before its runners start, so both sides agree).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fences {
    /// `membarrier` works: the light side is a compiler fence.
    expedited: bool,
}

impl Fences {
    /// The cheap pair where the kernel offers it, else two `SeqCst` fences.
    pub(crate) fn new() -> Self {
        Fences {
            expedited: membarrier::available(),
        }
    }

    /// Two `SeqCst` fences (the loom model's pair).
    #[cfg(all(test, loom))]
    pub(crate) fn plain() -> Self {
        Fences { expedited: false }
    }

    /// The hot side: between a runner's store of a result count and its
    /// load of the iterator's waiting word.
    #[inline]
    pub(crate) fn light(self) {
        if self.expedited {
            // The heavy side's membarrier orders the hardware; only the
            // compiler must keep the store before the load.
            compiler_fence(SeqCst);
        } else {
            fence(SeqCst);
        }
    }

    /// The rare side: between the iterator's store of its waiting word and
    /// its load of the result count, before it sleeps. Whether the pair
    /// holds: `false` if `membarrier` was refused after it was registered
    /// (module docs), and then the runners' loads may miss the store.
    #[must_use]
    pub(crate) fn heavy(self) -> bool {
        if self.expedited {
            membarrier::expedited()
        } else {
            fence(SeqCst);
            true
        }
    }
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod membarrier {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::OnceLock;

    /// A barrier was refused after the registration: later maps use the
    /// `SeqCst` pair. (`Relaxed`: a map that misses it only tries the
    /// barrier, and looks at the result.)
    static REFUSED: AtomicBool = AtomicBool::new(false);

    // From linux/membarrier.h (libc has the syscall number, not these).
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn call(cmd: libc::c_long) -> bool {
        // SAFETY: membarrier takes two integers and touches no memory of
        // ours; an unknown or refused command returns -1 (ENOSYS, EINVAL,
        // EPERM), which we treat as "not available".
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            ) == 0
        }
    }

    /// Registers the process for expedited barriers, once; whether they work.
    pub(super) fn available() -> bool {
        static REGISTERED: OnceLock<bool> = OnceLock::new();
        *REGISTERED.get_or_init(|| call(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
            && !REFUSED.load(Relaxed)
    }

    /// A full barrier on every running thread of the process; whether it
    /// was made. After a successful registration the kernel refuses it
    /// only under a seccomp filter installed since (on this thread): the
    /// caller then cannot rely on the pair (module docs).
    pub(super) fn expedited() -> bool {
        if call(MEMBARRIER_CMD_PRIVATE_EXPEDITED) {
            return true;
        }
        let error = std::io::Error::last_os_error();
        if !REFUSED.swap(true, Relaxed) {
            // Said once; `writeln!`, not `eprintln!`, which panics when
            // stderr is a closed pipe (the map must go on).
            let _ = writeln!(
                std::io::stderr(),
                "thread-pool: membarrier(PRIVATE_EXPEDITED) was refused after it was \
                 registered ({error}); maps now use SeqCst fences"
            );
        }
        false
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod membarrier {
    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn expedited() -> bool {
        unreachable!("no expedited barrier without membarrier")
    }
}
