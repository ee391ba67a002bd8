//! Without an early `start_fork_server()` (no constructor in this test
//! binary), the first pool starts the fork server lazily - here from a
//! process that already runs several threads. It must still work, and
//! `fork_server_info` must say it was a late start.

use std::time::Duration;

use process_pool::ProcessPoolExecutor;

fn square(x: u64) -> u64 {
    x * x
}

#[test]
fn lazy_start_in_a_multithreaded_process_works_and_is_reported() {
    // The test harness runs this test on a thread of its own: already > 1.
    let threads = process_pool::thread_count().unwrap();
    assert!(threads > 1, "{threads}");
    assert!(process_pool::fork_server_info().is_none());
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let info = process_pool::fork_server_info().unwrap();
    assert!(info.threads_at_start.unwrap() > 1, "{info:?}");
    let futs: Vec<_> = (0..10u64)
        .map(|i| pool.submit(square, i).unwrap())
        .collect();
    for (i, f) in futs.iter().enumerate() {
        assert_eq!(
            f.result_timeout(Duration::from_secs(30)).unwrap(),
            (i * i) as u64
        );
    }
}
