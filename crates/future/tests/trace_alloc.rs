//! The recorder's memory in steady state: a recorder filled again after an
//! earlier one was dropped reuses the blocks that one touched, so recording
//! allocates no new block-sized memory (and takes no page fault for it).
//!
//! Its own test binary: it counts the allocations of the whole process with
//! a counting global allocator, one test only, so no other test allocates
//! beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use future::trace::Recorder;

/// Counts the allocations of 1 KiB or more (a block is 16 KiB; a growing
/// `Vec` of events soon passes 1 KiB); small ones (a `TaskTrace`'s handle,
/// a block's header) are not what this checks.
struct Counting;

static LARGE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to `System` unchanged; the counter is a side
// effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= 1024 {
            // Relaxed: a count read by this thread after the recording.
            LARGE.fetch_add(1, Relaxed);
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= 1024 {
            // Relaxed: as in `alloc`.
            LARGE.fetch_add(1, Relaxed);
        }
        // SAFETY: as `dealloc` and `alloc` above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Three transitions of each of `n` tasks, on this thread.
fn record(recorder: &Recorder, n: usize) {
    for _ in 0..n {
        let task = recorder.submitted_number();
        recorder.started_here(task).ended(true);
    }
}

#[test]
fn a_refilled_recorder_allocates_no_new_blocks() {
    const TASKS: usize = 20_000;
    // Warm up: a recorder that grows to 60k events, then goes.
    let first = Recorder::new();
    record(&first, TASKS);
    drop(first);

    let second = Recorder::new();
    // Its first event registers this thread's lane (a block, before the
    // count starts). Relaxed: only this thread records.
    record(&second, 1);
    let before = LARGE.load(Relaxed);
    record(&second, TASKS - 1);
    let during = LARGE.load(Relaxed) - before;
    assert_eq!(
        during, 0,
        "recording 60k events allocated {during} times 1 KiB or more"
    );
    assert_eq!(second.events().len(), 3 * TASKS);
}
