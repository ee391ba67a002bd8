//! A program that restored SIGPIPE's default action (death) must survive
//! workers that die while the pool is writing a big task to them: the pool
//! gets EPIPE, never the signal. (Its own test binary: it changes a
//! process-wide signal disposition before main.)

use std::time::Duration;

use future::{FutureError, TaskError};
use process_pool::{ProcessPoolExecutor, WorkerDied};
use serde_bytes::ByteBuf;

const T: Duration = Duration::from_secs(30);

// SAFETY (ctor's contract): this runs before main, single-threaded; it only
// forks the fork server.
#[ctor::ctor]
unsafe fn start_before_main() {
    process_pool::start_fork_server();
}

/// 32 MiB whose decoding (in the worker) aborts at once, while the pool is
/// still writing the rest of them.
struct AbortOnDecode(ByteBuf);

impl serde::Serialize for AbortOnDecode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for AbortOnDecode {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        std::process::abort()
    }
}

fn abort_at_once(_: AbortOnDecode) -> u64 {
    0
}

fn die(_: u64) -> u64 {
    std::process::abort()
}

fn add_one(x: u64) -> u64 {
    x + 1
}

#[test]
fn workers_dying_mid_write_do_not_kill_the_program() {
    // Rust's runtime ignores SIGPIPE before main (after constructors run);
    // restore the default action here, as some programs do.
    // SAFETY: restoring a default disposition runs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .pipe_size(0)
        .build()
        .unwrap();
    for round in 0..3u64 {
        // The worker aborts while the pool is still writing 32 MiB to it.
        let big = pool
            .submit(
                abort_at_once,
                AbortOnDecode(ByteBuf::from(vec![7u8; 32 << 20])),
            )
            .unwrap();
        match big.result_timeout(T) {
            Err(FutureError::Task(TaskError::Executor(e))) => {
                assert!(e.downcast_ref::<WorkerDied>().is_some(), "{e:?}")
            }
            other => panic!("{other:?}"),
        }
        // Small tasks on an idle pool, some of them killing their worker.
        assert!(pool.submit(die, round).unwrap().result_timeout(T).is_err());
        assert_eq!(
            pool.submit(add_one, round)
                .unwrap()
                .result_timeout(T)
                .unwrap(),
            round + 1
        );
    }
}
