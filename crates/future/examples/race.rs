//! Three "downloads" on three threads, collected with `as_completed` in the
//! order they finish. Run with `cargo run -p future --example race`.

use std::thread;
use std::time::{Duration, Instant};

use future::{as_completed, promise};

fn main() {
    let start = Instant::now();
    let mut futures = Vec::new();
    let mut threads = Vec::new();
    for (name, millis) in [("slow", 300u64), ("fast", 100), ("medium", 200)] {
        let (promise, future) = promise::<String>();
        futures.push(future);
        threads.push(thread::spawn(move || {
            if promise.set_running_or_notify_cancel() == Ok(true) {
                // Stands for real work (a download, a computation).
                thread::sleep(Duration::from_millis(millis));
                let _ = promise.set_result(format!("{name} done after {millis} ms"));
            }
        }));
    }
    for done in as_completed(&futures, Some(Duration::from_secs(5))) {
        match done {
            Ok(future) => println!(
                "[{:>4} ms] {:?}: {}",
                start.elapsed().as_millis(),
                future,
                future.result().unwrap_or_else(|e| e.to_string())
            ),
            Err(timeout) => println!("gave up: {timeout}"),
        }
    }
    for t in threads {
        t.join().expect("worker thread panicked");
    }
}
