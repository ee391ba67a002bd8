//! Helpers shared by the integration tests: start the fork server before
//! `main`, run tests one at a time (they count descriptors and child
//! processes, which other tests' pools would disturb), and check that a test
//! left no zombie and no descriptor behind (`checks.rs`).
#![allow(dead_code)]

mod checks;
pub use checks::*;

// SAFETY (ctor's contract): this runs before main, single-threaded; it
// only records a pid and forks the fork server, touching no other state.
#[ctor::ctor]
unsafe fn start_before_main() {
    // The test harness's main has not run yet: we are single-threaded.
    checks::PARENT_PID.get_or_init(std::process::id);
    process_pool::start_fork_server();
}
