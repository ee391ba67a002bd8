//! # `learn`: the ladder
//!
//! Each primitive of this workspace rebuilt in small steps, each one file of
//! at most 110 lines that compiles, runs and is tested, and ends by naming
//! what the production crate adds and where. Read them in order; run each
//! with `cargo run -p learn -- <step>` (for example `s01`), and see
//! `docs/ladder.md` for every step's output. The tests are in `learn/tests/`.
//!
//! | steps | rung | from | to |
//! |---|---|---|---|
//! | s01-s03 | future | a Mutex + Condvar one-shot | the state word |
//! | s04-s07 | thread pool | CPython's `thread.py` | spin, then park with two fences |
//! | s08-s11 | process pool | fork and two pipes | a fork server that replaces dead workers |
//! | s12-s14 | executor | the trait and an inline executor | a windowed `map` |
//!
//! Each step is a module with a `main` (its demo), so one binary runs them
//! all and the tests can reach every type.

pub mod s01_future_mutex_condvar;
pub mod s02_future_callbacks_wait;
pub mod s03_future_state_word;
pub mod s04_thread_pool_cpython;
pub mod s05_thread_pool_idle_reuse;
pub mod s06_thread_pool_sleep;
pub mod s07_thread_pool_spin_park;
pub mod s08_process_pool_fork_pipes;
pub mod s09_process_pool_poll_loop;
pub mod s10_process_pool_fork_server;
pub mod s11_process_pool_replace_dead;
pub mod s12_executor_trait_inline;
pub mod s13_executor_map_eager;
pub mod s14_executor_map_windowed;

/// Every step's name and demo, in reading order.
pub const STEPS: &[(&str, fn())] = &[
    ("s01_future_mutex_condvar", s01_future_mutex_condvar::main),
    ("s02_future_callbacks_wait", s02_future_callbacks_wait::main),
    ("s03_future_state_word", s03_future_state_word::main),
    ("s04_thread_pool_cpython", s04_thread_pool_cpython::main),
    ("s05_thread_pool_idle_reuse", s05_thread_pool_idle_reuse::main),
    ("s06_thread_pool_sleep", s06_thread_pool_sleep::main),
    ("s07_thread_pool_spin_park", s07_thread_pool_spin_park::main),
    ("s08_process_pool_fork_pipes", s08_process_pool_fork_pipes::main),
    ("s09_process_pool_poll_loop", s09_process_pool_poll_loop::main),
    ("s10_process_pool_fork_server", s10_process_pool_fork_server::main),
    ("s11_process_pool_replace_dead", s11_process_pool_replace_dead::main),
    ("s12_executor_trait_inline", s12_executor_trait_inline::main),
    ("s13_executor_map_eager", s13_executor_map_eager::main),
    ("s14_executor_map_windowed", s14_executor_map_windowed::main),
];
