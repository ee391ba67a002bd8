//! A seccomp filter installed after the first map refuses `membarrier`
//! (adversary class 2: the process environment; a sandbox that locks
//! itself down after start-up does this). The default map's iterator
//! then can no longer use the expedited barrier it registered for
//! (`asymmetric.rs`); the map must go on, not abort the process.
//!
//! Its own test binary: the filter stays on this test's thread, and an
//! abort would take the binary down.

#![cfg(target_os = "linux")]

mod common;

use thread_pool::ThreadPoolExecutor;

/// Makes `membarrier(2)` fail with EPERM on this thread and the threads
/// it starts from now on (a seccomp filter; no privilege needed with
/// `no_new_privs`).
fn refuse_membarrier() {
    let nr = libc::SYS_membarrier as u32;
    let mut filter = [
        // Load the system call number (offset 0 of `seccomp_data`).
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // membarrier: go on to the next instruction, else skip it.
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments, and with a pointer to a filter
    // program that outlives the call (the kernel copies it).
    unsafe {
        assert_eq!(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            0,
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
                0,
                0
            ),
            0,
            "prctl(PR_SET_SECCOMP): {} (a kernel without seccomp filters cannot run this test)",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: membarrier takes integers only; the query command.
    let refused = unsafe { libc::syscall(libc::SYS_membarrier, 0, 0, 0) } == -1;
    assert!(refused, "the seccomp filter did not refuse membarrier");
}

/// Review 6's map: each item takes one of 4 permits, the consumer gives
/// one back per result, so the iterator sleeps on running claims and asks
/// for each result (the path with the expedited barrier).
fn map_that_waits_for_the_consumer(pool: &ThreadPoolExecutor) {
    const N: u32 = 300;
    let sem = common::Semaphore::new(4);
    let s = sem.clone();
    let mut out = Vec::new();
    for r in pool
        .map(move |x: u32| s.acquire().then_some(x), 0..N)
        .unwrap()
    {
        out.push(r.unwrap());
        sem.release();
    }
    assert_eq!(out.len(), N as usize);
    assert!(
        out.iter().enumerate().all(|(i, v)| *v == Some(i as u32)),
        "an item waited {:?} for a permit (the map hung)",
        common::HANG_GUARD
    );
}

#[test]
fn a_map_goes_on_when_membarrier_is_refused_after_it_was_registered() {
    // The first map registers the process for expedited barriers.
    map_that_waits_for_the_consumer(&ThreadPoolExecutor::new(1));
    refuse_membarrier();
    // Before the fix, the iterator's barrier failed here and the process
    // aborted ("membarrier(PRIVATE_EXPEDITED) failed after it was
    // registered").
    map_that_waits_for_the_consumer(&ThreadPoolExecutor::new(1));
}
